"""The batching revoker: broker users of used credentials, deleted off
the message's critical path.

A credential is good for one message. The store's ``received``
transition is the gate: from that UPDATE on, every other message of the
credential is refused by the pipeline, whether its broker user still
exists or not. Deleting the user (which also closes its connections) is
what stops the holder from publishing more; it costs an HTTP call to the
management API and RabbitMQ's time, so it happens here, in one thread,
for many users at once, instead of inside each worker's message:

* ``submit()`` queues a user and returns at once, unless the oldest user
  still waiting is older than ``max_delay``: then the caller waits (the
  consumer's intake slows down to what the broker can delete), so that a
  user outlives its credential's ``received`` state by about
  ``max_delay`` at most while the management API answers;
* the thread deletes what is queued in one call (up to ``batch_size``
  users, after letting a batch fill for ``linger`` seconds; batches
  also grow by themselves while a call is in flight), records
  the deletions in the store with one UPDATE, and retries failed calls
  with backoff;
* ``start()`` first queues every user the store says may still exist
  (``user_deleted_at`` unset past ``issued``), so revocations that a
  killed consumer left pending are finished at the next start.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from typing import Any

from hwbus import backoff
from hwbus.errors import TransientError

LOG = logging.getLogger(__name__)

# Users per management API call at most.
BATCH_SIZE = 100
# Seconds the thread lets a batch fill before it sends a call that is not
# full: under load one call then carries tens of users instead of one or
# two (the revoker's share of the consumer's CPU samples fell from 18 %
# to 4 %: py-spy on benchmarks/consume.py).
LINGER = 0.05
# Seconds a user may wait for its deletion before submit() makes callers
# wait too.
MAX_DELAY = 5.0
# Seconds a caller waits in submit() for the backlog before it gives up
# with RevocationsBehind (its message is retried like any transient
# failure).
SUBMIT_WAIT = 10.0


class RevocationsBehind(TransientError):
    """The broker does not delete users as fast as messages arrive (or
    its management API is down): intake waits for it."""

    reason = 'revocations-behind'


@dataclasses.dataclass
class _Item:
    username: str
    since: float        # time.monotonic() when it was submitted
    live: bool = True   # submitted by a message, not recovered at start


class Revoker:
    """One thread that deletes the broker users of used credentials.

    ``store`` needs ``users_to_delete()`` and ``mark_users_deleted()``;
    ``management`` needs ``delete_users()``. ``observe``, when given, is
    called with each live user's delay (seconds from submit to gone).
    """

    def __init__(self, store: Any, management: Any, *,
                 batch_size: int = BATCH_SIZE,
                 linger: float = LINGER,
                 max_delay: float = MAX_DELAY,
                 submit_wait: float = SUBMIT_WAIT,
                 max_backoff: float = 30.0,
                 observe: Any = None) -> None:
        self.store = store
        self.management = management
        self.batch_size = batch_size
        self.linger = linger
        self.max_delay = max_delay
        self.submit_wait = submit_wait
        self.max_backoff = max_backoff
        self.observe = observe
        self._cond = threading.Condition()
        # boot id -> item, oldest first: waiting, and in the current call.
        self._queue: dict[str, _Item] = {}
        self._inflight: dict[str, _Item] = {}
        self._failures = 0
        self._retry_at = 0.0
        self._stopping = False
        self._thread: threading.Thread | None = None

    # -- the callers' side ------------------------------------------------
    def submit(self, boot_id: str, username: str) -> None:
        """Queue the deletion of ``username``; wait while the backlog is
        older than ``max_delay``.

        :raises RevocationsBehind: the backlog did not shrink within
            ``submit_wait`` seconds; the user stays queued.
        """
        with self._cond:
            if boot_id not in self._queue and boot_id not in self._inflight:
                self._queue[boot_id] = _Item(username, time.monotonic())
                # The thread only needs waking for a first or a full batch.
                if len(self._queue) in (1, self.batch_size):
                    self._cond.notify_all()
            deadline = time.monotonic() + self.submit_wait
            while self._behind() and not self._stopping:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RevocationsBehind(
                        f'{self.pending()} broker users wait for their '
                        f'deletion, the oldest for more than '
                        f'{self.max_delay:g} s')
                self._cond.wait(min(left, 0.5))

    def pending(self) -> int:
        """Users queued or being deleted now."""
        return len(self._queue) + len(self._inflight)

    def _behind(self) -> bool:
        oldest = [next(iter(d.values())).since
                  for d in (self._inflight, self._queue) if d]
        return bool(oldest) and \
            time.monotonic() - min(oldest) > self.max_delay

    # -- the thread -------------------------------------------------------
    def start(self) -> None:
        """Queue what the store says is pending, then start deleting."""
        try:
            self.recover()
        except Exception as exc:  # the sweeper finishes them later
            LOG.warning('could not read pending revocations from the '
                        'store: %s', exc)
        self._thread = threading.Thread(target=self._run,
                                        name='hwbus-revoker', daemon=True)
        self._thread.start()

    def recover(self) -> int:
        """Queue every user the store has not recorded as deleted."""
        found = self.store.users_to_delete()
        now = time.monotonic()
        with self._cond:
            for boot_id, username in found:
                if boot_id not in self._queue and \
                        boot_id not in self._inflight:
                    self._queue[boot_id] = _Item(username, now, live=False)
            self._cond.notify_all()
        if found:
            LOG.info('finishing %d revocations left pending', len(found))
        return len(found)

    def stop(self, timeout: float = 10.0) -> None:
        """Delete what is queued (one last try each), within ``timeout``;
        what is left stays pending in the store for the next start."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        left = self.pending()
        if left:
            LOG.warning('stopped with %d broker users not yet deleted; the '
                        'next start (or the sweeper) deletes them', left)

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            self._delete(batch)

    def _next_batch(self) -> dict[str, _Item] | None:
        with self._cond:
            while True:
                now = time.monotonic()
                if self._queue and (now >= self._retry_at or
                                    (self._stopping and not self._failures)):
                    # Let a batch that is not full fill for ``linger``.
                    full_at = next(iter(self._queue.values())).since + \
                        self.linger
                    if (len(self._queue) >= self.batch_size or
                            now >= full_at or self._stopping):
                        break
                    self._cond.wait(full_at - now)
                    continue
                if self._stopping and (not self._queue or self._failures):
                    return None
                wait = self._retry_at - now if self._queue else None
                self._cond.wait(wait)
            batch = {}
            for boot_id in list(self._queue)[:self.batch_size]:
                batch[boot_id] = self._queue.pop(boot_id)
            self._inflight.update(batch)
            return batch

    def _delete(self, batch: dict[str, _Item]) -> None:
        try:
            self.management.delete_users(
                [item.username for item in batch.values()])
        except Exception as exc:
            with self._cond:
                for boot_id in batch:
                    del self._inflight[boot_id]
                # Back to the front: they are the oldest.
                self._queue = {**batch, **self._queue}
                self._failures += 1
                delay = backoff.delay(self._failures, cap=self.max_backoff)
                self._retry_at = time.monotonic() + delay
            LOG.warning('could not delete %d broker users (%s); retrying '
                        'in %.1f s', len(batch), exc, delay)
            return
        gone = time.monotonic()
        if self.observe is not None:
            for item in batch.values():
                if item.live:
                    self.observe(gone - item.since)
        try:
            self.store.mark_users_deleted(list(batch))
        except Exception as exc:  # the sweeper records them later
            LOG.warning('deleted %d broker users but could not record it: '
                        '%s', len(batch), exc)
        with self._cond:
            for boot_id in batch:
                del self._inflight[boot_id]
            self._failures = 0
            self._retry_at = 0.0
            self._cond.notify_all()

