"""The disk image UEFI HTTP boot gets: shim, GRUB and GRUB's config.

UEFI HTTP boot loads the boot file URL the DHCP answer names. Given a
signed GRUB there, GRUB starts without network and without a config
(Debian's GRUB 2.06 takes both from the PXE protocol only; under HTTP
boot ``$prefix`` and ``$net_default_mac`` are empty, it stops at its
prompt). Given a disk image (``application/vnd.efi-img``), the firmware
makes it a RAM disk and starts ``\\EFI\\BOOT\\BOOT<arch>.EFI``: the
signed shim, which loads the signed GRUB beside it, which sources
``/grub/grub.cfg`` from the disk (its built-in prefix), which brings the
network up and sources ``/boot.grub`` with the boot NIC's MAC. Every
program the firmware and shim run is signed; the config is not (GRUB
does not verify configs, shim verifies the kernel GRUB loads).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from hwbus.bootserver import fatimage, scripts
from hwbus.errors import PermanentError

MIMETYPE = 'application/vnd.efi-img'  # UEFI HTTP boot: a RAM disk


@dataclasses.dataclass(frozen=True)
class Layout:
    """One architecture's boot image: the firmware's default file name,
    the name shim loads, and the [bootserver] options naming both."""

    arch: str  # as $grub_cpu names it
    removable: str  # \EFI\BOOT\<this>: what firmware starts from a disk
    second: str  # what shim loads from its own directory
    shim_option: str
    grub_option: str


LAYOUTS = {
    'hwbus-x64.img': Layout('x86_64', 'BOOTX64.EFI', 'GRUBX64.EFI',
                            'shim_x64', 'grub_x64'),
    'hwbus-aa64.img': Layout('arm64', 'BOOTAA64.EFI', 'GRUBAA64.EFI',
                             'shim_aa64', 'grub_aa64'),
}


# The options naming the GRUB an HTTP-boot image holds, in order: the
# HTTP-boot GRUB when set, else the one shim loads over TFTP.
HTTP_GRUB = {'grub_x64': ('grub_http_x64', 'grub_x64'),
             'grub_aa64': ('grub_http_aa64', 'grub_aa64')}


def first_set(group: Any, options: tuple[str, ...]) -> str | None:
    """The value of the first of ``options`` that is set in ``group``."""
    for option in options:
        value = getattr(group, option, None)
        if value:
            return value
    return None


class MissingLoader(PermanentError):
    """The configured GRUB is not there: no image can be made until the
    configuration or the files change."""

    reason = 'missing-loader'


def build(group: Any, layout: Layout, base: str) -> bytes:
    """The image for ``layout`` with GRUB sourcing ``base``/boot.grub.

    Without a shim (arm64 without Secure Boot) GRUB itself is the
    default file."""
    options = HTTP_GRUB[layout.grub_option]
    grub = first_set(group, options)
    shim = getattr(group, layout.shim_option)
    if not grub or not os.path.isfile(grub):
        raise MissingLoader(f'[bootserver] {" or ".join(options)} {grub} '
                            f'is missing')
    with open(grub, 'rb') as f:
        grub_bytes = f.read()
    boot: dict[str, Any] = {layout.second: grub_bytes}
    if shim and os.path.isfile(shim):
        with open(shim, 'rb') as f:
            boot[layout.removable] = f.read()
    else:
        boot[layout.removable] = grub_bytes
    return fatimage.build({
        'EFI': {'BOOT': boot},
        'GRUB': {'GRUB.CFG': scripts.grub_cfg(base).encode()},
    })
