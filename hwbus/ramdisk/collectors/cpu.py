"""Processors: model, flags, logical count, sockets and topology.

/proc/cpuinfo gives model and flags; /sys/devices/system/cpu gives the
count and topology the same way on every architecture (ARM cpuinfo has no
"physical id"). DMI fills in a model name on boards whose cpuinfo has none.
"""

from __future__ import annotations

import os
import re
from typing import Any

from hwbus.ramdisk.collectors.base import (
    Contribution,
    Options,
    parse_cpulist,
    to_int,
)
from hwbus.ramdisk.probes import dmidecode
from hwbus.ramdisk.probes.sysroot import CommandError, SystemRoot

_CPU_DIR = '/sys/devices/system/cpu'
_CPU_RE = re.compile(r'^cpu(\d+)$')
# cpuinfo keys that carry the model name, by architecture.
_MODEL_KEYS = ('model name', 'cpu model', 'Processor', 'cpu', 'uarch')
_FLAG_KEYS = ('flags', 'Features', 'isa')
_VENDOR_KEYS = ('vendor_id', 'CPU implementer', 'mvendorid')


def parse_cpuinfo(text: str) -> list[dict[str, str]]:
    """One dict per blank-line separated block of /proc/cpuinfo."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
                current = {}
            continue
        key, sep, value = line.partition(':')
        if sep:
            current.setdefault(key.strip(), value.strip())
    if current:
        blocks.append(current)
    return blocks


def _pick(blocks: list[dict[str, str]], keys: tuple[str, ...]) -> str:
    for block in blocks:
        for key in keys:
            if block.get(key):
                return block[key]
    return ''


def _architecture(root: SystemRoot) -> str:
    arch = root.read('/proc/sys/kernel/arch')
    if arch:
        return arch
    return root.probe('uname_machine', lambda: os.uname().machine) or ''


def _topology(root: SystemRoot, cpus: list[int]) -> tuple[int, int]:
    """(sockets, physical cores) from sysfs; zeros when unknown."""
    packages, cores = set(), set()
    for cpu in cpus:
        base = f'{_CPU_DIR}/cpu{cpu}/topology'
        package = to_int(root.read(f'{base}/physical_package_id'))
        core = to_int(root.read(f'{base}/core_id'))
        if package is None or package < 0:
            continue
        packages.add(package)
        if core is not None:
            cores.add((package, core))
    return len(packages), len(cores)


def _mhz(root: SystemRoot, name: str) -> float | None:
    khz = to_int(root.read(f'{_CPU_DIR}/cpu0/cpufreq/{name}'))
    return khz / 1000 if khz else None


def collect(root: SystemRoot, options: Options) -> Contribution:
    """The inventory ``cpu`` and plugin_data ``cpu_topology``."""
    blocks = parse_cpuinfo(root.read('/proc/cpuinfo') or '')
    errors: list[str] = []
    online = parse_cpulist(root.read(f'{_CPU_DIR}/online'))
    if not online:
        online = [int(m.group(1)) for name in root.listdir(_CPU_DIR)
                  if (m := _CPU_RE.match(name))]
    count = len(online) or sum(1 for b in blocks if 'processor' in b)

    sockets, cores = _topology(root, online)
    if not sockets:
        sockets = len({b['physical id'] for b in blocks
                       if 'physical id' in b})
    model = _pick(blocks, _MODEL_KEYS)
    if not model or not sockets:
        dmi = _dmi_processors(root, errors)
        if not model:
            model = next((p['version'] for p in dmi if p['version']), '')
        if not sockets:
            sockets = len(dmi)
    if not sockets and count:
        sockets = 1

    max_mhz, min_mhz = _mhz(root, 'cpuinfo_max_freq'), _mhz(
        root, 'cpuinfo_min_freq')
    if max_mhz:
        frequency = f'{max_mhz:.4f}'
    else:
        frequency = _pick(blocks, ('cpu MHz', 'BogoMIPS')) or ''
    flags = _pick(blocks, _FLAG_KEYS).split()
    if not count:
        errors.append('no online CPU found in /sys or /proc/cpuinfo')
    cores = cores or count
    return Contribution(
        inventory={'cpu': {
            'model_name': model,
            'frequency': frequency,
            'count': count,
            'architecture': _architecture(root),
            'flags': flags,
            'socket_count': sockets or None,
        }},
        plugin_data={'cpu_topology': {
            'sockets': sockets,
            'cores': cores,
            'threads': count,
            'threads_per_core': count // cores if cores else 0,
            'vendor': _pick(blocks, _VENDOR_KEYS) or None,
            'microcode': _pick(blocks, ('microcode',)) or None,
            'max_mhz': max_mhz,
            'min_mhz': min_mhz,
        }},
        errors=errors)


def _dmi_processors(root: SystemRoot,
                    errors: list[str]) -> list[dict[str, Any]]:
    try:
        return [p for p in dmidecode.read(root)['processors']
                if p['populated']]
    except CommandError:
        # Reported once by the dmi collector; cpuinfo and sysfs stand.
        return []
