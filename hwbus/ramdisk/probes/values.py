"""Numbers and ids as sysfs and the tools print them.

Pure text handling, shared by the probes and (through
``hwbus.ramdisk.collectors.base``) by the collectors.
"""

from __future__ import annotations


def to_int(value: str | None, base: int = 10) -> int | None:
    """An integer from a sysfs or tool value, None when it is not one."""
    if value is None:
        return None
    try:
        return int(value.strip(), base)
    except ValueError:
        return None


def hex_id(value: str | None, width: int = 4) -> str | None:
    """"0x8086" → "8086": the PCI id form Ironic's hooks compare."""
    number = to_int(value, 16)
    if number is None or number < 0:
        return None
    return f'{number:0{width}x}'


def parse_cpulist(text: str | None) -> list[int]:
    """"0-3,8,10-11" → [0, 1, 2, 3, 8, 10, 11]."""
    cpus: list[int] = []
    for part in (text or '').split(','):
        part = part.strip()
        if not part:
            continue
        first, _, last = part.partition('-')
        try:
            lo = int(first)
            hi = int(last) if last else lo
        except ValueError:
            continue
        if 0 <= lo <= hi and hi - lo < 65536:
            cpus.extend(range(lo, hi + 1))
    return cpus
