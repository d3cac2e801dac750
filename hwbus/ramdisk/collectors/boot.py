"""How the machine booted: firmware mode, boot NIC, Secure Boot."""

from __future__ import annotations

from hwbus.ramdisk.collectors.base import Contribution, Options, bootif_mac
from hwbus.ramdisk.probes.sysroot import SystemRoot

_EFIVARS = '/sys/firmware/efi/efivars'
# The EFI global variable GUID under which SecureBoot lives.
_SECURE_BOOT = f'{_EFIVARS}/SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c'


def _secure_boot(root: SystemRoot) -> bool | None:
    """The SecureBoot variable: 4 bytes of attributes, then 0 or 1."""
    raw = root.read_bytes(_SECURE_BOOT)
    if raw is None or len(raw) < 5:
        return None
    return raw[4] == 1


def collect(root: SystemRoot, options: Options) -> Contribution:
    """The inventory ``boot``; plugin_data ``boot_details``."""
    uefi = root.is_dir('/sys/firmware/efi')
    return Contribution(
        inventory={'boot': {
            'current_boot_mode': 'uefi' if uefi else 'bios',
            'pxe_interface': bootif_mac(root, options),
        }},
        plugin_data={'boot_details': {
            'secure_boot': _secure_boot(root) if uefi else False,
        }})
