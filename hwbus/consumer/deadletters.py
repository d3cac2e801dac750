"""The dead-letter queue: what the consumer writes, what operators read.

``publish()`` writes a refused message's copy with its reason. The rest
is the operator's side: messages are read with ``basic.get`` and
returned (``requeue``) unless the operator replays or purges them. A
replay runs the message through the same pipeline as a fresh one
(signature and credential checked again), with ``user_id`` taken from
the header the consumer wrote when it dead-lettered the message (the
broker had checked it on the way in).
"""

from __future__ import annotations

import builtins
import dataclasses
import datetime
import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

import kombu
from amqp.exceptions import MessageNacked

from hwbus import envelope
from hwbus.consumer import wire
from hwbus.consumer.pipeline import APPLIED, DEAD, Outcome, Pipeline
from hwbus.text import escape

LOG = logging.getLogger(__name__)


DEAD_REASON = 'x-hwbus-dead-reason'
DEAD_DETAIL = 'x-hwbus-dead-detail'
DEAD_AT = 'x-hwbus-dead-at'
ORIGINAL_USER = 'x-hwbus-original-user-id'
ORIGINAL_KEY = 'x-hwbus-original-routing-key'
BODY_SIZE = 'x-hwbus-body-size'
BODY_DIGEST = 'x-hwbus-body-digest'


def publish(connection: kombu.Connection, exchange: str, message: Any,
            outcome: Any) -> bool:
    """Publish a copy with the reason (confirmed), then ack the original.

    A plain reject would dead-letter without saying why. The copy drops
    ``user_id`` (the broker would refuse it from our user) and keeps it
    in a header, so a replay can verify the message again; its other
    headers are the ones that can be encoded again whatever the original
    held (wire.safe_headers). Only the body of the one message a
    credential may send is copied (a replay needs it: the message that
    passed the credential's gate, or the first after its expiry); of any
    other, the sender's noise even when signed, the copy keeps the size
    and digest, so no credential can fill the dead-letter queue with
    bodies. A copy the client cannot encode (wire.safe_headers bounds
    what it keeps, so this is for what that did not foresee) goes again
    with the consumer's own headers only. When the dead-letter queue
    refuses the copy (full), a message whose body is kept is handed to the
    broker's own dead-lettering (at least once: kept until there is room),
    which loses the reason but neither the message nor the consumer's
    pace; any other is acked with its record in the log line (its body
    was not to be kept, and the broker would keep it); a message
    that is the broker's dead letter already (``outcome.broker_dead``)
    is kept instead: False, and the caller tries again later.
    """
    props = wire.raw_properties(message)
    body = wire.body_of(message)
    ours = {
        DEAD_REASON: outcome.reason,
        DEAD_DETAIL: wire.fit(outcome.detail[:1000], 2000),
        DEAD_AT: int(time.time()),
        ORIGINAL_USER: wire.short_text(props.get('user_id')),
        ORIGINAL_KEY: wire.short_text((message.delivery_info or {}).get(
            'routing_key')),
        BODY_SIZE: len(body),
        BODY_DIGEST: wire.digest(body),
    }
    if not outcome.keep_body:
        body = b''
    fields = dict(
        exchange=exchange, routing_key=outcome.reason or 'dead',
        content_type=wire.short_text(props.get('content_type')) or
        'application/octet-stream',
        content_encoding=wire.short_text(props.get('content_encoding'))
        or 'binary',
        message_id=wire.short_text(props.get('message_id')) or None,
        timestamp=wire.timestamp(props.get('timestamp')), delivery_mode=2)
    producer = kombu.Producer(connection.default_channel)
    try:
        try:
            producer.publish(body, headers={**wire.safe_headers(
                message.headers), **ours}, **fields)
        except (*connection.connection_errors, MessageNacked):
            raise
        except Exception as exc:
            # Not the queue (it would nack) nor the connection: a copy
            # the client could not encode. The reason and digest alone,
            # rather than the body to the broker's dead-lettering.
            LOG.warning('the dead-letter copy of message %s could not be '
                        'encoded (%s); publishing it without the sender\'s '
                        'headers', outcome.message_id or '-', exc)
            producer.publish(body, headers=ours, **fields)
    except connection.connection_errors:
        raise  # the connection is gone: the message is redelivered
    except Exception as exc:  # refused: a full dead-letter queue
        if getattr(outcome, 'broker_dead', False):
            # Already the broker's dead letter: nowhere further to go.
            LOG.warning('the dead-letter queue refused message %s (%s): '
                        '%s; kept, tried again; make room with '
                        '"hwbus-manage dead purge"',
                        outcome.message_id or '-', outcome.reason, exc)
            return False
        if not outcome.keep_body:
            # Noise (no replay needs its body): the record the copy would
            # have been is this log line; handing it to the broker would
            # keep the body after all (round-7 attacker: bodies filled the
            # broker's dead-letter queue once this one was full).
            LOG.warning('the dead-letter queue refused message %s (%s): '
                        '%s; dropped, its body not kept anyway (%s, %d '
                        'bytes, from %s): %s; make room with "hwbus-manage '
                        'dead purge"', outcome.message_id or '-',
                        outcome.reason, exc, ours[BODY_DIGEST],
                        ours[BODY_SIZE], ours[ORIGINAL_USER] or '-',
                        outcome.detail[:200])
            message.ack()
            return True
        LOG.warning('the dead-letter queue refused message %s (%s): %s; '
                    'handed to the broker\'s own dead-lettering (reason '
                    '"rejected"); make room with "hwbus-manage dead purge"',
                    outcome.message_id or '-', outcome.reason, exc)
        message.reject(requeue=False)
        return True
    message.ack()
    return True


