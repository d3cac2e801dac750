"""End to end: the real ramdisk under QEMU against the real servers.

The image is built from this source tree by tools/build-ramdisk (cached
by a hash of its inputs). QEMU uses KVM where a short probe boot shows it
works (the image's kernel must get past early boot and reach the point
where it looks for its root file system) and TCG otherwise: on the CI
machine nested KVM hangs this kernel right after "Probing EDD".
HWBUS_QEMU_ACCEL=kvm or tcg skips the probe. Each guest prints which it
used. The guest reaches the host's loopback as 10.0.2.2.

Firmware: ``Guest(..., firmware=)`` is ``bios`` (SeaBIOS, QEMU's iPXE
ROM), ``uefi`` (OVMF on q35, QEMU's EFI iPXE ROM), ``uefi-http`` (OVMF,
no iPXE ROM: the firmware's own HTTP boot) or ``uefi-secure`` (OVMF with
Secure Boot enforced and Microsoft's keys enrolled, on q35 with SMM; its
own PXE on a wire of its own: ``Guest.on_wire``).
"""

from __future__ import annotations

import contextlib
import datetime
import os
import pathlib
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from hwbus.localstack.bootserver import BootServer
from hwbus.localstack.common import TOP, free_port, stop, wait_for
from hwbus.localstack.consumer import ConsumerProcess, write_config
from hwbus.store import State
from tests.e2e.wire import Wire, pxe_wire
from tests.functional.conftest import (  # noqa: F401 - fixtures
    CONSUMER_PASSWORD,
    broker,
    clean_ironic,
    credentials_for,
    ironic,
    rabbitmq,
)

KVM_PROBE_SECONDS = 30  # a working KVM reaches the root fs in a few
OVMF = pathlib.Path('/usr/share/OVMF')
FIRMWARE = {  # code, variables template, q35 machine options
    'uefi': ('OVMF_CODE_4M.fd', 'OVMF_VARS_4M.fd', 'q35'),
    'uefi-http': ('OVMF_CODE_4M.fd', 'OVMF_VARS_4M.fd', 'q35'),
    'uefi-secure': ('OVMF_CODE_4M.secboot.fd', 'OVMF_VARS_4M.ms.fd',
                    'q35,smm=on'),
}
# UEFI HTTP boot guests: the firmware's PXE off, as on a machine whose
# boot order says HTTP (edk2 reads these from QEMU's fw_cfg); else OVMF
# and AAVMF spend about 90 s on PXEv4 and PXEv6 before they try HTTP.
HTTP_ONLY = ('-fw_cfg', 'name=opt/org.tianocore/IPv4PXESupport,string=n',
             '-fw_cfg', 'name=opt/org.tianocore/IPv6PXESupport,string=n')
GUEST_MACS = ('52:54:00:12:34:56', '52:54:00:12:34:57')
GUEST_DISKS = (('HWBUSDISK1', 10 * 1024 ** 3), ('HWBUSDISK2', 4 * 1024 ** 3))
GUEST_RAM_MB = 1024


