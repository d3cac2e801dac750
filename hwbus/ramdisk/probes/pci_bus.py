"""The PCI bus, read once per collection and shared.

IDs, class, NUMA node and driver come from /sys/bus/pci/devices; names come
from one ``lspci -mm -nn -D`` run when pciutils is in the image (its
pci.ids database is what turns 8086:1572 into "Ethernet Controller X710").
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from hwbus.ramdisk.probes.sysroot import CommandError, SystemRoot
from hwbus.ramdisk.probes.values import hex_id, to_int

_PCI = '/sys/bus/pci/devices'
_NAME_ID_RE = re.compile(r'^(.*?)\s*\[([0-9a-fA-F]{4,6})\]$')
_SLOT_RE = re.compile(r'^[0-9a-f]{4,8}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$')


def slot_of(root: SystemRoot, device: str) -> str | None:
    """The PCI address a device sits on, for /sys/class/*/X/device.

    Usually the link's own name; for virtio and other bus-on-PCI devices
    the link names the child device ("virtio2") and the PCI function is
    further up the resolved path.
    """
    if not root.exists(device):
        return None
    for part in reversed(root.realpath(device).split('/')):
        if _SLOT_RE.match(part):
            return part
    return None


def _split_name(field: str) -> str | None:
    """"Intel Corporation [8086]" → "Intel Corporation"."""
    match = _NAME_ID_RE.match(field)
    name = match.group(1) if match else field
    return name.strip() or None


def parse_lspci(text: str) -> dict[str, dict[str, str | None]]:
    """Names per slot from ``lspci -mm -nn -D``."""
    names = {}
    for line in text.splitlines():
        try:
            words = shlex.split(line)
        except ValueError:
            continue
        positional = [w for w in words if not w.startswith('-')]
        if len(positional) < 4:
            continue
        names[positional[0].lower()] = {
            'class_name': _split_name(positional[1]),
            'vendor_name': _split_name(positional[2]),
            'product_name': _split_name(positional[3]),
        }
    return names


def _lspci_names(root: SystemRoot) -> tuple[dict, str | None]:
    try:
        result = root.run('lspci', ['lspci', '-mm', '-nn', '-D'])
    except CommandError as exc:
        return {}, f'PCI device names: {exc}'
    if not result.ok:
        return {}, f'lspci exited {result.returncode}'
    return parse_lspci(result.stdout), None


def _device(root: SystemRoot, slot: str,
            names: dict[str, Any]) -> dict[str, Any] | None:
    base = f'{_PCI}/{slot}'
    vendor, product = hex_id(root.read(f'{base}/vendor')), hex_id(
        root.read(f'{base}/device'))
    pci_class = hex_id(root.read(f'{base}/class'), 6)
    if not (vendor and product and pci_class):
        return None
    numa = to_int(root.read(f'{base}/numa_node'))
    named = names.get(slot.lower(), {})
    return {
        'bus': slot.lower(),
        'vendor_id': vendor,
        'product_id': product,
        'class': pci_class,
        'revision': hex_id(root.read(f'{base}/revision'), 2),
        'subsystem_vendor_id': hex_id(root.read(f'{base}/subsystem_vendor')),
        'subsystem_id': hex_id(root.read(f'{base}/subsystem_device')),
        # The kernel says -1 for "no NUMA affinity".
        'numa_node_id': numa if numa is not None and numa >= 0 else None,
        'driver': root.link_name(f'{base}/driver'),
        'vendor_name': named.get('vendor_name'),
        'product_name': named.get('product_name'),
        'class_name': named.get('class_name'),
    }


def scan(root: SystemRoot) -> tuple[list[dict[str, Any]], list[str]]:
    """(devices, problems), computed once per root."""
    return root.memo('pci', lambda: _scan(root))


def _scan(root: SystemRoot) -> tuple[list[dict[str, Any]], list[str]]:
    slots = root.listdir(_PCI)
    if not slots:
        return [], []
    names, problem = _lspci_names(root)
    devices, problems = [], [problem] if problem else []
    for slot in slots:
        device = _device(root, slot, names)
        if device is None:
            problems.append(f'PCI device {slot}: unreadable ids')
        else:
            devices.append(device)
    return devices, problems
