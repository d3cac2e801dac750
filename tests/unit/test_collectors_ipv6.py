"""``ipv6_address`` of each port: which of its addresses Ironic gets."""

import socket
from types import SimpleNamespace

import pytest

from hwbus import inventory
from hwbus.ramdisk.collectors import interfaces
from hwbus.ramdisk.collectors.base import Options
from tests.unit.machine import Machine


@pytest.mark.parametrize('addresses, picked', [
    ([], None),
    (['fe80::5054:ff:fe12:3456'], 'fe80::5054:ff:fe12:3456'),
    # SLAAC on QEMU's user network: site-local fec0::/64.
    (['fe80::1', 'fec0::5054:ff:fe12:3456'], 'fec0::5054:ff:fe12:3456'),
    (['fd00::5', 'fe80::1', '2001:db8::5'], '2001:db8::5'),
    (['fe80::1', 'fd12:3456::5', 'fec0::5'], 'fd12:3456::5'),
    # A DHCPv6 address next to a SLAAC one of the same rank: kernel order.
    (['2001:db8::1:5', '2001:db8::5054:ff:fe12:3456'], '2001:db8::1:5'),
    (['2001:DB8:0:0::5'], '2001:db8::5'),
    (['::1', 'ff02::1', '::', 'not-an-address', 'fe80::1'], 'fe80::1'),
    (['::1', 'ff02::1'], None),
])
def test_the_most_reachable_address_is_reported(addresses, picked):
    assert interfaces._pick_ipv6(addresses) == picked


def test_zone_ids_are_stripped_and_families_kept_apart(monkeypatch):
    def addr(family, address):
        return SimpleNamespace(family=family, address=address)

    monkeypatch.setattr(interfaces.psutil, 'net_if_addrs', lambda: {
        'eth0': [addr(socket.AF_INET6, 'fe80::1%eth0'),
                 addr(socket.AF_INET6, 'fec0::5054:ff:fe12:3456'),
                 addr(socket.AF_PACKET, '52:54:00:12:34:56')]})
    assert interfaces._addresses() == {'eth0': {
        'ipv4': [], 'ipv6': ['fe80::1', 'fec0::5054:ff:fe12:3456']}}


def test_an_ipv6_only_port_reports_ipv6_and_no_ipv4(tmp_path):
    m = Machine(tmp_path).nic('eth0', '52:54:00:12:34:56')
    m.file('/proc/cmdline', 'BOOTIF=01-52-54-00-12-34-56\n')
    m.probe('net_if_addrs', {'eth0': {
        'ipv4': [], 'ipv6': ['fe80::5054:ff:fe12:3456',
                             'fec0::5054:ff:fe12:3456']}})
    part = interfaces.collect(m.root(), Options())
    [eth0] = part.inventory['interfaces']
    assert eth0['ipv4_address'] is None
    assert eth0['ipv6_address'] == 'fec0::5054:ff:fe12:3456'
    assert eth0['pxe_enabled'] is True
    document = inventory.empty_document()
    document['inventory']['interfaces'] = part.inventory['interfaces']
    assert inventory.problems(document) == []
