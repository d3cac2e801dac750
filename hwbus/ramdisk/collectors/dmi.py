"""The decoded DMI/SMBIOS tables: every DIMM, socket, the BIOS, the BMC."""

from __future__ import annotations

from hwbus.ramdisk.collectors.base import Contribution, Options
from hwbus.ramdisk.probes import dmidecode
from hwbus.ramdisk.probes.sysroot import SystemRoot


def collect(root: SystemRoot, options: Options) -> Contribution:
    """plugin_data ``dmi``; raises when there is no table to read."""
    return Contribution(plugin_data={'dmi': dmidecode.read(root)})
