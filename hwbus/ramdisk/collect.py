"""Moved to :mod:`hwbus.ramdisk.collectors.runner`; import it from there.

Only what hwbus/conf/ramdisk.py still imports from here is named; delete
this module once it imports from the new place.
"""

from hwbus.ramdisk.collectors.runner import DEFAULT_DEADLINE

__all__ = ['DEFAULT_DEADLINE']
