"""How many messages the consumer applies to Ironic at once, found by
watching Ironic.

A burst of boots (a rack powered on at once) must drain into Ironic at
the best rate that Ironic sustains, and must not take Ironic from the
operators and services that use it meanwhile. A fixed number of
workers is either too few for a large Ironic or too many for a small
one, so the number of applies in flight is a limit that adapts, in the
manner of TCP's congestion window and of the gradient concurrency
limiters (Netflix's concurrency-limits, Envoy's adaptive concurrency):

* latency is the signal: each *window* (as many finished applies as the
  limit, at least ``MIN_WINDOW``) gives a mean apply time, compared with
  the *baseline*, the lowest window mean of the last ``BASELINE_WINDOWS``
  windows (so that an Ironic that became slower for good is not held to
  its old speed for ever);
* **additive increase** while the mean stays within ``tolerance`` times
  the baseline and the limit was reached in the window (a limit nobody
  uses is not raised): one more apply per window, doubling instead until
  the first sign of congestion (slow start);
* **multiplicative decrease** when the mean exceeds it (times ``LATENCY_CUT``)
  or when Ironic answers 5xx, 409, 429 or times out (hwbus.ironic.
  IronicUnavailable, times ``FAILURE_CUT``), once for the applies that were
  in flight together (the failures of applies started before a cut are
  its echo, as TCP cuts once per round trip), so that one bad second
  does not take the limit to the floor. Failures that do take it to the
  floor forget the baseline: the Ironic that answers after an outage is
  measured afresh rather than against the one before it.

The limit stays between 1 and ``ceiling`` ([consumer] ironic_concurrency;
the workers bound it too). A worker waiting for a place calls ``renew``
every ``wait`` seconds (the pipeline renews its claim on the message
there, so that a redelivery elsewhere does not take it over) and keeps
waiting: a place frees as soon as an apply ends, and every apply is
bounded by Ironic's timeout. Only applies that got an answer from Ironic
are samples; a message refused before the appliers never takes a place.
"""

from __future__ import annotations

import collections
import contextlib
import threading
import time
from collections.abc import Callable, Iterator

from hwbus import ironic

MIN_WINDOW = 4          # applies per window at least
BASELINE_WINDOWS = 50   # the baseline is the lowest mean of these
LATENCY_CUT = 0.75      # limit times this when the mean exceeds tolerance
FAILURE_CUT = 0.5       # limit times this when Ironic fails for load
WAIT = 30.0             # seconds between two renew() while waiting


class AdaptiveLimit:
    """Places for concurrent Ironic applies; ``slot()`` takes one."""

    def __init__(self, ceiling: int, initial: int = 4,
                 tolerance: float = 2.0, wait: float = WAIT,
                 clock: Callable[[], float] = time.monotonic,
                 on_change: Callable[[int], None] | None = None) -> None:
        self.ceiling = max(1, ceiling)
        self.tolerance = tolerance
        self.wait = wait
        self.clock = clock
        self.on_change = on_change
        self._limit = float(min(max(1, initial), self.ceiling))
        self._threshold = float(self.ceiling)  # slow start below this
        self._in_flight = 0
        self._reached = False       # in flight == limit in this window
        self._cut = False           # decreased for a failure this window
        self._samples: list[float] = []   # this window's apply times
        self._finished = 0                # applies that ended in it
        self._generation = 0              # cuts so far
        self._means: collections.deque[float] = collections.deque(
            maxlen=BASELINE_WINDOWS)
        self._lock = threading.Condition()
        self._report()

    @property
    def limit(self) -> int:
        return int(self._limit)

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def baseline(self) -> float | None:
        return min(self._means) if self._means else None

    @contextlib.contextmanager
    def slot(self, renew: Callable[[], None] | None = None
             ) -> Iterator[None]:
        """Hold a place while applying; the apply's time and outcome
        (its exception, if it raises) adjust the limit. ``renew`` is
        called every ``wait`` seconds spent waiting for the place; what
        it raises ends the wait."""
        generation = self._acquire(renew)
        started = self.clock()
        try:
            yield
        except ironic.IronicUnavailable:
            self._finish(None, generation)
            raise
        except BaseException:
            self._finish(None, generation, sample=False)
            raise
        self._finish(self.clock() - started, generation)

    def _acquire(self, renew: Callable[[], None] | None) -> int:
        with self._lock:
            while not self._lock.wait_for(
                    lambda: self._in_flight < int(self._limit), self.wait):
                if renew is not None:
                    renew()
            self._in_flight += 1
            if self._in_flight >= int(self._limit):
                self._reached = True
            return self._generation

    def _finish(self, seconds: float | None, generation: int,
                sample: bool = True) -> None:
        with self._lock:
            self._in_flight -= 1
            if sample:
                if seconds is None:
                    self._overloaded(generation)
                else:
                    self._samples.append(seconds)
                self._finished += 1
                if self._finished >= max(MIN_WINDOW, int(self._limit)):
                    self._end_window()
            self._lock.notify_all()

    def _overloaded(self, generation: int) -> None:
        """Cut once for the applies that were in flight together: the
        failures of those started before the last cut are its echo."""
        if generation == self._generation:
            self._set(self._limit * FAILURE_CUT)
            self._cut = True
            if int(self._limit) == 1:
                # At the floor for failures: Ironic was down or nearly.
                # What comes back (restarted, failed over, holding more
                # nodes) has its own speed; holding it to the fastest
                # windows from before would keep the limit at 1 until
                # they age out (BASELINE_WINDOWS), so learn it afresh.
                self._means.clear()

    def _end_window(self) -> None:
        """Judge the window that just ended: cut (done already for a
        failure, or now for latency), grow, or keep."""
        if self._samples and not self._cut:
            mean = sum(self._samples) / len(self._samples)
            self._means.append(mean)
            if mean > self.tolerance * min(self._means):
                self._set(self._limit * LATENCY_CUT)
            elif self._reached and self._limit < self._threshold:
                self._set(min(self._limit * 2, self._threshold),
                          decrease=False)
            elif self._reached:
                self._set(self._limit + 1, decrease=False)
        self._samples = []
        self._finished = 0
        self._reached = self._cut = False

    def _set(self, value: float, decrease: bool = True) -> None:
        value = min(max(1.0, value), float(self.ceiling))
        if decrease:
            self._threshold = value
            self._generation += 1
        changed = int(value) != int(self._limit)
        self._limit = value
        if changed:
            self._report()

    def _report(self) -> None:
        if self.on_change is not None:
            self.on_change(int(self._limit))
