"""hwbus-consumer's connection: kombu on the quorum queue.

One thread owns the AMQP connection (kombu channels are not thread-safe):
it receives deliveries, hands them to the workers (hwbus.consumer.
workers), and acks, requeues or dead-letters (hwbus.consumer.deadletters)
each when its worker is done. Nothing is acked before it is applied or
its dead letter is confirmed.

Why not kombu's ``ConsumerMixin``: its loop waits a fixed
``safety_interval`` in ``drain_events`` between ``on_iteration`` calls,
and the acks of finished work can only be sent from this thread. A long
interval bounds throughput by prefetch/interval, a short one polls all
the time even when idle; this loop waits long when nothing is in flight
and briefly while workers are busy (docs/design.md has the figures).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import signal
import threading
import time
from typing import Any

import kombu

from hwbus import backoff
from hwbus.broker import amqp_errors
from hwbus.consumer import deadletters, metrics, wire
from hwbus.consumer.outcome import Kind
from hwbus.consumer.sweeper import Sweeper
from hwbus.consumer.workers import Workers

LOG = logging.getLogger(__name__)

# Seconds drain_events waits: with work in flight (so that finished work
# is settled promptly) and without.
BUSY_WAIT, IDLE_WAIT = 0.005, 0.2
# Seconds between two heartbeat checks and two queue-depth readings.
HEARTBEAT_EVERY, DEPTH_EVERY = 1.0, 10.0
# A connection that consumed this long was a good one: its loss starts
# the reconnect backoff over (one blip a day must not cost the 30 s a
# string of earlier losses reached), while a connection lost again at
# once keeps it growing.
STABLE_AFTER = 60.0
# Seconds before a broker dead letter the dead-letter queue refused
# (full) is tried again.
REFUSED_WAIT = 5.0


class _Later:
    """An outcome that is ready again after ``delay`` seconds (a refused
    copy's next try), settled like a worker's future."""

    def __init__(self, outcome: Any, delay: float) -> None:
        self.outcome, self.at = outcome, time.monotonic() + delay

    def done(self) -> bool:
        return time.monotonic() >= self.at

    def result(self) -> Any:
        return self.outcome


def _depth_of(channel: Any, queue: str) -> int:
    """Messages ready in ``queue``, by a passive declare on a channel of
    its own, never the consuming one: the broker closes the channel a
    declare fails on (a queue missing or not readable), which would end
    the consumer on it. Raises what the declare raised."""
    probe = channel.connection.channel()
    try:
        _, count, _ = probe.queue_declare(queue, passive=True)
        return count
    finally:
        try:
            probe.close()
        except Exception as exc:
            LOG.debug('closing the channel that read %s: %s', queue, exc)


@dataclasses.dataclass
class Settings:
    urls: list[str]
    queue: str = 'hwbus.inventory'
    dead_exchange: str = 'hwbus.dead'
    # Only its depth is read (hwbus_queue_depth).
    dead_queue: str = 'hwbus.inventory.dead'
    # The broker's own dead letters (Topology.broker_dead_queue), which
    # the consumer sorts into dead_queue; None: not read.
    broker_dead_queue: str | None = 'hwbus.inventory.dead.broker'
    workers: int = 16
    prefetch: int = 32
    retry_window: float = 600.0
    max_backoff: float = 30.0
    shutdown_timeout: float = 60.0
    internal_attempts: int = 3
    sweep_interval: float = 60.0
    heartbeat: float = 30.0
    # kombu's ``ssl`` argument: False for amqp://, a dict for amqps://.
    ssl: bool | dict[str, Any] = False


class Service:
    def __init__(self, pipeline: Any, settings: Settings,
                 credentials: Any = None, revoker: Any = None) -> None:
        self.settings = settings
        self.credentials = credentials
        # Deletes the broker users of received credentials (hwbus.
        # credentials.revoker); started before the first message, so that
        # what a killed consumer left pending is finished first.
        self.revoker = revoker
        self.stopping = threading.Event()
        self.workers = Workers(pipeline, settings.workers, self.stopping,
                               retry_window=settings.retry_window,
                               max_backoff=settings.max_backoff,
                               internal_attempts=settings.internal_attempts)
        # (a worker's future or a _Later, the delivery)
        self.pending: list[tuple[Any, Any]] = []
        self._sorter: Any = None
        self.returned = 0  # messages given back to the queue (since start)
        self._consuming_since: float | None = None
        self._at_stop = (0, 0)

    # -- deliveries ---------------------------------------------------
    def _on_message(self, message: Any) -> None:
        """Hand a delivery to the workers; never raise on its content.

        This runs in the connection's thread: an exception here would
        drop the connection and the broker would hand the same message to
        the next one. Whatever cannot be turned into work is refused
        with the broker's own dead-lettering.
        """
        try:
            future = self.workers.submit(wire.body_of(message),
                                         wire.message_properties(message))
        except Exception as exc:
            message_id = wire.short_text(
                wire.raw_properties(message).get('message_id'), 128)
            LOG.error('could not take message %s: %s', message_id or '-',
                      exc)
            message.reject(requeue=False)
            return
        self.pending.append((future, message))

    def _on_broker_dead(self, message: Any) -> None:
        """A message the broker dead-lettered itself (hwbus.broker.
        topology.Topology.bindings says why they come here), sorted by
        the reason the broker gave: the newest x-death entry, which the
        broker writes (a sender may forge older ones, or x-first-death-*,
        but not that)."""
        try:
            reason = deadletters.death_reason(message.headers or {}) or \
                'dead-lettered'
            future = self.workers.submit_dead(
                wire.message_properties(message), reason)
        except Exception as exc:
            LOG.error('could not sort a dead letter of the broker\'s: %s',
                      exc)
            message.reject(requeue=True)
            return
        self.pending.append((future, message))

    def _settle(self, connection: kombu.Connection,
                wait: float = 0.0) -> None:
        """Ack, dead-letter or requeue every message whose worker is done."""
        futures = [f for f, _ in self.pending
                   if isinstance(f, concurrent.futures.Future)]
        if wait and futures:
            concurrent.futures.wait(futures, timeout=wait)
        still = []
        # A dead letter's confirm is awaited on this connection, which
        # may deliver more messages meanwhile: they are appended to
        # self.pending and met later in this same loop.
        for future, message in self.pending:
            if not future.done():
                still.append((future, message))
                continue
            outcome = future.result()
            if outcome.kind == Kind.APPLIED:
                message.ack()
            elif outcome.kind == Kind.DEAD:
                if not deadletters.publish(connection,
                                           self.settings.dead_exchange,
                                           message, outcome):
                    still.append((_Later(outcome, REFUSED_WAIT), message))
            else:
                message.reject(requeue=True)
                self.returned += 1
        self.pending = still

    # -- the connection -------------------------------------------------
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
            self._sorter = self._sort_broker_dead_letters(channel)
            self._consuming_since = time.monotonic()
            last_depth = last_beat = 0.0
            try:
                while not self.stopping.is_set():
                    # py-amqp sends heartbeats and notices missing ones
                    # only when asked: a silently cut network would
                    # otherwise leave this loop waiting forever.
                    if time.monotonic() - last_beat > HEARTBEAT_EVERY:
                        last_beat = time.monotonic()
                        connection.heartbeat_check()
                    try:
                        connection.drain_events(
                            timeout=BUSY_WAIT if self.pending else IDLE_WAIT)
                    except TimeoutError:
                        pass
                    self._settle(connection)
                    if time.monotonic() - last_depth > DEPTH_EVERY:
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
        # A copy waiting for room in a full dead-letter queue (_Later) is
        # not in flight: it goes back to its queue now, not at the
        # deadline.
        while any(not isinstance(f, _Later) for f, _ in self.pending) and \
                time.monotonic() < deadline:
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

    def _sort_broker_dead_letters(self, channel: Any) -> Any:
        """Consume the broker's own dead letters too, when that queue
        exists: a broker set up by an older hwbus-manage has none (and
        its dead-letter queue takes them all, as before)."""
        queue = self.settings.broker_dead_queue
        if not queue:
            return None
        try:
            _depth_of(channel, queue)
        except Exception as exc:
            LOG.warning('not sorting the broker\'s dead letters: %s (run '
                        '"hwbus-manage setup-broker" to add queue %s)',
                        exc, queue)
            return None
        sorter = kombu.Consumer(channel, queues=[kombu.Queue(
            queue, no_declare=True)], on_message=self._on_broker_dead,
            no_ack=False)
        sorter.consume()
        return sorter

    def _depth(self, channel: Any) -> None:
        """hwbus_queue_depth of the inventory and the dead-letter queue.

        Each is read on a channel of its own (_depth_of), and intake must
        go on whatever the broker answers. A depth that cannot be read is
        removed, not left at its last value.
        """
        for queue in dict.fromkeys(q for q in (
                self.settings.queue, self.settings.dead_queue,
                self.settings.broker_dead_queue) if q):
            try:
                metrics.QUEUE_DEPTH.labels(queue).set(
                    _depth_of(channel, queue))
            except Exception as exc:  # metrics must not stop intake
                LOG.debug('queue depth of %s: %s', queue, exc)
                try:
                    metrics.QUEUE_DEPTH.remove(queue)
                except KeyError:
                    pass

    def run(self) -> None:
        """Consume until stop(); reconnect after any connection loss."""
        if self.revoker is not None:
            self.revoker.start()
        if self.credentials is not None and self.settings.sweep_interval:
            Sweeper(self.credentials, self.settings.sweep_interval,
                    self.stopping).start()
        attempt = 0
        while not self.stopping.is_set():
            try:
                self._consume()
                attempt = 0
            except Exception as exc:  # lost broker or a bug: start over
                if self.stopping.is_set():
                    break
                since, self._consuming_since = self._consuming_since, None
                if since is not None and \
                        time.monotonic() - since >= STABLE_AFTER:
                    attempt = 0
                attempt += 1
                delay = backoff.delay(attempt, base=1.0)
                # A refused login will not mend itself: say so loudly, and
                # which option fixes it; keep trying (the user may be set
                # up later).
                log = LOG.error if amqp_errors.is_login_refused(exc) \
                    else LOG.warning
                log('broker connection lost: %s; reconnecting in %.1f s',
                    amqp_errors.describe(exc), delay,
                    exc_info=not amqp_errors.is_connection_error(exc))
                self.stopping.wait(delay)
        self.workers.shutdown()
        if self.revoker is not None:
            self.revoker.stop(timeout=self.settings.shutdown_timeout)

    def stop(self, *_args: Any) -> None:
        # What was in flight when asked to stop, for the last log line.
        self._at_stop = (self.returned, len(self.pending))
        self.stopping.set()

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
