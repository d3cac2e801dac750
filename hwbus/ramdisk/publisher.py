"""Publish one sealed message with pika until the broker confirms it.

The same sealed message (same ``message_id``) is re-sent on every attempt,
so a publish whose confirm was lost is deduplicated by the consumer. Every
URL from ``hwbus.url`` is tried in turn, with exponential backoff and
jitter, until the deadline. What retrying cannot fix (the credential is
refused, the broker denies the routing key or ``user_id``) ends the loop
at once with a clear reason.
"""

from __future__ import annotations

import dataclasses
import logging
import ssl
import time
import urllib.parse
from collections.abc import Callable, Sequence

import pika
import pika.exceptions as pe

from hwbus import backoff, bootparams, keys
from hwbus.envelope import Sealed
from hwbus.errors import PermanentError, TransientError

LOG = logging.getLogger(__name__)

MAX_BACKOFF = 30.0


class Refused(PermanentError):
    """The broker will never take this message with this credential."""

    reason = 'refused'


class DeadlineExceeded(TransientError):
    reason = 'deadline'


@dataclasses.dataclass
class Published:
    attempts: int
    url: str  # redacted
    seconds: float
    # False: no confirm, but the broker deleted this boot's user while the
    # publish awaited it, which the consumer does on receipt.
    confirmed: bool = True


class _RevokedOnReceipt(Exception):
    """The broker closed the connection because this boot's user was
    deleted after the message was sent and before its confirm came."""


def _deleted_user(exc: Exception) -> bool:
    return (isinstance(exc, pe.ConnectionClosedByBroker)
            and exc.reply_code == 320
            and 'is deleted' in str(exc.reply_text or ''))


def ssl_context(ca: str | None) -> ssl.SSLContext:
    """Verify the broker against hwbus.ca: a PEM path or base64url DER."""
    if not ca:
        return ssl.create_default_context()
    if ca.startswith('/'):
        return ssl.create_default_context(cafile=ca)
    return ssl.create_default_context(cadata=keys.b64decode(ca))


def connection_parameters(url: str, ca: str | None,
                          name: str) -> pika.URLParameters:
    params = pika.URLParameters(url)
    params.connection_attempts = 1
    params.socket_timeout = 5
    params.stack_timeout = 15
    params.blocked_connection_timeout = 30
    params.heartbeat = 30
    params.client_properties = {'connection_name': name,
                                'product': 'hwbus-ramdisk'}
    if urllib.parse.urlsplit(url).scheme == 'amqps':
        # An IPv6 literal without brackets: the certificate must carry it
        # as an IP subjectAltName.
        params.ssl_options = pika.SSLOptions(
            ssl_context(ca), server_hostname=bootparams.server_name(url))
    return params


def _attempt(url: str, sealed: Sealed, exchange: str, ca: str | None,
             name: str) -> None:
    connection = pika.BlockingConnection(
        connection_parameters(url, ca, name))
    sent = False
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        properties = pika.BasicProperties(**sealed.properties)
        sent = True
        channel.basic_publish(exchange, sealed.routing_key, sealed.body,
                              properties, mandatory=True)
    except pe.ConnectionClosedByBroker as exc:
        # A fast consumer verifies the message and deletes the user
        # before the broker's confirm reaches us: measured at 20 boots/s
        # with the null applier (docs/benchmarks.md).
        if sent and _deleted_user(exc):
            raise _RevokedOnReceipt() from None
        raise
    finally:
        if connection.is_open:
            try:
                connection.close()
            except pe.AMQPError:
                pass


def _classify(exc: Exception) -> tuple[bool, str]:
    """(permanent?, human reason) for a failed attempt."""
    if isinstance(exc, pe.ProbableAuthenticationError
                  | pe.AuthenticationError):
        return True, ('the broker refused this boot\'s credential (revoked, '
                      'expired or already used)')
    if isinstance(exc, pe.ChannelClosedByBroker):
        if exc.reply_code == 403:
            return True, f'the broker denied the publish: {exc.reply_text}'
        return False, f'channel closed by the broker: {exc.reply_code} ' \
                      f'{exc.reply_text}'
    if isinstance(exc, pe.UnroutableError):
        return False, 'the broker could not route the message (no queue ' \
                      'bound to the exchange yet)'
    if isinstance(exc, pe.NackError):
        return False, 'the broker refused to store the message (nack)'
    if isinstance(exc, pe.ConnectionClosedByBroker):
        return False, f'connection closed by the broker: {exc.reply_code} ' \
                      f'{exc.reply_text}'
    if isinstance(exc, pe.AMQPError | OSError | ssl.SSLError):
        text = str(exc) or type(exc).__name__
        return False, f'{type(exc).__name__}: {text[:200]}'
    raise exc


def publish(sealed: Sealed, params: bootparams.BootParams,
            deadline: float | None = None,
            sleep: Callable[[float], None] = time.sleep,
            clock: Callable[[], float] = time.monotonic) -> Published:
    """Publish until confirmed, refused, or ``deadline`` seconds pass.

    :raises Refused: the credential or the publish was denied.
    :raises DeadlineExceeded: no confirm before the deadline.
    """
    urls: Sequence[str] = params.connection_urls()
    deadline = params.deadline if deadline is None else deadline
    start = clock()
    end = start + deadline
    name = f'hwbus-ramdisk {params.boot_id}'
    attempt = 0
    while True:
        url = urls[attempt % len(urls)]
        attempt += 1
        shown = bootparams.redact(url)
        LOG.info('publishing message %s to %s (attempt %d)',
                 sealed.message_id, shown, attempt)
        try:
            _attempt(url, sealed, params.exchange, params.ca, name)
        except _RevokedOnReceipt:
            seconds = clock() - start
            LOG.info('broker %s deleted this boot\'s credential while '
                     'message %s awaited its confirm: the consumer does '
                     'that when it has received the inventory (%.1f s)',
                     shown, sealed.message_id, seconds)
            return Published(attempt, shown, seconds, confirmed=False)
        except Exception as exc:  # classified below; unknown ones re-raise
            permanent, why = _classify(exc)
            if permanent:
                LOG.error('publish refused by %s: %s', shown, why)
                raise Refused(why) from None
            remaining = end - clock()
            delay = min(backoff.delay(attempt, cap=MAX_BACKOFF), remaining)
            if remaining <= 0:
                raise DeadlineExceeded(
                    f'no broker confirmed the message within {deadline:g} s '
                    f'({attempt} attempts); last: {why}') from None
            LOG.warning('publish to %s failed: %s; retrying in %.1f s '
                        '(%.0f s left)', shown, why, delay, remaining)
            sleep(max(delay, 0.05))
            continue
        seconds = clock() - start
        LOG.info('broker %s confirmed message %s after %d attempt(s) in '
                 '%.1f s', shown, sealed.message_id, attempt, seconds)
        return Published(attempt, shown, seconds)
