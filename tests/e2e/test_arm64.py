"""arm64: an unknown arm64 server UEFI-HTTP-boots into Ironic.

The guest is ``qemu-system-aarch64 -M virt`` under TCG (an x86-64 host
cannot run arm64 guests with KVM) with AAVMF, Debian's UEFI for arm64
(``qemu-efi-aarch64``), two virtio disks with serials and two virtio NICs
with the fixed MACs. The image is ``tools/build-ramdisk --arch arm64``:
Debian's arm64 kernel (an EFI-stub ``vmlinuz``), the same initramfs
contents built through qemu-user-static, and the GRUB that boots it.

The whole chain is the real one: DHCP (QEMU's slirp) gives the boot
server's ``/grubnetaa64.efi`` as boot file URL; AAVMF's own HTTP boot
(no iPXE ROM: Debian has no arm64 iPXE) loads the HTTP-boot GRUB that
build-ramdisk makes from Debian's GRUB modules (``grubhttpaa64.efi``,
served as ``[bootserver] grub_http_aa64``); GRUB asks DHCP, fetches the
per-boot ``/boot.grub?mac=...&arch=arm64`` (which issues the
credential), then the arm64 kernel and initramfs over HTTP from
``image_dir/arm64/``. Debian's signed ``grubnetaa64.efi`` cannot do
this: it has no HTTP client and, started by HTTP boot, finds no config.

Secure Boot (AAVMF's variable store with Microsoft's keys) boots as on
x86-64 (test_uefi.py): UEFI PXE on a wire of its own, Debian's signed
shim, GRUB and kernel all by TFTP from the boot server.
"""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import sys
import time

import pytest

from hwbus.localstack.common import TOP
from tests.e2e.conftest import (
    GUEST_DISKS,
    GUEST_MACS,
    GUEST_RAM_MB,
    HTTP_ONLY,
    Guest,
    Site,
    assert_node_is_the_guest,
    assert_secure_boot_over_tftp,
    secure_boot_site,
)

AAVMF_CODE = pathlib.Path('/usr/share/AAVMF/AAVMF_CODE.fd')
AAVMF_VARS = pathlib.Path('/usr/share/AAVMF/AAVMF_VARS.fd')
# Microsoft's keys enrolled, Secure Boot on (the code is the same file).
AAVMF_VARS_MS = pathlib.Path('/usr/share/AAVMF/AAVMF_VARS.ms.fd')
# QEMU's virt machine maps two 64 MiB flash banks; a smaller image is
# refused, a larger one does not fit.
PFLASH_BYTES = 64 * 2 ** 20
# UEFI PXE guests: PXEv4 only (PXEv6 would find no offer first).
IPV4_PXE_ONLY = ('-fw_cfg', 'name=opt/org.tianocore/IPv6PXESupport,string=n')
CPU = 'cortex-a57'
# What QEMU 7.2's TCG cortex-a57 shows in /proc/cpuinfo, so what the cpu
# collector must report for it: the Features line as flags, and, having
# no cpufreq driver and no "cpu MHz" (arm64 cpuinfo has none), BogoMIPS
# as frequency: twice the 62.5 MHz of QEMU's generic timer.
CPU_FLAGS = ['fp', 'asimd', 'evtstrm', 'aes', 'pmull', 'sha1', 'sha2',
             'crc32', 'cpuid']
CPU_FREQUENCY = '125.00'


@pytest.fixture(scope='session')
def arm64_image():
    """tools/build-ramdisk --arch arm64 of this tree (cached)."""
    started = time.monotonic()
    result = subprocess.run([sys.executable, str(TOP / 'tools' /
                                                 'build-ramdisk'),
                             '--arch', 'arm64'],
                            capture_output=True, text=True, timeout=3600)
    assert result.returncode == 0, result.stderr[-3000:]
    out = pathlib.Path(result.stdout.strip().splitlines()[-1])
    size = (out / 'initramfs.zst').stat().st_size
    print(f'\narm64 ramdisk image: {out} ({size / 2 ** 20:.1f} MiB '
          f'initramfs, {(out / "vmlinuz").stat().st_size / 2 ** 20:.1f} MiB '
          f'kernel, {time.monotonic() - started:.0f} s to build or find)')
    return out


