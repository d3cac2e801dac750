"""UEFI machines nobody registered network-boot and appear in Ironic.

Three firmware paths of x86-64 UEFI (docs/bootserver.md):

* OVMF with iPXE (QEMU's EFI iPXE option ROM), chain-loading
  ``/boot.ipxe`` exactly as the BIOS row (test_boot.py) does;
* OVMF's own UEFI HTTP boot, no iPXE: the boot server's disk image
  (``/hwbus-x64.img``) becomes a RAM disk, GRUB on it brings up the
  network and sources the per-boot ``/boot.grub``, then loads the kernel
  and the hwbus initramfs over HTTP;
* Secure Boot enforced (Debian's signed shim, GRUB and kernel) over
  PXE: Debian 12's signed GRUB has no http module, so the whole chain
  comes by TFTP from the boot server, on a wire of its own (QEMU's user
  network answers TFTP itself).
"""

import pathlib
import subprocess

from tests.e2e.conftest import (
    Guest,
    Site,
    assert_node_is_the_guest,
    assert_secure_boot_over_tftp,
    image_size,
    secure_boot_site,
)

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


def test_secure_boot_over_pxe_runs_shim_grub_and_the_signed_kernel(
        broker, clean_ironic, image, tmp_path):
    """Secure Boot enforced, Microsoft's keys, over the network with no
    HTTP in the chain: the firmware's PXE loads Debian's signed shim by
    TFTP from the boot server (DHCP from etc/dnsmasq/
    hwbus-secureboot.conf), shim verifies and loads Debian's signed GRUB,
    GRUB reads grub/grub.cfg and the per-boot boot.grub (the credential,
    issued by the boot server for the MAC GRUB names) and loads the
    Debian-signed kernel, which shim verifies; the guest's own inventory
    says Secure Boot was on."""
    with secure_boot_site(broker, clean_ironic, image, tmp_path) as (
            site, wire):
        guest = Guest(site.tmp, firmware='uefi-secure').on_wire(wire)
        took = guest.wait_off(timeout=900)
        print(f'\nSecure Boot over PXE, shim -> GRUB -> signed kernel '
              f'(all TFTP), to power-off under {guest.accel}: '
              f'{took:.1f} s; image {image_size(site.image)}')
        assert_secure_boot_over_tftp(site, wire, guest.text(),
                                     loaders=('shimx64.efi', 'grubx64.efi'))
