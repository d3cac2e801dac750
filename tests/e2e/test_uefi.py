"""UEFI machines nobody registered network-boot and appear in Ironic.

Three firmware paths of x86-64 UEFI (docs/bootserver.md):

* OVMF with iPXE (QEMU's EFI iPXE option ROM), chain-loading
  ``/boot.ipxe`` exactly as the BIOS row (test_boot.py) does;
* OVMF's own UEFI HTTP boot, no iPXE: the boot server's disk image
  (``/hwbus-x64.img``) becomes a RAM disk, GRUB on it brings up the
  network and sources the per-boot ``/boot.grub``, then loads the kernel
  and the hwbus initramfs over HTTP;
* Secure Boot enforced (shim, Debian's signed GRUB and kernel), from a
disk image: Debian 12's signed GRUB has no http module, so that chain
does not run over the network yet (docs/bootserver.md, "where it
stops").
"""

import pathlib
import subprocess

from hwbus.bootserver import fatimage
from tests.e2e.conftest import (
    GUEST_DISKS,
    GUEST_MACS,
    Guest,
    Site,
    assert_node_is_the_guest,
    image_size,
)

SHIM = '/usr/lib/shim/shimx64.efi.signed'
SIGNED_GRUB = '/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed'
GRUB_MODULES = ('fat', 'part_gpt', 'part_msdos', 'efinet', 'net', 'http',
                'linux', 'normal', 'configfile', 'echo', 'test', 'sleep',
                'minicmd', 'boot')


def _boot_into_ironic(site, firmware: str, bootfile: str) -> dict:
    """Boot a guest with ``firmware``; assert what the BIOS row asserts
    (the node has exactly the guest's CPUs, memory, disks and MACs, the
    credential was applied and revoked, the guest powered off); return
    what Ironic stored for the node (inventory and plugin_data)."""
    guest = Guest(site.tmp, firmware=firmware).pxe(bootfile)
    took = guest.wait_off(timeout=900)
    console = guest.text()
    print(f'\n{firmware} network boot to power-off under {guest.accel}: '
          f'{took:.1f} s; image {image_size(site.image)}')
    _, stored = assert_node_is_the_guest(
        site, console, boot_mode='uefi',
        firmware_ram_disks=0 if firmware == 'uefi' else 1)
    return stored


def test_a_uefi_machine_boots_through_ipxe_into_ironic(site):
    stored = _boot_into_ironic(site, 'uefi', site.bootfile)
    assert stored['plugin_data']['boot_details'] == {'secure_boot': False}
    log = site.bootserver.log.read_text()
    assert '(x86_64, boot.ipxe)' in log  # iPXE named its architecture


def grub_with_http(out: pathlib.Path) -> pathlib.Path:
    """An unsigned GRUB for x86-64 UEFI that speaks HTTP, from Debian's
    grub-efi-amd64-bin modules (Debian's signed GRUB has no http
    module), with its config at /grub/grub.cfg of the boot image."""
    subprocess.run(['grub-mkimage', '-O', 'x86_64-efi', '-p', '/grub',
                    '-o', str(out), *GRUB_MODULES], check=True,
                   timeout=120)
    return out


def test_a_uefi_machine_http_boots_through_grub_into_ironic(
        broker, clean_ironic, image, tmp_path):
    """UEFI HTTP boot without iPXE: the firmware loads the boot server's
    disk image, GRUB on it brings up the network and sources the
    per-boot /boot.grub, which issued the credential."""
    grub = grub_with_http(tmp_path / 'grubx64-http.efi')
    site = Site(broker, clean_ironic, image, tmp_path,
                extra=f'grub_x64 = {grub}\nshim_x64 =\n')
    try:
        bootfile = site.bootfile.replace('/boot.ipxe', '/hwbus-x64.img')
        stored = _boot_into_ironic(site, 'uefi-http', bootfile)
        assert stored['plugin_data']['boot_details'] == {
            'secure_boot': False}
        log = site.bootserver.log.read_text()
        for served in ('serving hwbus-x64.img', '(x86_64, boot.grub)'):
            assert served in log, log[-3000:]
    finally:
        site.stop()


def test_secure_boot_runs_shim_grub_and_the_signed_kernel_and_says_so(
        site, tmp_path):
    """Secure Boot enforced, Microsoft's keys: the firmware verifies
    shim, shim verifies Debian's signed GRUB, GRUB (through shim)
    verifies Debian's signed kernel, which runs the hwbus initramfs; the
    guest's own inventory says Secure Boot was on. The chain starts from
    a disk image here, not over the network: Debian 12's signed GRUB
    cannot fetch HTTP (docs/bootserver.md), so the credential is issued
    by the test and written into GRUB's config on the disk."""
    issued = site.credentials.issue(mac=GUEST_MACS[0], after='poweroff')
    bootif = 'BOOTIF=01-' + GUEST_MACS[0].replace(':', '-')
    config = (f"linux /VMLINUZ console=ttyS0 {issued.cmdline} {bootif}\n"
              "initrd /INITRD.ZST\nboot\n")
    boot_image = tmp_path / 'secure-boot.img'
    boot_image.write_bytes(fatimage.build({
        'EFI': {'BOOT': {
            'BOOTX64.EFI': pathlib.Path(SHIM).read_bytes(),
            'GRUBX64.EFI': pathlib.Path(SIGNED_GRUB).read_bytes()}},
        'GRUB': {'GRUB.CFG': config.encode()},
        'VMLINUZ': (site.image / 'vmlinuz').read_bytes(),
        'INITRD.ZST': (site.image / 'initramfs.zst').read_bytes()}))
    guest = Guest(site.tmp, firmware='uefi-secure').from_disk(boot_image)
    took = guest.wait_off(timeout=900)
    console = guest.text()
    print(f'\nSecure Boot, shim -> GRUB -> signed kernel, to power-off '
          f'under {guest.accel}: {took:.1f} s; image '
          f'{image_size(site.image)}')
    _, stored = assert_node_is_the_guest(
        site, console, boot_mode='uefi', issued_by=None,
        disks=[*GUEST_DISKS, ('HWBUSBOOT', boot_image.stat().st_size)])
    assert stored['plugin_data']['boot_details'] == {'secure_boot': True}
