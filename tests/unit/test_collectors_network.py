"""Interfaces, BMC and LLDP: what Ironic looks machines up by."""

import struct

from hwbus.ramdisk.collectors import bmc, interfaces
from hwbus.ramdisk.collectors import lldp as lldp_collector
from hwbus.ramdisk.collectors.base import Options, bootif_mac
from hwbus.ramdisk.probes import lldp_listener
from tests.unit.machine import Machine

IB_ADDRESS = ('a0:00:02:20:fe:80:00:00:00:00:00:00:'
              '7c:fe:90:03:00:29:26:52')


def _collect(m, **options):
    return interfaces.collect(m.root(), Options(**options))


def test_physical_nics_with_addresses_and_boot_interface(tmp_path):
    m = Machine(tmp_path).nic('eno1', '3c:fd:fe:a0:00:01')
    m.nic('eno2', '3c:fd:fe:a0:00:02', pci='0000:3b:00.1', carrier='0',
          speed='-1')
    m.file('/proc/cmdline', 'quiet BOOTIF=01-3c-fd-fe-a0-00-02\n')
    m.probe('net_if_addrs', {'eno1': {'ipv4': ['10.0.0.5'],
                                      'ipv6': ['fe80::1', '2001:db8::5']}})
    m.probe('ethtool', {'eno1': {'driver': 'i40e',
                                 'firmware_version': '6.80 0x80003d05'}})
    part = _collect(m)
    eno1, eno2 = part.inventory['interfaces']
    assert eno1 == {
        'name': 'eno1', 'mac_address': '3c:fd:fe:a0:00:01',
        'ipv4_address': '10.0.0.5', 'ipv6_address': '2001:db8::5',
        'has_carrier': True, 'lldp': None, 'vendor': '0x8086',
        'product': '0x1572', 'client_id': None, 'biosdevname': None,
        'speed_mbps': 10000, 'pxe_enabled': False,
        'pci_address': '0000:3b:00.0', 'driver': 'i40e'}
    assert eno2['pxe_enabled'] is True
    assert eno2['has_carrier'] is False and eno2['speed_mbps'] is None
    assert part.plugin_data['nics'][0]['firmware_version'] == \
        '6.80 0x80003d05'
    assert part.errors == []


def test_permanent_mac_wins_over_a_changed_current_one(tmp_path):
    m = Machine(tmp_path).nic('eno1', '3c:fd:fe:a0:00:09')
    m.probe('ethtool', {'eno1': {'permanent_mac': '3c:fd:fe:a0:00:01'}})
    (eno1,) = _collect(m).inventory['interfaces']
    assert eno1['mac_address'] == '3c:fd:fe:a0:00:01'


def test_usb_nic_of_the_bmc_is_left_out_unless_asked_for(tmp_path):
    m = Machine(tmp_path).nic('eno1', '3c:fd:fe:a0:00:01')
    m.nic('usb0', '0a:bb:cc:dd:ee:ff', usb=True, driver='cdc_ether')
    part = _collect(m)
    assert [i['name'] for i in part.inventory['interfaces']] == ['eno1']
    usb = part.plugin_data['nics'][1]
    assert (usb['name'], usb['usb'], usb['excluded']) == ('usb0', True,
                                                         'usb')
    included = _collect(m, include_usb_nics=True).inventory['interfaces']
    assert [i['name'] for i in included] == ['eno1', 'usb0']


def test_mellanox_infiniband_gets_a_mac_and_client_id(tmp_path):
    m = Machine(tmp_path).nic('ib0', IB_ADDRESS, vendor='0x15b3',
                              device='0x1017', link_type='32')
    (ib0,) = _collect(m).inventory['interfaces']
    assert ib0['mac_address'] == '7c:fe:90:29:26:52'
    assert ib0['client_id'] == ('ff:00:00:00:00:00:02:00:00:02:c9:00:'
                                '7c:fe:90:03:00:29:26:52')


def test_other_infiniband_and_bad_addresses_never_reach_lookup(tmp_path):
    m = Machine(tmp_path).nic('ib0', IB_ADDRESS, vendor='0x8086',
                              link_type='32')
    m.nic('eth9', '00:00:00:00:00:00', pci='0000:5e:00.0')
    m.nic('fw0', '00:11:22:33:44:55:66:77', pci='0000:5e:00.1')
    part = _collect(m)
    assert part.inventory['interfaces'] == []
    assert [n['excluded'] for n in part.plugin_data['nics']] == [
        'invalid-mac', 'invalid-mac', 'invalid-mac']
    assert part.errors == ['no physical network interface with a valid MAC']


def test_bond_and_virtual_interfaces_are_described_not_listed(tmp_path):
    m = Machine(tmp_path).nic('eno1', '3c:fd:fe:a0:00:01')
    m.link('/sys/devices/pci0000:3a/0000:3a:00.0/0000:3b:00.0/net/eno1/'
           'master', '../../../../../virtual/net/bond0')
    m.files('/sys/devices/virtual/net/bond0',
            {'address': '3c:fd:fe:a0:00:01', 'type': '1'})
    m.files('/sys/devices/virtual/net/bond0/bonding',
            {'mode': '802.3ad 4', 'slaves': 'eno1'})
    m.link('/sys/class/net/bond0', '../../devices/virtual/net/bond0')
    part = _collect(m)
    assert [i['name'] for i in part.inventory['interfaces']] == ['eno1']
    bond0, eno1 = part.plugin_data['nics']
    assert bond0['bond'] == {'mode': '802.3ad', 'slaves': ['eno1'],
                             'master': None}
    assert bond0['excluded'] == 'not-physical'
    assert eno1['bond'] == {'mode': None, 'slaves': [], 'master': 'bond0'}


