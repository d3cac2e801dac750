"""RAM: what the kernel manages and what is installed.

``total`` is MemTotal, as ironic-python-agent reports it. ``physical_mb``
is what an operator bought: the sum of the DMI memory devices, or, where
the firmware has no DMI table (many VMs, some ARM boards), the memory
blocks the kernel found, which include what firmware and kernel reserve.
"""

from __future__ import annotations

import re

from hwbus.ramdisk.collectors.base import Contribution, Options, to_int
from hwbus.ramdisk.probes import dmidecode
from hwbus.ramdisk.probes.sysroot import CommandError, SystemRoot

_MEMORY_DIR = '/sys/devices/system/memory'
_BLOCK_RE = re.compile(r'^memory\d+$')


def _mem_total(root: SystemRoot) -> int | None:
    for line in (root.read('/proc/meminfo') or '').splitlines():
        key, _, value = line.partition(':')
        if key == 'MemTotal':
            parts = value.split()
            kib = to_int(parts[0]) if parts else None
            return kib * 1024 if kib is not None else None
    return None


def _memory_blocks_mb(root: SystemRoot) -> int | None:
    block_bytes = to_int(root.read(f'{_MEMORY_DIR}/block_size_bytes'), 16)
    if not block_bytes:
        return None
    blocks = sum(1 for name in root.listdir(_MEMORY_DIR)
                 if _BLOCK_RE.match(name))
    return blocks * block_bytes // 2**20 or None


def collect(root: SystemRoot, options: Options) -> Contribution:
    """The inventory ``memory``."""
    errors = []
    total = _mem_total(root)
    if total is None:
        errors.append('MemTotal missing from /proc/meminfo')
    physical, dmi_error = None, None
    try:
        physical = dmidecode.read(root)['memory']['total_mb'] or None
    except CommandError as exc:
        # The dmi collector reports the DMI failure itself; it matters
        # here only when the fallback knows nothing either.
        dmi_error = exc
    if physical is None:
        physical = _memory_blocks_mb(root)
    if physical is None:
        reason = dmi_error or 'no memory devices'
        errors.append(f'installed memory unknown: DMI: {reason}; '
                      f'no memory blocks in sysfs')
    return Contribution(
        inventory={'memory': {'total': total, 'physical_mb': physical}},
        errors=errors)
