"""The one retry formula."""

from hwbus import backoff


def test_waits_double_from_the_base_and_stop_at_the_cap():
    for attempt, step in ((1, 0.5), (2, 1.0), (3, 2.0), (7, 30.0),
                          (10_000, 30.0)):
        for _ in range(50):
            wait = backoff.delay(attempt)
            assert step / 2 <= wait <= step


def test_a_smaller_cap_is_honoured():
    assert all(backoff.delay(20, cap=1.0) <= 1.0 for _ in range(50))