def test_boot_interface_that_is_not_there_is_reported(tmp_path):
    m = Machine(tmp_path).nic('eno1', '3c:fd:fe:a0:00:01')
    part = _collect(m, bootif='3c:fd:fe:a0:00:99')
    assert part.errors == ['boot interface 3c:fd:fe:a0:00:99 is not among '
                           'the physical interfaces']


def test_bootif_forms(tmp_path):
    m = Machine(tmp_path).file('/proc/cmdline', 'BOOTIF=01-AA-BB-CC-DD-EE-FF')
    assert bootif_mac(m.root(), Options()) == 'aa:bb:cc:dd:ee:ff'
    assert bootif_mac(m.root(), Options(bootif='12:22:33:44:55:66')) == \
        '12:22:33:44:55:66'
    m.file('/proc/cmdline', 'BOOTIF=garbage')
    assert bootif_mac(m.root(), Options()) is None
    # No NIC's address (hwbus.macs): multicast or all zero.
    m.file('/proc/cmdline', 'BOOTIF=01-01-00-5e-00-00-01')
    assert bootif_mac(m.root(), Options()) is None
    assert bootif_mac(m.root(), Options(bootif='00:00:00:00:00:00')) is None


LAN_PRINT = """\
Set in Progress         : Set Complete
IP Address Source       : DHCP Address
IP Address              : {ip}
Subnet Mask             : 255.255.255.0
MAC Address             : 0C:C4:7A:3B:1F:20
Default Gateway IP      : 10.1.0.1
802.1q VLAN ID          : 42
"""
LAN6_PRINT = """\
IPv6 Static Address 0:
    Enabled:        no
    Address:        ::/0
    Status:         disabled
IPv6 Dynamic Address 0:
    Source/Type:    SLAAC
    Address:        fe80::ec4:7aff:fe3b:1f20/64
    Status:         active
IPv6 Dynamic Address 1:
    Source/Type:    SLAAC
    Address:        2001:db8::ec4:7aff:fe3b:1f20/64
    Status:         active
"""


def test_no_ipmi_device_means_no_bmc_and_no_ipmitool_run(tmp_path):
    part = bmc.collect(Machine(tmp_path).root(), Options())
    assert part.inventory == {} and part.errors == []


def test_bmc_found_on_the_first_channel_with_an_address(tmp_path):
    m = Machine(tmp_path).file('/dev/ipmi0')
    m.cmd('ipmitool-lan-print-1', LAN_PRINT.format(ip='0.0.0.0'))  # noqa: S104
    m.cmd('ipmitool-lan-print-2', LAN_PRINT.format(ip='10.1.0.20'))
    m.cmd('ipmitool-lan6-print-2', LAN6_PRINT)
    part = bmc.collect(m.root(), Options())
    assert part.inventory == {'bmc_address': '10.1.0.20',
                              'bmc_v6address': '2001:db8::ec4:7aff:fe3b:1f20',
                              'bmc_mac': '0c:c4:7a:3b:1f:20'}
    assert part.plugin_data['bmc']['channel'] == 2
    assert part.plugin_data['bmc']['vlan_id'] == 42
    assert part.errors == []


def test_wedged_bmc_costs_one_timeout_and_is_reported(tmp_path):
    m = Machine(tmp_path).file('/dev/ipmi0').timeout('ipmitool-lan-print-1')
    part = bmc.collect(m.root(), Options())
    assert part.inventory['bmc_address'] is None
    assert 'not answering' in part.errors[0]


def _frame(*tlvs):
    payload = b''
    for kind, value in tlvs:
        payload += struct.pack('!H', kind << 9 | len(value)) + value
    return payload + b'\x00\x00'


def test_lldp_tlvs_are_hex_pairs_until_the_end_tlv():
    payload = _frame((1, b'\x04\x00\x1c\x73\x00\x00\x01'),
                     (2, b'\x05Ethernet1'), (5, b'switch-a'))
    assert lldp_listener.parse_tlvs(payload + b'junk') == [
        [1, '04001c73000001'], [2, '05' + b'Ethernet1'.hex()],
        [5, b'switch-a'.hex()]]


def test_truncated_lldp_tlv_stops_parsing():
    payload = struct.pack('!H', 5 << 9 | 50) + b'short'
    assert lldp_listener.parse_tlvs(payload) == []


def test_lldp_off_by_default_and_replayed_when_recorded(tmp_path):
    m = Machine(tmp_path).nic('eno1', '3c:fd:fe:a0:00:01')
    m.nic('eno2', '3c:fd:fe:a0:00:02', pci='0000:3b:00.1')
    assert lldp_collector.collect(m.root(), Options()).plugin_data == {}
    m.probe('lldp', {'eno1': [[1, '0400']]})
    part = lldp_collector.collect(m.root(), Options(lldp_timeout=2))
    assert part.plugin_data == {'lldp_raw': {'eno1': [[1, '0400']]}}
    assert part.errors == ['no LLDP within 2 s on: eno2']
