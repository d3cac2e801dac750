"""Rate limits for credential issuance: per MAC and for everyone.

In memory, per process: run one boot server process per site (or put the
limits in front of several with a proxy). The per-MAC limit stops one
machine looping in PXE from minting credentials; the global token bucket
caps a flood from many (spoofed) MACs; ``[credentials] max_outstanding``
caps what is left unused whatever the rates.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Limiter:
    def __init__(self, per_mac_interval: float, rate: float, burst: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.per_mac_interval = per_mac_interval
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._tokens = float(burst)
        self._updated = clock()
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def check(self, mac: str) -> str | None:
        """None when this MAC may be issued a credential now, else why not."""
        with self._lock:
            now = self.clock()
            last = self._last.get(mac)
            if last is not None and now - last < self.per_mac_interval:
                return (f'{mac} was issued a credential '
                        f'{now - last:.0f} s ago; retry in '
                        f'{self.per_mac_interval - (now - last):.0f} s')
            self._tokens = min(self.burst, self._tokens +
                               (now - self._updated) * self.rate)
            self._updated = now
            if self._tokens < 1:
                return 'too many boot requests right now'
            self._tokens -= 1
            self._last[mac] = now
            if len(self._last) > 100000:  # forget the oldest half
                for key in sorted(self._last, key=self._last.get)[:50000]:
                    del self._last[key]
            return None
