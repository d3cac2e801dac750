"""dnsmasq with one of the repository's examples, on a veth between two
network namespaces: the provisioning network of the dnsmasq tests.

Nothing here touches the host's network or /etc: the client side only
runs the tests' own one-shot DHCP clients (a long-running client such as
dhcpcd would write the host's /etc/resolv.conf through ``ip netns exec``).
"""

from __future__ import annotations

import contextlib
import pathlib
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator


def ip(*args: str) -> str:
    return subprocess.run(['ip', *args], check=True, capture_output=True,
                          text=True, timeout=30).stdout


@contextlib.contextmanager
def dnsmasq_on_a_wire(tmp: pathlib.Path, conf: pathlib.Path, tag: str,
                      server_address: str, started: str,
                      before_address: Callable[[str, str, str, str], None]
                      | None = None,
                      ) -> Iterator[tuple[str, str, str, str, pathlib.Path]]:
    """Yield (server netns, server dev, client netns, client dev, log) once
    dnsmasq logged ``started``; ``conf``'s ``interface=eno2`` is pointed at
    the server's end. ``before_address`` runs before the server's address
    is added (e.g. sysctls that must precede it)."""
    suffix = secrets.token_hex(3)
    server, client = f'hwbus-{tag}s-{suffix}', f'hwbus-{tag}c-{suffix}'
    sdev, cdev = f'{tag}s{suffix}', f'{tag}c{suffix}'
    ip('netns', 'add', server)
    ip('netns', 'add', client)
    proc = None
    try:
        ip('link', 'add', sdev, 'netns', server, 'type', 'veth', 'peer',
           'name', cdev, 'netns', client)
        if before_address is not None:
            before_address(server, sdev, client, cdev)
        ip('-n', server, 'addr', 'add', server_address, 'dev', sdev)
        for netns, dev in ((server, sdev), (client, cdev)):
            ip('-n', netns, 'link', 'set', 'lo', 'up')
            ip('-n', netns, 'link', 'set', dev, 'up')
        text = conf.read_text()
        assert 'interface=eno2' in text
        ours = tmp / 'dnsmasq.conf'
        ours.write_text(text.replace('interface=eno2', f'interface={sdev}'))
        log = tmp / 'dnsmasq.log'
        proc = subprocess.Popen(
            ['ip', 'netns', 'exec', server, 'dnsmasq', '--keep-in-foreground',
             f'--conf-file={ours}', f'--pid-file={tmp}/dnsmasq.pid',
             f'--dhcp-leasefile={tmp}/leases', '--log-dhcp',
             f'--log-facility={log}', '--user=root'],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while started not in (log.read_text() if log.exists() else ''):
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, 'dnsmasq did not start'
            time.sleep(0.2)
        yield server, sdev, client, cdev, log
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
        ip('netns', 'del', server)
        ip('netns', 'del', client)
