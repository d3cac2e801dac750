"""A provisioning network of its own for a guest: a tap in a network
namespace, bridged to a veth whose other end is on this host, with
dnsmasq (a repository example) answering DHCP there.

QEMU's user network answers TFTP itself and only on port 69, which is
the one port firmware and GRUB ask: a guest that must reach the boot
server's TFTP needs a real wire. The host end gets ``<net>.1``. QEMU
runs on the host (its user network, the guest's second NIC, must reach
the broker on the host's loopback as 10.0.2.2) and opens the tap there;
``Wire.plug`` then moves the tap, still open, into the namespace's
bridge. Nothing else of the host's network is touched and no DHCP client
runs on the host.
"""

from __future__ import annotations

import contextlib
import dataclasses
import pathlib
import secrets
import subprocess
import time
from collections.abc import Iterator

from tests.functional.dnsmasq_wire import ip


@dataclasses.dataclass(frozen=True)
class Wire:
    netns: str  # the bridge to the host end; the tap once plugged
    tap: str  # created on the host for QEMU to open
    host_address: str  # the boot server's end, on this host
    log: pathlib.Path  # dnsmasq's

    def plug(self, timeout: float = 30) -> None:
        """Once QEMU holds the tap (it has a carrier), move it into the
        namespace's bridge."""
        deadline = time.monotonic() + timeout
        while 'LOWER_UP' not in ip('link', 'show', self.tap):
            assert time.monotonic() < deadline, 'QEMU did not open the tap'
            time.sleep(0.1)
        ip('link', 'set', self.tap, 'netns', self.netns)
        ip('-n', self.netns, 'link', 'set', self.tap, 'master', 'br0')
        ip('-n', self.netns, 'link', 'set', self.tap, 'up')


@contextlib.contextmanager
def pxe_wire(tmp: pathlib.Path, conf: pathlib.Path) -> Iterator[Wire]:
    """Yield the wire once dnsmasq with ``conf`` (its ``eno2`` and its
    192.0.2.0/24 replaced) is answering on the host end."""
    suffix = secrets.token_hex(3)
    net = f'10.66.{secrets.randbelow(200) + 20}'
    netns, host_dev = f'hwbus-pxe-{suffix}', f'pxh{suffix}'
    tap = f'pxt{suffix}'
    ip('netns', 'add', netns)
    proc = None
    try:
        ip('link', 'add', host_dev, 'type', 'veth', 'peer', 'name', 'wire0',
           'netns', netns)
        ip('addr', 'add', f'{net}.1/24', 'dev', host_dev)
        ip('link', 'set', host_dev, 'up')
        ip('-n', netns, 'link', 'add', 'br0', 'type', 'bridge')
        ip('-n', netns, 'link', 'set', 'wire0', 'master', 'br0')
        for dev in ('lo', 'br0', 'wire0'):
            ip('-n', netns, 'link', 'set', dev, 'up')
        ip('tuntap', 'add', tap, 'mode', 'tap')
        ip('link', 'set', tap, 'up')
        text = conf.read_text()
        assert 'interface=eno2' in text and '192.0.2.' in text
        ours = tmp / 'dnsmasq.conf'
        ours.write_text(text.replace('interface=eno2',
                                     f'interface={host_dev}')
                        .replace('192.0.2.', f'{net}.'))
        log = tmp / 'dnsmasq.log'
        proc = subprocess.Popen(
            ['dnsmasq', '--keep-in-foreground', f'--conf-file={ours}',
             f'--pid-file={tmp}/dnsmasq.pid',
             f'--dhcp-leasefile={tmp}/leases', '--log-dhcp',
             f'--log-facility={log}', '--user=root'],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while 'DHCP, IP range' not in (log.read_text() if log.exists()
                                       else ''):
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, 'dnsmasq did not start'
            time.sleep(0.2)
        yield Wire(netns, tap, f'{net}.1', log)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        for dev in (host_dev, tap):  # gone with the namespace if moved
            with contextlib.suppress(subprocess.CalledProcessError):
                ip('link', 'del', dev)
        ip('netns', 'del', netns)
