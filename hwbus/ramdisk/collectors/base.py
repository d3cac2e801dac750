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
from hwbus.ramdisk.probes.sysroot import SystemRoot
from hwbus.ramdisk.probes.values import hex_id, parse_cpulist, to_int

# The value helpers live with the probes (which need them too); they are
# named here as well so that a collector finds its whole toolkit in one
# place.
__all__ = ['Collector', 'Contribution', 'Options', 'bootif_mac', 'hex_id',
           'kernel_params', 'parse_cpulist', 'to_int']


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
