"""A machine on an IPv6-only network publishes to the broker over IPv6.

QEMU's user network runs with ``ipv4=off``: the guest has no IPv4 at
all. It gets its addresses by SLAAC from the router advertisements of
QEMU's slirp (prefix fec0::/64; DHCPv6 runs too, slirp does not assign
addresses by it) and reaches the host's ::1 as fec0::2, where the test
RabbitMQ node listens besides 127.0.0.1. The credential's broker URL is
the bracketed ``amqp://USER:PASS@[fec0::2]:PORT/%2F``.

The firmware is not part of this test: the emulated firmware here does
not network-boot from QEMU's user network over IPv6, so the kernel and
initramfs are loaded directly (QEMU ``-kernel``/``-initrd``) with the
kernel command line the credential's issuer wrote. Everything after the
kernel starts (addresses, the broker connection, the publish) is IPv6.
"""

from __future__ import annotations

import ipaddress
import pathlib
import re

import pytest

from tests.e2e.conftest import (
    GUEST_MACS,
    Guest,
    assert_node_is_the_guest,
    delivered,
)

# What QEMU's slirp gives an IPv6 guest: this prefix by SLAAC, and the
# host's loopback (::1) at this address.
PREFIX = ipaddress.IPv6Network('fec0::/64')
HOST = 'fec0::2'


class IPv6Guest(Guest):
    """The e2e guest with both NICs on an IPv6-only user network."""

    def ipv6_only(self, kernel: pathlib.Path, initrd: pathlib.Path,
                  append: str) -> IPv6Guest:
        bootif = GUEST_MACS[0].replace(':', '-')
        argv = [*self._argv(), '-kernel', str(kernel),
                '-initrd', str(initrd),
                '-append', f'console=ttyS0 {append} BOOTIF=01-{bootif}']
        for mac in GUEST_MACS:
            argv += ['-nic', f'user,ipv4=off,ipv6=on,ipv6-net={PREFIX},'
                             f'ipv6-host={HOST},model=virtio-net-pci,'
                             f'mac={mac}']
        return self._start(argv)


@pytest.fixture
def ipv6_site(site):
    assert site.broker.ipv6_host == '::1', 'the broker must listen on ::1'
    site.credentials.public_urls = [
        f'amqp://[{HOST}]:{site.broker.amqp_port}/%2F']
    return site


def test_an_ipv6_only_machine_publishes_over_ipv6_into_ironic(ipv6_site):
    site = ipv6_site
    issued = site.credentials.issue(mac=GUEST_MACS[0], after='poweroff')
    [url] = issued.params.urls
    assert url.startswith(f'amqp://{issued.credential.username}:')
    assert url.endswith(f'@[{HOST}]:{site.broker.amqp_port}/%2F')
    guest = IPv6Guest(site.tmp).ipv6_only(
        site.image / 'vmlinuz', site.image / 'initramfs.zst', issued.cmdline)
    took = guest.wait_off(timeout=600)
    console = guest.text()
    size = (site.image / 'initramfs.zst').stat().st_size
    print(f'\nIPv6-only direct boot to power-off: {took:.1f} s; initramfs '
          f'{size / 2 ** 20:.1f} MiB')
    assert delivered(console), console[-3000:]
    # The ramdisk's own report of the broker it used, and of its routes.
    assert f':***@[{HOST}]:{site.broker.amqp_port}' in console
    assert 'hwbus-init: IPv4 routes: none' in console, console[-3000:]
    assert re.search(r'hwbus-init: \w+ has fec0::\S+/64', console)
    assert 'hwbus-init: IPv6 default routes: default via fe80::' in console

    _, stored = assert_node_is_the_guest(site, console, issued_by=None)
    inventory = stored['inventory']
    [boot] = [i for i in inventory['interfaces']
              if i['mac_address'] == GUEST_MACS[0]]
    assert ipaddress.IPv6Address(boot['ipv6_address']) in PREFIX
    assert all(i['ipv4_address'] is None for i in inventory['interfaces'])
    [credential] = site.store.list()
    assert credential.boot_id == issued.credential.boot_id
    assert 'reboot: Power down' in console