class Arm64Guest(Guest):
    """The conftest's guest as an arm64 server: virt, AAVMF, PL011."""

    def __init__(self, workdir: pathlib.Path, secure: bool = False
                 ) -> None:
        super().__init__(workdir)
        self.secure = secure
        self.firmware = ('AAVMF (arm64 UEFI, Secure Boot)' if secure
                         else 'AAVMF (arm64 UEFI)')

    def _argv(self) -> list[str]:
        template = AAVMF_VARS_MS if self.secure else AAVMF_VARS
        for firmware in (AAVMF_CODE, template):
            assert firmware.stat().st_size == PFLASH_BYTES, firmware
        variables = self.workdir / 'AAVMF_VARS.fd'
        shutil.copyfile(template, variables)
        argv = ['qemu-system-aarch64', '-M', 'virt', '-cpu', CPU,
                '-accel', 'tcg', '-m', str(GUEST_RAM_MB), '-smp', '2',
                '-no-reboot', '-display', 'none', '-monitor', 'none',
                '-serial', f'file:{self.console}',
                '-drive', f'if=pflash,format=raw,unit=0,readonly=on,'
                          f'file={AAVMF_CODE}',
                '-drive', f'if=pflash,format=raw,unit=1,file={variables}']
        # HTTP boot: the firmware's PXE off; Secure Boot boots by PXE.
        argv += IPV4_PXE_ONLY if self.secure else HTTP_ONLY
        for n, (serial, size) in enumerate(GUEST_DISKS):
            disk = self.workdir / f'disk{n}.img'
            with open(disk, 'wb') as f:
                f.truncate(size)
            argv += ['-drive', f'file={disk},if=none,id=d{n},format=raw',
                     '-device', f'virtio-blk-pci,drive=d{n},serial={serial}']
        return argv

    @staticmethod
    def _nics(bootfile: str | None = None) -> list[str]:
        """Two virtio NICs without QEMU's iPXE ROM (there is no arm64
        iPXE in Debian): AAVMF's own network stack boots them."""
        argv = []
        for n, mac in enumerate(GUEST_MACS):
            netdev = f'user,id=n{n},ipv6=off'
            if n == 0 and bootfile:
                netdev += f',bootfile={bootfile}'
            device = f'virtio-net-pci,netdev=n{n},mac={mac},romfile='
            if n == 0:
                device += ',bootindex=1'
            argv += ['-netdev', netdev, '-device', device]
        return argv

    def http_boot(self, bootfile: str) -> Arm64Guest:
        """UEFI HTTP boot: AAVMF downloads bootfile (a URL) itself."""
        return self._start([*self._argv(), *self._nics(bootfile)])


def image_dir(arm64_image: pathlib.Path, tmp_path: pathlib.Path
              ) -> pathlib.Path:
    """A boot server image_dir whose arm64/ is the arm64 image."""
    images = tmp_path / 'images'
    images.mkdir()
    (images / 'arm64').symlink_to(arm64_image)
    return images


def arm64_options(arm64_image: pathlib.Path) -> str:
    """The boot server's arm64 options, the same for both tests, so that
    one boot server is shown to serve both paths: HTTP boot gets the
    GRUB with http (grub_http_aa64), shim over TFTP Debian's signed one
    (grub_aa64), and arm64's console."""
    return ('arm64_kernel_args = console=ttyAMA0\n'
            f'shim_aa64 = {arm64_image / "shimaa64.efi"}\n'
            f'grub_aa64 = {arm64_image / "grubnetaa64.efi"}\n'
            f'grub_http_aa64 = {arm64_image / "grubhttpaa64.efi"}\n')


@pytest.fixture
def arm64_site(broker, clean_ironic, arm64_image, tmp_path):
    """The site with arm64 images (image_dir/arm64/) and arm64_options."""
    s = Site(broker, clean_ironic, image_dir(arm64_image, tmp_path),
             tmp_path, extra=arm64_options(arm64_image))
    s.bootfile = f'http://10.0.2.2:{s.bootserver.port}/grubnetaa64.efi'
    yield s
    s.stop()


def test_an_unknown_arm64_server_http_boots_into_ironic_and_powers_off(
        arm64_site):
    site = arm64_site
    image = site.image / 'arm64'
    guest = Arm64Guest(site.tmp).http_boot(site.bootfile)
    took = guest.wait_off(timeout=1800)
    console = guest.text()
    sizes = {n: (image / n).stat().st_size
             for n in ('vmlinuz', 'initramfs.zst', 'grubhttpaa64.efi')}
    print(f'\narm64 UEFI HTTP boot to power-off (TCG, {CPU}): {took:.1f} s; '
          + ', '.join(f'{n} {b / 2 ** 20:.1f} MiB' for n, b in sizes.items()))
    assert 'hwbus: discovery boot' in console, console[-3000:]
    _, stored = assert_node_is_the_guest(site, console, cpu_arch='aarch64',
                                         boot_mode='uefi')
    inventory = stored['inventory']
    cpu = inventory['cpu']
    print(f'cpu as reported: {cpu}')
    assert cpu['count'] == 2
    assert cpu['architecture'] == 'aarch64'
    assert cpu['flags'] == CPU_FLAGS
    assert cpu['frequency'] == CPU_FREQUENCY
    log = site.bootserver.log.read_text()
    assert 'issued boot' in log


def test_arm64_secure_boot_over_pxe_runs_shim_grub_and_the_signed_kernel(
        broker, clean_ironic, arm64_image, tmp_path):
    """AAVMF with Microsoft's keys, Secure Boot enforced: UEFI PXE
    (client arch 11; etc/dnsmasq/hwbus-secureboot.conf) loads Debian's
    signed arm64 shim by TFTP from the boot server, shim verifies
    Debian's signed grubnetaa64 (asked for as grubaa64.efi), GRUB reads
    grub/grub.cfg and the per-boot boot.grub (the credential) and loads
    Debian's signed arm64 kernel, which shim verifies; the guest's own
    inventory says Secure Boot was on."""
    with secure_boot_site(
            broker, clean_ironic, image_dir(arm64_image, tmp_path),
            tmp_path, extra=arm64_options(arm64_image)) as (site, wire):
        guest = Arm64Guest(site.tmp, secure=True).on_wire(wire)
        took = guest.wait_off(timeout=1800)
        print(f'\narm64 Secure Boot over PXE, shim -> GRUB -> signed '
              f'kernel (all TFTP), to power-off (TCG, {CPU}): {took:.1f} s')
        assert_secure_boot_over_tftp(
            site, wire, guest.text(), loaders=('shimaa64.efi',
                                               'grubaa64.efi'),
            arch='arm64', cpu_arch='aarch64')
