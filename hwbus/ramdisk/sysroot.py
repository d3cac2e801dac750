"""Moved to :mod:`hwbus.ramdisk.probes.sysroot`; import it from there.

Only what hwbus/conf/ramdisk.py still imports from here is named; delete
this module once it imports from the new place.
"""

from hwbus.ramdisk.probes.sysroot import DEFAULT_COMMAND_TIMEOUT

__all__ = ['DEFAULT_COMMAND_TIMEOUT']
