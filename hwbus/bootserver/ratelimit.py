"""Rate limits for credential issuance: per client, per MAC, for everyone.

Moving windows from the ``limits`` library, in memory, per process: run
one boot server process per site (nginx in front may add its own limits,
docs/bootserver.md). Each limit is "at most N credentials in any T
seconds", so a spent budget comes back at most T seconds later:

* per client address: one host cannot mint credentials for many MACs
  and so pin ``[credentials] max_outstanding`` for everyone;
* per MAC from one client address: one machine looping in PXE cannot
  mint credentials in a loop, and, because the key includes the
  address, no other host can spend a real machine's budget and lock it
  out;
* for everyone: a flood from many addresses meets the global rate.

A request is counted against all three only when all three allow it, so
a refusal spends nothing: a real machine refused by the global limit has
not used up its own budget.
"""

from __future__ import annotations

import collections
import math
import threading
import time
from typing import Any

from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter


class Limiter:
    """The boot server's three limits; ``check()`` counts a request."""

    def __init__(self, per_client_burst: int = 10,
                 per_client_interval: int = 60, per_mac_burst: int = 2,
                 per_mac_interval: int = 10, global_rate: float = 20.0,
                 global_burst: int = 100,
                 storage: MemoryStorage | None = None) -> None:
        self._strategy = MovingWindowRateLimiter(storage or MemoryStorage())
        # The global token bucket of before, as a moving window: at most
        # global_burst in the time global_rate takes to issue as many.
        global_interval = max(1, math.ceil(global_burst / global_rate))
        self._limits = [
            ('client', RateLimitItemPerSecond(per_client_burst,
                                              per_client_interval,
                                              namespace='client'),
             'too many boot requests from {client}'),
            ('mac', RateLimitItemPerSecond(per_mac_burst, per_mac_interval,
                                           namespace='mac'),
             '{mac} asked for too many credentials from {client}'),
            ('global', RateLimitItemPerSecond(global_burst, global_interval,
                                              namespace='global'),
             'too many boot requests right now'),
        ]
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, group: Any) -> Limiter:
        """The limits of a [bootserver] option group."""
        return cls(per_client_burst=group.per_client_burst,
                   per_client_interval=group.per_client_interval,
                   per_mac_burst=group.per_mac_burst,
                   per_mac_interval=group.per_mac_interval,
                   global_rate=group.global_rate,
                   global_burst=group.global_burst)

    def check(self, client: str, mac: str) -> str | None:
        """None when ``client`` may be issued a credential for ``mac`` now
        (and the request is counted), else why not and when to retry."""
        keys = {'client': (client,), 'mac': (client, mac), 'global': ()}
        with self._lock:
            for name, item, why in self._limits:
                if not self._strategy.test(item, *keys[name]):
                    stats = self._strategy.get_window_stats(item,
                                                            *keys[name])
                    retry = max(1, math.ceil(stats.reset_time - time.time()))
                    return (why.format(client=client, mac=mac) +
                            f'; retry in {retry} s')
            for name, item, _why in self._limits:
                self._strategy.hit(item, *keys[name])
        return None


class Slots:
    """Transfers under way: at most ``per_client`` per client address and
    ``total`` in all, for both fronts (HTTP downloads, TFTP reads). Used
    from one event loop only, so it takes no lock."""

    PER_CLIENT, TOTAL = 'per-client', 'total'

    def __init__(self, per_client: int, total: int) -> None:
        self.per_client, self.total = per_client, total
        self.taken: collections.Counter[str] = collections.Counter()

    def take(self, client: str) -> str | None:
        """None when ``client`` got a place (give it back with give()),
        else which limit refused it: PER_CLIENT or TOTAL."""
        if self.taken[client] >= self.per_client:
            return self.PER_CLIENT
        if self.taken.total() >= self.total:
            return self.TOTAL
        self.taken[client] += 1
        return None

    def give(self, client: str) -> None:
        self.taken[client] -= 1
        if self.taken[client] <= 0:
            del self.taken[client]
