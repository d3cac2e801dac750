"""hwbus's handle on Ironic: openstacksdk, errors sorted by family.

Ironic answers 409 while a node is locked and 503 while it starts; those
and every connection failure are transient, so the message waits. A 4xx
that names the request itself (400, 404, 406) is permanent. A 401 or 403
(Keystone or Ironic refusing hwbus's own credentials or role) is
transient too, one line naming [ironic]: messages wait for the fix.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from keystoneauth1 import exceptions as ks_exc
from openstack import exceptions as sdk_exc

from hwbus.errors import HwbusError, PermanentError, TransientError

LOG = logging.getLogger(__name__)
TRANSIENT_STATUS = {408, 409, 423, 429, 500, 502, 503, 504}


class IronicUnavailable(TransientError):
    reason = 'ironic-unavailable'


class IronicAuthFailed(TransientError):
    """Keystone or Ironic refused hwbus's own credentials (401) or role
    (403). No message is at fault: they wait, retried, until an operator
    fixes [ironic] or the role, instead of being dead-lettered."""

    reason = 'ironic-auth-failed'


class IronicConfigError(HwbusError):
    """[ironic] cannot make a connection (a cloud clouds.yaml does not
    have, a missing auth option): raised at start-up, when the wiring
    (hwbus.cmd.wiring.ironic_connection) builds the connection."""

    reason = 'ironic-config'


class IronicRefused(PermanentError):
    reason = 'ironic-refused'


class NodeNotFound(PermanentError):
    reason = 'node-not-found'


CREDENTIALS_HINT = ('check [ironic] username/password (application_'
                    'credential_id/secret with auth_type '
                    'v3applicationcredential) or the clouds.yaml cloud '
                    '[ironic] cloud names')


def auth_failed(status: int, what: str, who: str,
                text: str = '') -> IronicAuthFailed:
    """The one line an operator reads for a 401 or 403."""
    if status == 401:
        return IronicAuthFailed(f'{what}: {who} refused the credentials in '
                                f'[ironic] (401): {CREDENTIALS_HINT}')
    detail = f': {text[:300]}' if text else ''
    return IronicAuthFailed(
        f'{what}: {who} refused the [ironic] user (403): give it the role '
        f'hwbus needs (docs/consumer.md, "Ironic behind Keystone"){detail}')


def status_error(status: int, what: str, text: str = '') -> Exception:
    if status in (401, 403):
        return auth_failed(status, what, 'Ironic', text)
    detail = f'{what}: Ironic answered {status} {text[:300]}'.strip()
    if status in TRANSIENT_STATUS or status >= 500:
        return IronicUnavailable(detail)
    if status == 404:
        return NodeNotFound(detail)
    return IronicRefused(detail)


def baremetal(connection: Any) -> Any:
    """The connection's baremetal proxy, made on first use.

    openstacksdk discovers the endpoint when the proxy is first asked
    for; with Ironic (or Keystone) down that raises, so it is asked for
    per call, where a failure is transient, never at start-up.
    """
    with calling('Ironic endpoint discovery'):
        return connection.baremetal


@contextlib.contextmanager
def calling(what: str) -> Iterator[None]:
    """Turn SDK and transport errors into hwbus's two families."""
    try:
        yield
    except sdk_exc.NotFoundException as exc:
        # find_node(ignore_missing=False) raises this without a status.
        raise status_error(404, what, str(exc.details or '')) from None
    except sdk_exc.HttpException as exc:
        raise status_error(exc.status_code or 503, what,
                           str(exc.details or '')) from None
    except (ks_exc.Unauthorized, ks_exc.Forbidden) as exc:
        # keystoneauth raises these when Keystone refuses to issue a token.
        raise auth_failed(exc.http_status, what, 'Keystone') from None
    except (ks_exc.ClientException, sdk_exc.SDKException, OSError) as exc:
        raise IronicUnavailable(f'{what}: {type(exc).__name__}') from None