@pytest.fixture(scope='session')
def image():
    """Kernel and initramfs built from this tree (cached when unchanged),
    or, with HWBUS_E2E_IMAGE=<dir>, that directory's vmlinuz and
    initramfs.zst (an image built before, when this tree's cannot be
    built here: no Debian mirror)."""
    started = time.monotonic()
    given = os.environ.get('HWBUS_E2E_IMAGE')
    if given:
        out = pathlib.Path(given)
        print(f'\nramdisk image: {out} (HWBUS_E2E_IMAGE, not built from '
              f'this tree)')
        accelerator(out / 'vmlinuz')
        return out
    result = subprocess.run([sys.executable, str(TOP / 'tools' /
                                                 'build-ramdisk')],
                            capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    out = pathlib.Path(result.stdout.strip().splitlines()[-1])
    size = (out / 'initramfs.zst').stat().st_size
    print(f'\nramdisk image: {out} ({size / 2 ** 20:.1f} MiB initramfs, '
          f'{time.monotonic() - started:.0f} s to build or find)')
    accelerator(out / 'vmlinuz')
    return out


def image_size(image: pathlib.Path) -> str:
    """Kernel + initramfs, as each e2e test prints it."""
    sizes = [(image / n).stat().st_size for n in ('vmlinuz',
                                                  'initramfs.zst')]
    return (f'{sum(sizes) / 2 ** 20:.1f} MiB (vmlinuz '
            f'{sizes[0] / 2 ** 20:.1f} + initramfs.zst '
            f'{sizes[1] / 2 ** 20:.1f})')


def node_by_mac(api, mac: str) -> str | None:
    """The UUID of the node that has a port with ``mac``, if any."""
    for port in api.ports():
        if port['address'] == mac:
            return port['node_uuid']
    return None


def delivered(console: str) -> bool:
    """The ramdisk's word that the broker took the inventory: a confirm,
    or the consumer deleting the credential before the confirm came."""
    return ('confirmed message' in console
            or 'awaited its confirm' in console)


def assert_node_is_the_guest(site, console: str, *,
                             disks=GUEST_DISKS, cpu_arch: str = 'x86_64',
                             boot_mode: str | None = None,
                             firmware_ram_disks: int = 0,
                             issued_by: str | None = 'bootserver',
                             ) -> tuple[str, dict]:
    """What every row of the firmware matrix proves, in one place: the
    inventory got through, the node Ironic made has exactly the guest's
    CPUs, memory, disks and MACs (and its boot mode when given), and the
    boot's credential was applied and its broker user deleted.

    ``firmware_ram_disks``: UEFI HTTP boot leaves the boot image as a RAM
    disk the firmware describes in ACPI (NFIT), which Linux shows as
    /dev/pmem0 and the inventory lists like every disk the OS sees.
    Returns the node's UUID and what Ironic stored (inventory and
    plugin_data)."""
    assert delivered(console), console[-3000:]
    wait_for(lambda: node_by_mac(site.ironic, GUEST_MACS[0]), 60,
             'the node')
    node = node_by_mac(site.ironic, GUEST_MACS[0])
    stored: dict = {}
    wait_for(lambda: stored.update(site.ironic.get(
        f'/v1/nodes/{node}/inventory')) or stored, 60, 'its inventory')
    inventory = stored['inventory']
    assert inventory['cpu']['count'] == 2
    assert inventory['memory']['physical_mb'] == GUEST_RAM_MB
    ram = [d for d in inventory['disks'] if d['name'].startswith('/dev/pmem')]
    assert len(ram) == firmware_ram_disks, ram
    assert sorted((d['serial'], d['size']) for d in inventory['disks']
                  if d not in ram) == sorted(disks)
    assert sorted(i['mac_address'] for i in inventory['interfaces']) == \
        sorted(GUEST_MACS)
    assert inventory['boot']['pxe_interface'] == GUEST_MACS[0]
    if boot_mode is not None:
        assert inventory['boot']['current_boot_mode'] == boot_mode
    properties = site.ironic.get(f'/v1/nodes/{node}')['properties']
    assert properties['memory_mb'] == GUEST_RAM_MB
    assert properties['cpu_arch'] == cpu_arch
    [credential] = site.store.list()
    assert credential.mac == GUEST_MACS[0]
    if issued_by is not None:
        assert credential.issued_by == issued_by
    wait_for(lambda: site.store.get(credential.boot_id).state ==
             State.APPLIED.value, 30, 'applied')
    assert credential.username not in site.broker.users()
    return node, stored


_UPTIME = re.compile(r'^\[\s*(\d+\.\d+)\] (.*)$', re.M)
_RAMDISK = re.compile(r'^hwbus-ramdisk: (\d{4}-\d\d-\d\d '
                      r'\d\d:\d\d:\d\d,\d{3}) \w+ (.*)$', re.M)


def boot_phases(console: str, took: float) -> dict[str, float]:
    """Where a boot's seconds went, from its console: the kernel's and
    hwbus-init's uptime stamps, and hwbus-ramdisk's own clock for what
    happens inside it. Phases whose marks are missing are left out.

    firmware+loaders: QEMU's start until the kernel starts (all before
    the kernel's clock: firmware, PXE/iPXE/GRUB, downloads); kernel:
    until /init; drivers: udev; network: DHCP/SLAAC and the BMC probe;
    ramdisk start: the interpreter, imports and the credential; collect;
    publish: seal, connect, publish, confirm; power-off: the rest."""
    marks: dict[str, float] = {}
    for uptime, text in _UPTIME.findall(console):
        for key, needle in (('init', 'Run /init'),
                            ('drivers', 'hwbus-init: loading drivers'),
                            ('network', 'hwbus-init: bringing up network'),
                            ('ramdisk', 'hwbus-init: starting hwbus-ramdisk'),
                            ('off', 'reboot: Power down')):
            if text.startswith(needle) and key not in marks:
                marks[key] = float(uptime)
    clock: dict[str, float] = {}
    for stamp, text in _RAMDISK.findall(console):
        at = datetime.datetime.strptime(stamp, '%Y-%m-%d %H:%M:%S,%f')
        seconds = at.timestamp()
        clock.setdefault('first', seconds)
        for key, needle in (('collected', 'collected '),
                            ('confirmed', 'confirmed message'),
                            ('after', 'after-action')):
            if needle in text:
                clock.setdefault(key, seconds)
    phases: dict[str, float] = {}
    if 'off' in marks:
        phases['firmware+loaders'] = took - marks['off']
    steps = [('kernel', None, 'init'), ('drivers', 'drivers', 'network'),
             ('network', 'network', 'ramdisk')]
    for name, start, end in steps:
        if (start is None or start in marks) and end in marks:
            phases[name] = marks[end] - (marks[start] if start else 0.0)
    if {'ramdisk', 'off'} <= marks.keys() and {'first', 'after'} <= \
            clock.keys():
        inside = clock['after'] - clock['first']
        phases['ramdisk start'] = (marks['off'] - marks['ramdisk']) - inside
        if 'collected' in clock:
            phases['collect'] = clock['collected'] - clock['first']
            if 'confirmed' in clock:
                phases['publish'] = clock['confirmed'] - clock['collected']
    return phases


_ACCEL: list[str] = []  # the session's answer, once probed


def accelerator(kernel: pathlib.Path | None = None) -> str:
    """``kvm`` when a probe boot of ``kernel`` under KVM gets past early
    boot within KVM_PROBE_SECONDS, else ``tcg``; HWBUS_QEMU_ACCEL forces
    one. Probed once a session (the ``image`` fixture passes the kernel;
    a guest started before any probe gets the forced value or tcg)."""
    if not _ACCEL:
        _ACCEL.append(_probe(kernel))
    return _ACCEL[0]


def _probe(kernel: pathlib.Path | None) -> str:
    forced = os.environ.get('HWBUS_QEMU_ACCEL')
    if forced:
        print(f'\nQEMU accelerator: {forced} (HWBUS_QEMU_ACCEL)')
        return forced
    if kernel is None or not os.access('/dev/kvm', os.R_OK | os.W_OK):
        print('\nQEMU accelerator: tcg (no usable /dev/kvm)')
        return 'tcg'
    started = time.monotonic()
    # No initrd: a kernel that boots panics when it finds no root file
    # system, and panic=-1 with -no-reboot ends QEMU there.
    argv = ['qemu-system-x86_64', '-accel', 'kvm', '-m', '256',
            '-no-reboot', '-display', 'none', '-monitor', 'none',
            '-serial', 'stdio', '-nic', 'none', '-kernel', str(kernel),
            '-append', 'console=ttyS0 panic=-1 loglevel=7']
    try:
        out = subprocess.run(argv, capture_output=True, text=True,
                             errors='replace', timeout=KVM_PROBE_SECONDS
                             ).stdout
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b'').decode(errors='replace') \
            if isinstance(exc.stdout, bytes) else (exc.stdout or '')
    works = 'Unable to mount root fs' in out or 'VFS:' in out
    last = (out.strip().splitlines() or ['no output'])[-1][:100]
    print(f'\nQEMU accelerator: {"kvm" if works else "tcg"} (KVM probe '
          f'{time.monotonic() - started:.0f} s: '
          f'{"reached the root fs" if works else "stuck at " + repr(last)})')
    return 'kvm' if works else 'tcg'


