"""hwbus's handle on Ironic: openstacksdk, errors sorted by family.

Ironic answers 409 while a node is locked and 503 while it starts; those
and every connection failure are transient, so the message waits. A 4xx
that names the request itself (400, 404, 406) is permanent.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import openstack
from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import loading
from openstack import exceptions as sdk_exc

from hwbus.errors import PermanentError, TransientError

LOG = logging.getLogger(__name__)
TRANSIENT_STATUS = {408, 409, 423, 429, 500, 502, 503, 504}


class IronicUnavailable(TransientError):
    reason = 'ironic-unavailable'


class IronicRefused(PermanentError):
    reason = 'ironic-refused'


class NodeNotFound(PermanentError):
    reason = 'node-not-found'


def connect(conf: Any) -> openstack.connection.Connection:
    """A connection from [ironic]: a clouds.yaml cloud or keystoneauth."""
    group = conf.ironic
    if group.cloud:
        return openstack.connect(cloud=group.cloud,
                                 baremetal_api_version=group.api_version)
    auth = loading.load_auth_from_conf_options(conf, 'ironic')
    session = loading.load_session_from_conf_options(conf, 'ironic',
                                                     auth=auth)
    return openstack.connection.Connection(
        session=session, baremetal_endpoint_override=group.endpoint_override,
        baremetal_api_version=group.api_version,
        baremetal_status_code_retries=group.retries)


def status_error(status: int, what: str, text: str = '') -> Exception:
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
    except (ks_exc.ClientException, sdk_exc.SDKException, OSError) as exc:
        raise IronicUnavailable(f'{what}: {type(exc).__name__}') from None
