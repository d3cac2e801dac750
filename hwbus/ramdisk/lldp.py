"""Moved to :mod:`hwbus.ramdisk.probes.lldp_listener`; import it from there.

Only what tests/functional/test_lldp_listen.py still imports from here is
named; delete this module once it imports from the new place.
"""

from hwbus.ramdisk.probes.lldp_listener import (
    ETH_P_LLDP,
    LLDP_MULTICAST,
    listen,
)

__all__ = ['ETH_P_LLDP', 'LLDP_MULTICAST', 'listen']
