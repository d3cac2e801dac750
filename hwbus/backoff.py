"""How long to wait before trying again: one formula for hwbus.

The ramdisk's publisher and the consumer's workers both retry what may
succeed later (a broker or Ironic coming back): exponential from
``base``, capped at ``cap``, with "equal jitter" (each wait is drawn from
the upper half of its step) so that a rack of machines, or a pool of
workers, does not retry in lockstep. Standard library only: the ramdisk
imports it.
"""

from __future__ import annotations

import random

BASE = 0.5   # seconds, the first wait's step
CAP = 30.0   # seconds, the longest wait


def delay(attempt: int, base: float = BASE, cap: float = CAP) -> float:
    """The wait before retry number ``attempt`` (1 for the first)."""
    step = min(cap, base * 2 ** min(max(attempt - 1, 0), 30))
    return step * random.uniform(0.5, 1.0)  # noqa: S311 - not crypto
