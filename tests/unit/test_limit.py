"""The adaptive limit on applies in flight to Ironic (hwbus.consumer.limit).

A fake clock; each "window" holds as many places at once as the limit
allows (so the limit is reached), then lets them all finish after the
same number of seconds.
"""

from __future__ import annotations

import contextlib
import threading
import time

import pytest

from hwbus import ironic
from hwbus.consumer import limit as limit_mod
from hwbus.consumer.limit import AdaptiveLimit
from hwbus.errors import PermanentError


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def window(lim: AdaptiveLimit, clock: Clock, seconds: float,
           places: int | None = None, fail: Exception | None = None) -> None:
    """``places`` applies at once (the limit, by default), each taking
    ``seconds``; with ``fail``, each raises it."""
    places = lim.limit if places is None else places
    with contextlib.ExitStack() as stack:
        for _ in range(places):
            stack.enter_context(_apply(lim, fail))
        clock.now += seconds
    # The window needs MIN_WINDOW samples when the limit is below it.
    for _ in range(max(0, limit_mod.MIN_WINDOW - places)):
        with _apply(lim, fail):
            clock.now += seconds


@contextlib.contextmanager
def _apply(lim, fail):
    with contextlib.suppress(type(fail)) if fail else \
            contextlib.nullcontext(), lim.slot():
        yield
        if fail:
            raise fail


def make(ceiling: int = 64, initial: int = 4, **kw) -> tuple:
    clock = Clock()
    seen: list[int] = []
    lim = AdaptiveLimit(ceiling, initial=initial, clock=clock,
                        on_change=seen.append, **kw)
    return lim, clock, seen


def test_slow_start_doubles_while_ironic_keeps_its_speed():
    lim, clock, seen = make(ceiling=64)
    for _ in range(4):
        window(lim, clock, 0.2)
    assert seen == [4, 8, 16, 32, 64]
    window(lim, clock, 0.2)
    assert lim.limit == 64  # the ceiling holds


def test_slower_answers_cut_the_limit_then_it_grows_one_by_one():
    lim, clock, _ = make(ceiling=64)
    window(lim, clock, 0.2)
    window(lim, clock, 0.2)
    assert lim.limit == 16
    window(lim, clock, 0.5)            # 2.5 times the baseline: congestion
    assert lim.limit == 12
    window(lim, clock, 0.3)            # within 2 times: additive from now on
    assert lim.limit == 13
    window(lim, clock, 0.3)
    assert lim.limit == 14


def test_a_limit_nobody_reaches_is_not_raised():
    lim, clock, _ = make()
    for _ in range(5):
        window(lim, clock, 0.2, places=1)
    assert lim.limit == 4


def test_ironic_failing_for_load_halves_the_limit_once_per_window():
    lim, clock, seen = make(ceiling=64)
    window(lim, clock, 0.2)
    window(lim, clock, 0.2)
    assert lim.limit == 16
    # Sixteen 503s at once: one halving, not sixteen.
    window(lim, clock, 0.1, fail=ironic.IronicUnavailable('503'))
    assert lim.limit == 8
    window(lim, clock, 0.1, fail=ironic.IronicUnavailable('503'))
    window(lim, clock, 0.1, fail=ironic.IronicUnavailable('503'))
    window(lim, clock, 0.1, fail=ironic.IronicUnavailable('503'))
    assert lim.limit == 1              # an outage: one at a time, no less
    window(lim, clock, 0.1, fail=ironic.IronicUnavailable('503'))
    assert lim.limit == 1
    assert seen[-1] == 1


def test_a_refused_message_is_no_sample_and_gives_its_place_back():
    lim, clock, _ = make(initial=2)
    for _ in range(20):
        with contextlib.suppress(PermanentError), lim.slot():
            clock.now += 5.0
            raise PermanentError('404')
    assert lim.in_flight == 0
    assert lim.baseline is None and lim.limit == 2


def test_ironic_back_after_an_outage_the_limit_grows_again():
    lim, clock, _ = make(ceiling=16)
    window(lim, clock, 0.2)
    for _ in range(3):
        window(lim, clock, 0.1, fail=ironic.IronicUnavailable('down'))
    assert lim.limit == 1
    for _ in range(40):
        window(lim, clock, 0.2)
    assert lim.limit == 16


def test_a_slower_ironic_after_an_outage_is_measured_afresh():
    """The restarted Ironic answers in twice the time and more (it holds
    more nodes now): judged against the windows before the outage, every
    window would be congestion and the limit would stay at 1."""
    lim, clock, _ = make(ceiling=16)
    window(lim, clock, 0.1)
    window(lim, clock, 0.1)
    assert lim.limit == 16
    for _ in range(5):
        window(lim, clock, 0.1, fail=ironic.IronicUnavailable('down'))
    assert lim.limit == 1 and lim.baseline is None
    for _ in range(6):
        window(lim, clock, 0.35)
    assert lim.limit == 7
    assert lim.baseline == pytest.approx(0.35)


def test_a_waiting_worker_renews_its_claim_and_gets_the_next_place():
    lim = AdaptiveLimit(1, initial=1, wait=0.02)
    renewed = []
    got = threading.Event()

    def second():
        with lim.slot(renew=lambda: renewed.append(1)):
            got.set()

    with lim.slot():
        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.2)
        assert not got.is_set()
    thread.join(5)
    assert got.is_set() and len(renewed) >= 3
    assert lim.in_flight == 0


def test_a_renewal_that_fails_ends_the_wait():
    lim = AdaptiveLimit(1, initial=1, wait=0.01)

    def store_down():
        raise OSError('store down')

    with lim.slot(), pytest.raises(OSError), lim.slot(renew=store_down):
        pass
    assert lim.in_flight == 0


def test_threads_never_exceed_the_limit():
    lim = AdaptiveLimit(3, initial=3)
    lock = threading.Lock()
    now = [0]
    most = [0]

    def work():
        for _ in range(30):
            with lim.slot():
                with lock:
                    now[0] += 1
                    most[0] = max(most[0], now[0])
                time.sleep(0.001)
                with lock:
                    now[0] -= 1

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most[0] == 3
    assert lim.in_flight == 0
