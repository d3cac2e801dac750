"""What a collector is given and what it hands back.

A collector is a plain function ``collect(root, options) -> Contribution``
registered under the ``hwbus.collectors`` entry-point namespace. It reads
only through ``root`` and the options it is passed (never global config),
and returns the parts of the document it knows about; the runner merges
them. Raising is allowed and costs only that collector's part: the runner
records the error and every other collector's data still goes out.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

from hwbus import macs
from hwbus.ramdisk.sysroot import SystemRoot


@dataclasses.dataclass(frozen=True)
class Options:
    """Knobs that change what is collected, from the command line.

    :param lldp_timeout: seconds to listen for LLDP on all ports at once;
        0 turns LLDP off (switches send every 30 s by default).
    :param include_usb_nics: list USB network devices as interfaces. Off
        by default: BMC "USB LAN" devices carry the same MAC on every
        server of a model and make Ironic's lookup match the wrong node.
    :param bootif: the MAC the machine network-booted from, when known
        from outside the machine's own command line.
    """

    lldp_timeout: float = 0.0
    include_usb_nics: bool = False
    bootif: str | None = None


@dataclasses.dataclass
class Contribution:
    """One collector's part of the document.

    ``inventory`` and ``plugin_data`` are merged key by key into the
    document; ``errors`` are partial failures worth telling the operator
    about even though the collector produced data.
    """

    inventory: dict[str, Any] = dataclasses.field(default_factory=dict)
    plugin_data: dict[str, Any] = dataclasses.field(default_factory=dict)
    errors: list[str] = dataclasses.field(default_factory=list)


class Collector(Protocol):
    def __call__(self, root: SystemRoot, options: Options) -> Contribution:
        ...


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


def kernel_params(root: SystemRoot) -> dict[str, str]:
    """key=value words of /proc/cmdline (flags map to "")."""
    params: dict[str, str] = {}
    for word in (root.read('/proc/cmdline') or '').split():
        key, _, value = word.partition('=')
        params.setdefault(key, value)
    return params


def bootif_mac(root: SystemRoot, options: Options) -> str | None:
    """The MAC the machine booted from: ``BOOTIF=01-aa-bb-..`` or option."""
    if options.bootif:
        return macs.parse_nic(options.bootif)
    value = kernel_params(root).get('BOOTIF', '')
    # PXELINUX and iPXE prefix the ARP hardware type: "01-" for Ethernet.
    if len(value) == 20 and value[2] == '-':
        value = value[3:]
    return macs.parse_nic(value)
