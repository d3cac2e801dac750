"""GPUs and other display or 3D controllers worth scheduling on.

The framebuffers that BMCs and hypervisors put on every board (ASPEED,
Matrox G200, QEMU's VGA) are display controllers too, but no one schedules
a workload on them; they stay in pci_devices and out of this list.
"""

from __future__ import annotations

from hwbus.ramdisk.collectors.base import Contribution, Options
from hwbus.ramdisk.probes import pci_bus
from hwbus.ramdisk.probes.sysroot import SystemRoot

# PCI class 03: display controllers (VGA, XGA, 3D, other).
_DISPLAY_CLASS = '03'
# Vendors whose display functions are BMC or emulated framebuffers:
# ASPEED, Matrox, QEMU/Bochs, Cirrus Logic, VMware.
_FRAMEBUFFER_VENDORS = frozenset({'1a03', '102b', '1234', '1013', '15ad'})
# Red Hat's QXL paravirtual display; Huawei's Hi1710 iBMC VGA.
_FRAMEBUFFER_DEVICES = frozenset({('1b36', '0100'), ('19e5', '1711')})


def collect(root: SystemRoot, options: Options) -> Contribution:
    """plugin_data ``gpus``."""
    devices, _ = pci_bus.scan(root)  # the pci collector reports the problems
    gpus = []
    for device in devices:
        if not device['class'].startswith(_DISPLAY_CLASS):
            continue
        if device['vendor_id'] in _FRAMEBUFFER_VENDORS or (
                device['vendor_id'], device['product_id']) in \
                _FRAMEBUFFER_DEVICES:
            continue
        gpus.append({
            'pci_address': device['bus'],
            'vendor_id': device['vendor_id'],
            'product_id': device['product_id'],
            'vendor': device['vendor_name'],
            'product': device['product_name'],
            'driver': device['driver'],
            'numa_node_id': device['numa_node_id'],
        })
    return Contribution(plugin_data={'gpus': gpus})
