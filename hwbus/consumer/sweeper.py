"""The consumer's sweeper thread: expired credentials and stray users.

It wakes at the next credential's expiry (so an expired credential's
broker user is gone within a second or so) and at least every
``sweep_interval``; the scan for stray broker users, which lists every
user, runs once an interval.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from hwbus.consumer import metrics
from hwbus.store.api import utcnow

LOG = logging.getLogger(__name__)


class Sweeper:
    def __init__(self, credentials: Any, interval: float,
                 stopping: threading.Event) -> None:
        self.credentials = credentials
        self.interval = interval
        self.stopping = stopping
        self.thread = threading.Thread(target=self._run,
                                       name='hwbus-sweeper', daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        last_full = time.monotonic()
        while not self.stopping.wait(self._until_next()):
            full = time.monotonic() - last_full >= self.interval
            if full:
                last_full = time.monotonic()
            try:
                result = self.credentials.sweep(orphans=full)
                metrics.CREDENTIALS.labels('expired').inc(len(result.expired))
            except Exception as exc:
                LOG.warning('credential sweep failed: %s', exc)

    def _until_next(self) -> float:
        try:
            expiry = self.credentials.store.next_expiry()
        except Exception:  # the store is down: the sweep will say so
            return self.interval
        if expiry is None:
            return self.interval
        due = (expiry - utcnow()).total_seconds() + 0.5
        return min(self.interval, max(due, 0.5))
