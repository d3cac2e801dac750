"""Bursts of boots and the count of what became of them."""

from __future__ import annotations

import collections
import concurrent.futures
import threading
import time
from collections.abc import Callable

from tests.figures import Figures
from tests.functional import boots

DEAD = 'hwbus.inventory.dead'
QUEUE = 'hwbus.inventory'
FIGURES = Figures('chaos', 'fault', (
    'published', 'applied', 'dead', 'lost', 'twice', 'recovery_s',
    'drained_s', 'total_s'))


class Burst:
    """Issue and publish boots from a pool of threads, as ramdisks would.

    ``published`` counts confirmed publishes as they happen, so a test can
    strike when the burst is half way.
    """

    def __init__(self, credentials, first: int, count: int,
                 threads: int = 8, deadline: float = 600) -> None:
        self.numbers = range(first, first + count)
        self.macs = [boots.mac_for(i) for i in self.numbers]
        self.published = 0
        self.failed: list[str] = []
        self._lock = threading.Lock()
        self._deadline = deadline
        self._pool = concurrent.futures.ThreadPoolExecutor(threads)
        # Credentials first, as the boot server hands them out at PXE
        # time; the publishes are the burst.
        self.issued = list(self._pool.map(
            lambda i: credentials.issue(mac=boots.mac_for(i), after='none'),
            self.numbers))
        self.started = time.monotonic()
        self._futures = [self._pool.submit(self._one, issued, i)
                         for issued, i in zip(self.issued, self.numbers,
                                              strict=True)]

    def _one(self, issued, i: int) -> None:
        try:
            boots.publish(issued, i, deadline=self._deadline)
        except Exception as exc:  # counted, and the test fails on it
            with self._lock:
                self.failed.append(f'{boots.mac_for(i)}: {exc}')
            return
        with self._lock:
            self.published += 1

    def wait_published(self, at_least: int, timeout: float = 600) -> None:
        end = time.monotonic() + timeout
        while self.published + len(self.failed) < at_least:
            if time.monotonic() > end:
                raise AssertionError(f'only {self.published} published')
            time.sleep(0.1)

    def join(self) -> None:
        concurrent.futures.wait(self._futures)
        self._pool.shutdown()


class Progress:
    """Samples a count (e.g. inventories applied) in the background, so
    that recovery can be read off after the fact."""

    def __init__(self, count: Callable[[], int], every: float = 0.5) -> None:
        self.samples: list[tuple[float, int]] = []
        self._count = count
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            try:
                self.samples.append((time.monotonic(), self._count()))
            except Exception:  # noqa: S112 - the store may be down: skip
                continue

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def recovery(self, since: float) -> float | None:
        """Seconds from ``since`` until the count next went up."""
        before = [n for t, n in self.samples if t <= since]
        base = before[-1] if before else 0
        for t, n in self.samples:
            if t > since and n > base:
                return round(t - since, 1)
        return None

    def drained(self, since: float, target: int) -> float | None:
        """Seconds from ``since`` until the count reached ``target``."""
        for t, n in self.samples:
            if n >= target:
                return round(max(0.0, t - since), 1)
        return None


def tally(ironic, broker, macs: list[str], published: int) -> dict:
    """What became of the boots with these MACs, from Ironic and the
    dead-letter queue (read without consuming)."""
    wanted = set(macs)
    ports = [p for p in ironic.ports() if p['address'] in wanted]
    per_mac = collections.Counter(p['address'] for p in ports)
    applied = len(per_mac)
    twice = sum(n - 1 for n in per_mac.values())
    dead = boots.depth(broker, DEAD)
    return {'published': published, 'applied': applied, 'dead': dead,
            'lost': published - applied - dead, 'twice': twice}


def wait_settled(ironic, broker, macs: list[str], published: int,
                 timeout: float) -> dict:
    """Poll until every published boot is applied or dead; the tally."""
    end = time.monotonic() + timeout
    while True:
        counts = tally(ironic, broker, macs, published)
        if counts['lost'] <= 0 or time.monotonic() > end:
            return counts
        time.sleep(2)
