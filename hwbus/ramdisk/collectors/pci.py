"""Every PCI device, in the shape Ironic's pci-devices hook reads."""

from __future__ import annotations

from hwbus.ramdisk.collectors.base import Contribution, Options
from hwbus.ramdisk.probes import pci_bus
from hwbus.ramdisk.probes.sysroot import SystemRoot


def collect(root: SystemRoot, options: Options) -> Contribution:
    """plugin_data ``pci_devices``."""
    devices, problems = pci_bus.scan(root)
    return Contribution(plugin_data={'pci_devices': devices},
                        errors=list(problems))