class Guest:
    """One QEMU machine: 2 vCPUs, known RAM, two disks, two NICs."""

    def __init__(self, workdir: pathlib.Path, firmware: str = 'bios'
                 ) -> None:
        self.workdir = workdir
        self.firmware = firmware
        self.accel = accelerator()
        self.console = workdir / 'console.log'
        self.proc: subprocess.Popen | None = None

    def _argv(self) -> list[str]:
        argv = ['qemu-system-x86_64', '-accel', self.accel, '-m',
                str(GUEST_RAM_MB), '-smp', '2', '-no-reboot', '-display',
                'none', '-monitor', 'none', '-serial',
                f'file:{self.console}']
        if self.firmware != 'bios':
            code, template, machine = FIRMWARE[self.firmware]
            variables = self.workdir / 'OVMF_VARS.fd'  # the guest writes
            shutil.copyfile(OVMF / template, variables)
            argv += ['-machine', machine,
                     '-drive', f'if=pflash,format=raw,unit=0,readonly=on,'
                               f'file={OVMF / code}',
                     '-drive', f'if=pflash,format=raw,unit=1,'
                               f'file={variables}']
            if self.firmware == 'uefi-http':
                argv += HTTP_ONLY
            if self.firmware == 'uefi-secure':
                # Only SMM code may write the variables: enforced.
                argv += ['-global',
                         'driver=cfi.pflash01,property=secure,value=on']
        for n, (serial, size) in enumerate(GUEST_DISKS):
            disk = self.workdir / f'disk{n}.img'
            with open(disk, 'wb') as f:
                f.truncate(size)
            argv += ['-drive', f'file={disk},if=none,id=d{n},format=raw',
                     '-device', f'virtio-blk-pci,drive=d{n},serial={serial}']
        return argv

    def pxe(self, bootfile: str) -> Guest:
        """Network boot from the first NIC with DHCP's boot file
        ``bootfile``: through QEMU's iPXE ROM, or, for ``uefi-http`` and
        ``uefi-secure``, the firmware's own HTTP boot (the ROM left out:
        iPXE would load shim, but shim's fetch of GRUB through it
        fails)."""
        if self.firmware in ('uefi-http', 'uefi-secure'):
            argv = [*self._argv(),
                    '-netdev', f'user,id=n0,bootfile={bootfile}',
                    '-device', f'virtio-net-pci,netdev=n0,'
                               f'mac={GUEST_MACS[0]},romfile=,bootindex=1',
                    '-netdev', 'user,id=n1',
                    '-device', f'virtio-net-pci,netdev=n1,'
                               f'mac={GUEST_MACS[1]},romfile=']
            return self._start(argv)
        argv = [*self._argv(), '-boot', 'n',
                '-nic', f'user,model=virtio-net-pci,mac={GUEST_MACS[0]},'
                        f'bootfile={bootfile}',
                '-nic', f'user,model=virtio-net-pci,mac={GUEST_MACS[1]}']
        return self._start(argv)

    def on_wire(self, wire: Any) -> Guest:
        """Network boot from the first NIC on ``wire`` (tests.e2e.wire:
        a tap in a namespace, a real DHCP server, the boot server's TFTP)
        by the firmware's own PXE; the second NIC on QEMU's user network,
        where the broker is 10.0.2.2 as for every other guest."""
        argv = [*self._argv(),
                '-netdev', f'tap,id=n0,ifname={wire.tap},script=no,'
                           f'downscript=no',
                '-device', f'virtio-net-pci,netdev=n0,mac={GUEST_MACS[0]},'
                           f'romfile=,bootindex=1',
                '-netdev', 'user,id=n1',
                '-device', f'virtio-net-pci,netdev=n1,mac={GUEST_MACS[1]},'
                           f'romfile=']
        self._start(argv)
        wire.plug()
        return self

    def direct(self, kernel: pathlib.Path, initrd: pathlib.Path,
               append: str) -> Guest:
        bootif = GUEST_MACS[0].replace(':', '-')
        argv = [*self._argv(), '-kernel', str(kernel),
                '-initrd', str(initrd),
                '-append', f'console=ttyS0 {append} BOOTIF=01-{bootif}',
                '-nic', f'user,model=virtio-net-pci,mac={GUEST_MACS[0]}',
                '-nic', f'user,model=virtio-net-pci,mac={GUEST_MACS[1]}']
        return self._start(argv)

    def _start(self, argv: list[str]) -> Guest:
        print(f'\nguest: {self.firmware} firmware, {self.accel}')
        self.started = time.monotonic()
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                     stderr=open(self.workdir / 'qemu.err',
                                                 'w'))
        return self

    def text(self) -> str:
        return self.console.read_text(errors='replace') \
            if self.console.exists() else ''

    def wait_off(self, timeout: float) -> float:
        """Seconds from start until the guest powered itself off; prints
        where they went (boot_phases)."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            stop(self.proc)
            raise AssertionError('the guest did not power off:\n' +
                                 self.text()[-3000:]) from None
        took = time.monotonic() - self.started
        phases = boot_phases(self.text(), took)
        print(f'\nboot phases ({self.firmware}, {self.accel}, {took:.1f} s): '
              + ', '.join(f'{k} {v:.1f} s' for k, v in phases.items()))
        return took

    def kill(self) -> None:
        stop(self.proc, timeout=5)


class Site:
    """Broker, Ironic, consumer and boot server, as an operator runs them."""

    def __init__(self, broker, ironic, image, tmp_path,  # noqa: F811
                 appliers: str = 'inspection', extra: str = '') -> None:
        from hwbus.store import Store
        from tests.functional import boots

        boots.get_all(broker, 'hwbus.inventory')
        port = free_port()
        url = f'sqlite:///{tmp_path}/hwbus.sqlite'
        config = write_config(
            tmp_path / 'hwbus.conf', broker, url, ironic.url,
            CONSUMER_PASSWORD, appliers=appliers,
            extra=f'\n[bootserver]\nhost = 127.0.0.1\nport = {port}\n'
                  f'image_dir = {image}\n'
                  f'public_url = http://10.0.2.2:{port}\n'
                  f'kernel_args = console=ttyS0\n' + extra)
        text = config.read_text()
        text = text.replace(
            f'public_urls = amqp://127.0.0.1:{broker.amqp_port}',
            f'public_urls = amqp://10.0.2.2:{broker.amqp_port}')
        text = text.replace('[ramdisk]\nafter = none',
                            '[ramdisk]\nafter = poweroff')
        config.write_text(text)
        self.broker, self.ironic, self.config, self.image = (
            broker, ironic, config, image)
        self.tmp = tmp_path
        self.bootfile = f'http://10.0.2.2:{port}/boot.ipxe'
        self.consumer = ConsumerProcess(config,
                                        tmp_path / 'consumer.log').start()
        self.bootserver = BootServer(config, tmp_path / 'bootserver.log',
                                     port).start()
        self.store = Store(url)
        self.credentials = credentials_for(broker, self.store)
        self.credentials.public_urls = [
            f'amqp://10.0.2.2:{broker.amqp_port}/%2F']

    def stop(self) -> None:
        self.bootserver.stop()
        self.consumer.stop()


@pytest.fixture
def site(broker, clean_ironic, image, tmp_path):  # noqa: F811
    """Broker, Ironic, consumer and boot server, as an operator runs them."""
    s = Site(broker, clean_ironic, image, tmp_path)
    yield s
    s.stop()


@contextlib.contextmanager
def secure_boot_site(broker, ironic, image, tmp_path,  # noqa: F811
                     extra: str = '') -> Iterator[tuple[Site, Wire]]:
    """Secure Boot over PXE: the site with the boot server's TFTP on port
    69 of a wire of its own (tests.e2e.wire; QEMU's user network answers
    TFTP itself), DHCP there from etc/dnsmasq/hwbus-secureboot.conf;
    ``extra`` adds [bootserver] options."""
    with pxe_wire(tmp_path, TOP / 'etc' / 'dnsmasq' /
                  'hwbus-secureboot.conf') as wire:
        site = Site(broker, ironic, image, tmp_path,
                    extra=f'tftp_port = 69\ntftp_host = {wire.host_address}'
                          f'\n' + extra)
        try:
            yield site, wire
        finally:
            site.stop()


def assert_secure_boot_over_tftp(site, wire: Wire, console: str, *,
                                 loaders: tuple[str, str],
                                 arch: str = 'x86_64',
                                 cpu_arch: str = 'x86_64') -> dict:
    """What a Secure Boot row proves besides assert_node_is_the_guest:
    the kernel says Secure Boot is on, so does the guest's inventory,
    and the boot server sent the whole chain by TFTP (``loaders``: shim
    and the GRUB shim asks for, then GRUB's config, the per-boot script
    issued for the guest's MAC from its wire, ``arch``'s kernel and
    initramfs). Returns what Ironic stored."""
    assert 'Secure boot enabled' in console, console[-3000:]
    _, stored = assert_node_is_the_guest(site, console, cpu_arch=cpu_arch,
                                         boot_mode='uefi')
    assert stored['plugin_data']['boot_details'] == {'secure_boot': True}
    images = 'images/' if arch == 'x86_64' else f'images/{arch}/'
    log = site.bootserver.log.read_text()
    for line in (*(f'TFTP: sent {name}' for name in loaders),
                 'TFTP: sent grub/grub.cfg',
                 f'for {GUEST_MACS[0]} ({arch}, boot.grub) to '
                 f'{wire.host_address[:-1]}',
                 f'TFTP: sent {images}vmlinuz',
                 f'TFTP: sent {images}initramfs.zst'):
        assert line in log, (line, log[-3000:])
    return stored
