"""End to end: the real ramdisk under QEMU against the real servers.

The image is built from this source tree by tools/build-ramdisk (cached
by a hash of its inputs). QEMU runs under TCG: on the CI machine nested
KVM hangs this kernel right after "Probing EDD" (set HWBUS_QEMU_ACCEL=kvm
where KVM works). The guest reaches the host's loopback as 10.0.2.2.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import time

import pytest

from hwbus.localstack.bootserver import BootServer
from hwbus.localstack.common import TOP, free_port, stop
from hwbus.localstack.consumer import ConsumerProcess, write_config
from tests.functional.conftest import (  # noqa: F401 - fixtures
    CONSUMER_PASSWORD,
    broker,
    clean_ironic,
    credentials_for,
    ironic,
    rabbitmq,
)

ACCEL = os.environ.get('HWBUS_QEMU_ACCEL', 'tcg')
GUEST_MACS = ('52:54:00:12:34:56', '52:54:00:12:34:57')
GUEST_DISKS = (('HWBUSDISK1', 10 * 1024 ** 3), ('HWBUSDISK2', 4 * 1024 ** 3))
GUEST_RAM_MB = 1024


@pytest.fixture(scope='session')
def image():
    """Kernel and initramfs built from this tree (cached when unchanged)."""
    started = time.monotonic()
    result = subprocess.run([sys.executable, str(TOP / 'tools' /
                                                 'build-ramdisk')],
                            capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stderr[-3000:]
    out = pathlib.Path(result.stdout.strip().splitlines()[-1])
    size = (out / 'initramfs.zst').stat().st_size
    print(f'\nramdisk image: {out} ({size / 2 ** 20:.1f} MiB initramfs, '
          f'{time.monotonic() - started:.0f} s to build or find)')
    return out


class Guest:
    """One QEMU machine: 2 vCPUs, known RAM, two disks, two NICs."""

    def __init__(self, workdir: pathlib.Path) -> None:
        self.workdir = workdir
        self.console = workdir / 'console.log'
        self.proc: subprocess.Popen | None = None

    def _argv(self) -> list[str]:
        argv = ['qemu-system-x86_64', '-accel', ACCEL, '-m',
                str(GUEST_RAM_MB), '-smp', '2', '-no-reboot', '-display',
                'none', '-monitor', 'none', '-serial',
                f'file:{self.console}']
        for n, (serial, size) in enumerate(GUEST_DISKS):
            disk = self.workdir / f'disk{n}.img'
            with open(disk, 'wb') as f:
                f.truncate(size)
            argv += ['-drive', f'file={disk},if=none,id=d{n},format=raw',
                     '-device', f'virtio-blk-pci,drive=d{n},serial={serial}']
        return argv

    def pxe(self, bootfile: str) -> Guest:
        argv = [*self._argv(), '-boot', 'n',
                '-nic', f'user,model=virtio-net-pci,mac={GUEST_MACS[0]},'
                        f'bootfile={bootfile}',
                '-nic', f'user,model=virtio-net-pci,mac={GUEST_MACS[1]}']
        return self._start(argv)

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
        self.started = time.monotonic()
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                     stderr=open(self.workdir / 'qemu.err',
                                                 'w'))
        return self

    def text(self) -> str:
        return self.console.read_text(errors='replace') \
            if self.console.exists() else ''

    def wait_off(self, timeout: float) -> float:
        """Seconds from start until the guest powered itself off."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            stop(self.proc)
            raise AssertionError('the guest did not power off:\n' +
                                 self.text()[-3000:]) from None
        return time.monotonic() - self.started

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
