"""Every PCI device, in the shape Ironic's pci-devices hook reads."""

from __future__ import annotations

from hwbus.ramdisk import pci
from hwbus.ramdisk.collectors.base import Contribution, Options
from hwbus.ramdisk.sysroot import SystemRoot


def collect(root: SystemRoot, options: Options) -> Contribution:
    """plugin_data ``pci_devices``."""
    devices, problems = pci.scan(root)
    return Contribution(plugin_data={'pci_devices': devices},
                        errors=list(problems))
