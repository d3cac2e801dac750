"""hwbus-consumer's loop: kombu on the quorum queue, a pool of workers.

One thread owns the AMQP connection (kombu channels are not thread-safe):
it receives deliveries, hands them to the worker pool, and acks, rejects
or dead-letters each when its worker is done. Workers run the pipeline
and, for transient failures, retry in place with backoff for up to
``retry_window`` seconds, so an Ironic outage pauses intake instead of
burning every message's delivery limit; after the window the message goes
back to the queue (one delivery counted). Nothing is acked before it is
applied or safely dead-lettered.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import random
import signal
import threading
import time
from typing import Any

import kombu

from hwbus.broker import amqp_errors
from hwbus.consumer import metrics, wire
from hwbus.consumer.pipeline import APPLIED, DEAD, INTERNAL, Outcome, Pipeline
from hwbus.credentials import Credentials
from hwbus.store.api import utcnow

LOG = logging.getLogger(__name__)

DEAD_REASON = 'x-hwbus-dead-reason'
DEAD_DETAIL = 'x-hwbus-dead-detail'
DEAD_AT = 'x-hwbus-dead-at'
ORIGINAL_USER = 'x-hwbus-original-user-id'
ORIGINAL_KEY = 'x-hwbus-original-routing-key'
BODY_SIZE = 'x-hwbus-body-size'
BODY_DIGEST = 'x-hwbus-body-digest'


def _short_text(value: Any, limit: int = 255) -> str:
    """A property value as a short string an AMQP client can send."""
    if isinstance(value, str):
        return value[:limit]
    return ''


def _timestamp(value: Any) -> int | None:
    return value if isinstance(value, int) and 0 <= value < 2**63 else None


def _message_id(message: Any) -> str:
    props = message.properties if isinstance(message.properties,
                                             dict) else {}
    return _short_text(props.get('message_id'), 128) or '-'


def message_properties(message: Any) -> dict[str, Any]:
    """The AMQP properties the envelope checks.

    Works for kombu messages and for py-amqp ``basic_get`` ones alike:
    both keep the wire properties in ``message.properties``. Total: a
    message whose properties did not decode carries ``undecodable``.
    """
    props = message.properties if isinstance(message.properties,
                                             dict) else {}
    headers = props.get('application_headers')
    return {'content_type': props.get('content_type'),
            'content_encoding': props.get('content_encoding'),
            'user_id': props.get('user_id'),
            'message_id': props.get('message_id'),
            'timestamp': props.get('timestamp'),
            'undecodable': props.get(wire.UNDECODABLE),
            'routing_key': (getattr(message, 'delivery_info', None)
                            or {}).get('routing_key'),
            'headers': dict(headers) if isinstance(headers, dict) else {}}


@dataclasses.dataclass
class Settings:
    urls: list[str]
    queue: str = 'hwbus.inventory'
    dead_exchange: str = 'hwbus.dead'
    # Only its depth is read (hwbus_queue_depth).
    dead_queue: str = 'hwbus.inventory.dead'
    workers: int = 4
    prefetch: int = 8
    retry_window: float = 600.0
    max_backoff: float = 30.0
    shutdown_timeout: float = 60.0
    internal_attempts: int = 3
    sweep_interval: float = 60.0
    heartbeat: float = 30.0
    # kombu's ``ssl`` argument: False for amqp://, a dict for amqps://.
    ssl: bool | dict[str, Any] = False


class Service:
    def __init__(self, pipeline: Pipeline, settings: Settings,
                 credentials: Credentials | None = None) -> None:
        self.pipeline = pipeline
        self.settings = settings
        self.credentials = credentials
        self.stopping = threading.Event()
        self.pool = concurrent.futures.ThreadPoolExecutor(
            settings.workers, thread_name_prefix='hwbus-worker')
        self.pending: list[tuple[concurrent.futures.Future, Any]] = []
        self.returned = 0  # messages given back to the queue (since start)
        self._at_stop = (0, 0)
        self._sweeper: threading.Thread | None = None

    # -- worker side ------------------------------------------------------
    def _work(self, body: bytes, properties: dict[str, Any]) -> Outcome:
        """Run the pipeline, retrying in place what may succeed later.

        Transient failures (Ironic, the store, a busy boot) are retried
        for up to ``retry_window``; a failure outside both error families
        (a bug, or input nobody foresaw) at most ``internal_attempts``
        times, then the message is dead-lettered ``internal-error`` with
        its traceback logged once.
        """
        metrics.IN_FLIGHT.inc()
        try:
            end = time.monotonic() + self.settings.retry_window
            attempt = internal = 0
            owned = False
            while True:
                outcome = self.pipeline.process(body, properties, owned)
                owned = outcome.claimed
                if outcome.kind in (APPLIED, DEAD):
                    return outcome
                if outcome.reason == INTERNAL:
                    internal += 1
                    if internal == 1:
                        LOG.error('internal error on message %s:\n%s',
                                  outcome.message_id or '-', outcome.trace)
                    if internal >= self.settings.internal_attempts:
                        outcome.kind = DEAD
                        metrics.MESSAGES.labels(DEAD, INTERNAL).inc()
                        return outcome
                attempt += 1
                delay = min(self.settings.max_backoff,
                            0.5 * 2 ** min(attempt, 10))
                delay *= random.uniform(0.5, 1.0)  # noqa: S311 - jitter
                if (time.monotonic() + delay > end
                        or self.stopping.wait(delay)):
                    self._release(outcome)
                    return outcome
        finally:
            metrics.IN_FLIGHT.dec()

    def _release(self, outcome: Outcome) -> None:
        """This worker gives a message it received back to the queue:
        whoever gets it next need not wait for this worker's lease."""
        if not (outcome.claimed and outcome.boot_id and outcome.message_id):
            return
        try:
            self.pipeline.store.release(outcome.boot_id, outcome.message_id)
        except Exception as exc:  # the lease runs out anyway
            LOG.warning('could not release boot %s: %s', outcome.boot_id,
                        exc)

    # -- connection side --------------------------------------------------
    def _on_message(self, message: Any) -> None:
        """Hand a delivery to the workers; never raise on its content.

        This runs in the connection's thread: an exception here would
        drop the connection and the broker would hand the same message to
        the next one. Whatever cannot be turned into work is refused
        with the broker's own dead-lettering.
        """
        try:
            future = self.pool.submit(self._work, wire.body_of(message),
                                      message_properties(message))
        except Exception as exc:
            LOG.error('could not take message %s: %s', _message_id(message),
                      exc)
            message.reject(requeue=False)
            return
        self.pending.append((future, message))

    def _settle(self, connection: kombu.Connection,
                wait: float = 0.0) -> None:
        """Ack, dead-letter or requeue every message whose worker is done."""
        if wait and self.pending:
            concurrent.futures.wait([f for f, _ in self.pending],
                                    timeout=wait)
        still = []
        for future, message in self.pending:
            if not future.done():
                still.append((future, message))
                continue
            outcome = future.result()
            if outcome.kind == APPLIED:
                message.ack()
            elif outcome.kind == DEAD:
                self._dead_letter(connection, message, outcome)
            else:
                message.reject(requeue=True)
                self.returned += 1
        self.pending = still

    def _dead_letter(self, connection: kombu.Connection, message: Any,
                     outcome: Outcome) -> None:
        """Publish a copy with the reason (confirmed), then ack the original.

        A plain reject would dead-letter without saying why. The copy drops
        ``user_id`` (the broker would refuse it from our user) and keeps it
        in a header, so a replay can verify the message again; its other
        headers are the ones that can be encoded again whatever the
        original held (wire.safe_headers). Only a body that was verified
        and parsed is copied (a replay needs it); of any other, the sender's
        noise, the copy keeps the size and digest, so no credential can
        fill the dead-letter queue with bodies. When the dead-letter queue
        refuses the copy (full), the message is handed to the broker's own
        dead-lettering (at least once: kept until there is room), which
        loses the reason but neither the message nor the consumer's pace.
        """
        props = message.properties if isinstance(message.properties,
                                                  dict) else {}
        body = wire.body_of(message)
        headers = wire.safe_headers(message.headers)
        headers.update({
            DEAD_REASON: outcome.reason,
            DEAD_DETAIL: outcome.detail[:1000],
            DEAD_AT: int(time.time()),
            ORIGINAL_USER: _short_text(props.get('user_id')),
            ORIGINAL_KEY: _short_text((message.delivery_info or {}).get(
                'routing_key')),
            BODY_SIZE: len(body),
            BODY_DIGEST: wire.digest(body),
        })
        if not outcome.verified:
            body = b''
        try:
            producer = kombu.Producer(connection.default_channel)
            producer.publish(
                body, exchange=self.settings.dead_exchange,
                routing_key=outcome.reason or 'dead', headers=headers,
                content_type=_short_text(props.get('content_type')) or
                'application/octet-stream',
                content_encoding=_short_text(props.get('content_encoding'))
                or 'binary',
                message_id=_short_text(props.get('message_id')) or None,
                timestamp=_timestamp(props.get('timestamp')),
                delivery_mode=2)
        except connection.connection_errors:
            raise  # the connection is gone: the message is redelivered
        except Exception as exc:  # refused: a full dead-letter queue
            LOG.warning('the dead-letter queue refused message %s (%s): %s;'
                        ' handed to the broker\'s own dead-lettering '
                        '(reason "rejected"); make room with "hwbus-manage '
                        'dead purge"', outcome.message_id or '-',
                        outcome.reason, exc)
            message.reject(requeue=False)
            return
        message.ack()

    def _consume(self) -> None:
        settings = self.settings
        queue = kombu.Queue(settings.queue, no_declare=True)
        with kombu.Connection(
                settings.urls, failover_strategy='round-robin',
                heartbeat=settings.heartbeat, ssl=settings.ssl,
                transport_options={'confirm_publish': True,
                                   'max_retries': 1}) as connection:
            connection.ensure_connection(max_retries=1)
            LOG.info('connected to %s; consuming %s',
                     connection.as_uri(), settings.queue)
            channel = wire.prepare(connection.channel())
            consumer = kombu.Consumer(channel, queues=[queue],
                                      on_message=self._on_message,
                                      no_ack=False)
            consumer.qos(prefetch_count=settings.prefetch)
            consumer.consume()
            last_depth = last_beat = 0.0
            try:
                while not self.stopping.is_set():
                    # py-amqp sends heartbeats and notices missing ones
                    # only when asked: a silently cut network would
                    # otherwise leave this loop waiting forever.
                    if time.monotonic() - last_beat > 1.0:
                        last_beat = time.monotonic()
                        connection.heartbeat_check()
                    # Settle finished work promptly: while messages are in
                    # flight, wait for the network only briefly.
                    wait = 0.005 if self.pending else 0.2
                    try:
                        connection.drain_events(timeout=wait)
                    except TimeoutError:
                        pass
                    self._settle(connection)
                    if time.monotonic() - last_depth > 10:
                        last_depth = time.monotonic()
                        self._depth(channel)
                consumer.cancel()
                self._drain_on_shutdown(connection)
            finally:
                self.pending = []

    def _drain_on_shutdown(self, connection: kombu.Connection) -> None:
        """Finish what is in flight within the timeout; return the rest.

        Workers that were retrying give up at once (``stopping``) and
        release their claim, so the next consumer takes their messages
        over without waiting out the apply lease.
        """
        returned_before, in_flight = self._at_stop
        deadline = time.monotonic() + self.settings.shutdown_timeout
        while self.pending and time.monotonic() < deadline:
            try:
                connection.drain_events(timeout=0.1)
            except TimeoutError:
                pass
            self._settle(connection, wait=0.1)
        for _, message in self.pending:
            message.reject(requeue=True)
        returned = self.returned - returned_before + len(self.pending)
        LOG.info('stopped: of %d messages in flight, %d finished and %d '
                 'returned to the queue', in_flight, in_flight - returned,
                 returned)

    def _depth(self, channel: Any) -> None:
        """hwbus_queue_depth of the inventory and the dead-letter queue.

        Each passive declare has a channel of its own, never the
        consuming one: the broker closes the channel a declare fails on
        (a queue missing or not readable), which would end the consumer
        on it, and intake must go on. A depth that cannot be read is
        removed, not left at its last value.
        """
        for queue in dict.fromkeys((self.settings.queue,
                                    self.settings.dead_queue)):
            probe = None
            try:
                probe = channel.connection.channel()
                _, count, _ = probe.queue_declare(queue, passive=True)
                metrics.QUEUE_DEPTH.labels(queue).set(count)
            except Exception as exc:  # metrics must not stop intake
                LOG.debug('queue depth of %s: %s', queue, exc)
                try:
                    metrics.QUEUE_DEPTH.remove(queue)
                except KeyError:
                    pass
            finally:
                try:
                    if probe is not None:
                        probe.close()
                except Exception as exc:
                    LOG.debug('queue depth of %s: %s', queue, exc)

    def _sweep_forever(self) -> None:
        """Sweep every ``sweep_interval``, and at each expiry: an expired
        credential's broker user is deleted within a second or so, not
        up to a whole interval later."""
        last_full = time.monotonic()
        while not self.stopping.wait(self._until_next_sweep()):
            # The orphan scan lists every broker user: once an interval.
            full = time.monotonic() - last_full >= \
                self.settings.sweep_interval
            if full:
                last_full = time.monotonic()
            try:
                result = self.credentials.sweep(orphans=full)
                metrics.CREDENTIALS.labels('expired').inc(len(result.expired))
            except Exception as exc:
                LOG.warning('credential sweep failed: %s', exc)

    def _until_next_sweep(self) -> float:
        interval = self.settings.sweep_interval
        try:
            expiry = self.credentials.store.next_expiry()
        except Exception:  # the store is down: the sweep will say so
            return interval
        if expiry is None:
            return interval
        due = (expiry - utcnow()).total_seconds() + 0.5
        return min(interval, max(due, 0.5))

    def run(self) -> None:
        """Consume until stop(); reconnect after any connection loss."""
        if self.credentials is not None and self.settings.sweep_interval:
            self._sweeper = threading.Thread(target=self._sweep_forever,
                                             name='hwbus-sweeper',
                                             daemon=True)
            self._sweeper.start()
        delay = 1.0
        while not self.stopping.is_set():
            try:
                self._consume()
                delay = 1.0
            except Exception as exc:  # lost broker or a bug: start over
                if self.stopping.is_set():
                    break
                # A refused login will not mend itself: say so loudly, and
                # which option fixes it; keep trying (the user may be set
                # up later).
                log = LOG.error if amqp_errors.is_login_refused(exc) \
                    else LOG.warning
                log('broker connection lost: %s; reconnecting in %.0f s',
                    amqp_errors.describe(exc), delay,
                    exc_info=not amqp_errors.is_connection_error(exc))
                self.stopping.wait(delay)
                delay = min(delay * 2, 30.0)
        self.pool.shutdown(wait=True, cancel_futures=True)

    def stop(self, *_args: Any) -> None:
        # What was in flight when asked to stop, for the last log line.
        self._at_stop = (self.returned, len(self.pending))
        self.stopping.set()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)

