"""The worker pool: the pipeline on each message, retried in place.

Transient failures (Ironic, the store, a busy boot) are retried for up to
``retry_window`` seconds, so an outage pauses intake instead of burning
every message's delivery limit; after the window the message goes back
to the queue (one delivery counted). A failure outside both error
families (a bug, or input nobody foresaw) is tried at most
``internal_attempts`` times, then dead-lettered ``internal-error`` with
its traceback logged once. A worker that gives a message it received
back to the queue releases its claim, so the next delivery need not wait
out the apply lease.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

from hwbus import backoff
from hwbus.consumer import metrics
from hwbus.consumer.outcome import INTERNAL, MESSAGE_EXPIRED, Kind, Outcome

LOG = logging.getLogger(__name__)


class Workers:
    def __init__(self, pipeline: Any, workers: int, stopping: threading.Event,
                 retry_window: float = 600.0, max_backoff: float = 30.0,
                 internal_attempts: int = 3) -> None:
        self.pipeline = pipeline
        self.stopping = stopping
        self.retry_window = retry_window
        self.max_backoff = max_backoff
        self.internal_attempts = internal_attempts
        self.pool = concurrent.futures.ThreadPoolExecutor(
            workers, thread_name_prefix='hwbus-worker')

    def submit(self, body: bytes, properties: Mapping[str, Any]
               ) -> concurrent.futures.Future:
        return self.pool.submit(self.work, body, properties)

    def submit_dead(self, properties: Mapping[str, Any], reason: str
                    ) -> concurrent.futures.Future:
        """A message the broker dead-lettered itself, to an outcome."""
        return self.pool.submit(self.dead_lettered, properties, reason)

    def dead_lettered(self, properties: Mapping[str, Any],
                      reason: str) -> Outcome:
        """What becomes of a message the broker dead-lettered: a copy in
        the dead-letter queue, with its body only when a replay may need
        it (``delivery_limit``: the consumer tried it and could not
        finish; ``rejected``: the dead-letter queue was full).

        A message that expired in the queue (its sender set
        ``expiration``; a ramdisk never does) never reached the pipeline:
        it is the sender's noise, kept as size and digest, and it ends
        its sender's credential as any refused message does.
        """
        expired = reason == 'expired'
        outcome = Outcome(
            Kind.DEAD, MESSAGE_EXPIRED if expired else reason,
            'expired in the queue (the sender set an expiration)' if expired
            else f'dead-lettered by the broker ({reason})',
            message_id=str(properties.get('message_id') or '')[:128],
            keep_body=not expired, broker_dead=True)
        if expired:
            self.pipeline.refused(properties, outcome)
        metrics.MESSAGES.labels(Kind.DEAD, outcome.reason).inc()
        return outcome

    def shutdown(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    def work(self, body: bytes, properties: Mapping[str, Any]) -> Outcome:
        """One message to an outcome the connection can settle."""
        metrics.IN_FLIGHT.inc()
        try:
            end = time.monotonic() + self.retry_window
            attempt = internal = 0
            owned = False
            while True:
                outcome = self.pipeline.process(body, properties, owned)
                owned = outcome.claimed
                if outcome.kind in (Kind.APPLIED, Kind.DEAD):
                    return outcome
                if outcome.reason == INTERNAL:
                    internal += 1
                    if internal == 1:
                        LOG.error('internal error on message %s:\n%s',
                                  outcome.message_id or '-', outcome.trace)
                    if internal >= self.internal_attempts and \
                            self.pipeline.refused(properties, outcome):
                        outcome.kind = Kind.DEAD
                        metrics.MESSAGES.labels(Kind.DEAD, INTERNAL).inc()
                        return outcome
                attempt += 1
                delay = backoff.delay(attempt, cap=self.max_backoff)
                if (time.monotonic() + delay > end
                        or self.stopping.wait(delay)):
                    self._release(outcome)
                    return outcome
        finally:
            metrics.IN_FLIGHT.dec()

    def _release(self, outcome: Outcome) -> None:
        if not (outcome.claimed and outcome.boot_id and outcome.message_id):
            return
        try:
            self.pipeline.store.release(outcome.boot_id, outcome.message_id)
        except Exception as exc:  # the lease runs out anyway
            LOG.warning('could not release boot %s: %s', outcome.boot_id,
                        exc)