@dataclasses.dataclass
class Dead:
    message_id: str
    reason: str
    detail: str
    user_id: str
    boot_id: str
    dead_at: str
    size: int
    raw: Any = dataclasses.field(repr=False, default=None)

    @property
    def body_dropped(self) -> bool:
        """The consumer kept only the size and digest of the body."""
        return self.size > 0 and not wire.body_of(self.raw)

    def row(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name)
                for f in dataclasses.fields(self) if f.name != 'raw'}

    def full(self, max_size: int = envelope.MAX_SIZE) -> dict[str, Any]:
        """The row, the properties and headers, and the document when the
        body is one (inventories are not secret); else its size, digest
        and an escaped preview."""
        message = self.raw
        props = message.properties if isinstance(message.properties,
                                                 dict) else {}
        body = wire.body_of(message)
        shown = {k: escape(props.get(k), 200) for k in (
            'content_type', 'content_encoding', 'message_id', 'user_id',
            'timestamp') if props.get(k) is not None}
        if props.get(wire.UNDECODABLE):
            shown['undecodable'] = props[wire.UNDECODABLE]
        result = {**self.row(), 'properties': shown,
                  'headers': wire.safe_headers(
                      props.get('application_headers'), limit=64)}
        try:
            raw = body
            if props.get('content_encoding') == 'gzip':
                raw = envelope.inflate(body, max_size)
            result['document'] = json.loads(raw.decode('utf-8'))
        except (envelope.EnvelopeError, UnicodeDecodeError, ValueError,
                RecursionError):
            result['body'] = {'size': len(body), 'digest': wire.digest(body),
                              'preview': escape(body[:200])}
        return result


def _describe(message: Any) -> Dead:
    """A listing row for any message that can be in the queue.

    Dead letters copy what a sender chose (and the broker dead-letters
    some messages itself, unchanged): every field is read defensively
    and shown escaped.
    """
    props = message.properties if isinstance(message.properties,
                                             dict) else {}
    headers = props.get('application_headers')
    headers = headers if isinstance(headers, dict) else {}
    at = headers.get(DEAD_AT)
    try:
        dead_at = datetime.datetime.fromtimestamp(at, datetime.UTC) \
            .isoformat(timespec='seconds') if isinstance(at, int) else ''
    except (OverflowError, OSError, ValueError):
        dead_at = ''
    size = headers.get(BODY_SIZE)
    return Dead(
        message_id=escape(props.get('message_id') or '', 128),
        reason=escape(headers.get(DEAD_REASON) or
                      death_reason(headers) or '?', 64),
        detail=escape(headers.get(DEAD_DETAIL) or '', 1000),
        user_id=escape(headers.get(ORIGINAL_USER) or
                       props.get('user_id') or '', 64),
        boot_id=escape(headers.get('x-hwbus-boot-id') or '', 64),
        dead_at=dead_at,
        size=size if isinstance(size, int) else len(wire.body_of(message)),
        raw=message)


def death_reason(headers: dict[str, Any]) -> str | None:
    """The broker's own reason (x-death), e.g. delivery_limit."""
    deaths = headers.get('x-death')
    if isinstance(deaths, list) and deaths and isinstance(deaths[0], dict):
        return str(deaths[0].get('reason'))
    return None


class DeadLetters:
    def __init__(self, urls: list[str], queue: str) -> None:
        self.connection = kombu.Connection(urls)
        self.queue = queue

    def close(self) -> None:
        self.connection.release()

    def _walk(self, decide: Callable[[Dead], str | None],
              limit: int = 10000) -> list[tuple[Dead, str | None]]:
        """Get every message, ask decide(): 'ack' or anything else
        (requeue). Messages stay unacknowledged until all are settled at
        the end, so none comes round twice."""
        channel = wire.prepare(self.connection.channel())
        results, held = [], []
        try:
            for _ in range(limit):
                message = channel.basic_get(self.queue, no_ack=False)
                if message is None:
                    break
                dead = _describe(message)
                verdict = decide(dead)
                results.append((dead, verdict))
                held.append((message, verdict))
        finally:
            for message, verdict in held:
                if verdict == 'ack':
                    channel.basic_ack(message.delivery_tag)
                else:
                    channel.basic_reject(message.delivery_tag, requeue=True)
            channel.close()
        return results

    def list(self) -> builtins.list[Dead]:
        return [dead for dead, _ in self._walk(lambda dead: None)]

    def purge(self, match: Callable[[Dead], bool]) -> builtins.list[Dead]:
        return [dead for dead, verdict in self._walk(
            lambda dead: 'ack' if match(dead) else None)
            if verdict == 'ack']

    def replay(self, match: Callable[[Dead], bool],
               pipeline: Pipeline) -> builtins.list[tuple[Dead, Outcome]]:
        outcomes = []

        def decide(dead: Dead) -> str | None:
            if not match(dead):
                return None
            message = dead.raw
            if dead.body_dropped:
                outcome = Outcome(DEAD, 'body-not-kept', 'only the digest '
                                  'of this unverified body was kept: it '
                                  'cannot be replayed')
                outcomes.append((dead, outcome))
                return None
            props = dict(wire.message_properties(message))
            props['user_id'] = dead.user_id
            outcome = pipeline.process(wire.body_of(message), props,
                                       replay=True)
            outcomes.append((dead, outcome))
            return 'ack' if outcome.kind == APPLIED else None

        self._walk(decide)
        return outcomes


def matcher(ids: Iterable[str], reason: str | None,
            everything: bool) -> Callable[[Dead], bool]:
    ids = set(ids)

    def match(dead: Dead) -> bool:
        if everything:
            return True
        if reason and dead.reason != reason:
            return False
        return not ids or dead.message_id in ids or dead.boot_id in ids

    if not (ids or reason or everything):
        raise ValueError('name message ids, --reason or --all')
    return match
