"""A port's switch connection from raw LLDP TLVs, as Ironic decodes it.

The same cases go through a real Ironic in
tests/functional/test_ironic_agreement.py.
"""

import pytest

from hwbus import lldp

MAC_CHASSIS = (bytes([4]) + bytes.fromhex('001122334455')).hex()
NAME_PORT = (bytes([5]) + b'Ethernet1/7').hex()
SYSNAME = b'leaf-01'.hex()

# name: (tlvs, what Ironic's inspection hook sets from them)
CASES = {
    'chassis MAC, port name, system name': (
        [[1, MAC_CHASSIS], [2, NAME_PORT], [5, SYSNAME]],
        {'switch_id': '00:11:22:33:44:55', 'port_id': 'Ethernet1/7',
         'switch_info': 'leaf-01'}),
    'a chassis that is not a MAC gives no switch_id': (
        [[1, (bytes([7]) + b'sw-7').hex()], [2, NAME_PORT]],
        {'port_id': 'Ethernet1/7'}),
    'port MAC': (
        [[1, MAC_CHASSIS],
         [2, (bytes([3]) + bytes.fromhex('aabbccddeeff')).hex()]],
        {'switch_id': '00:11:22:33:44:55', 'port_id': 'aa:bb:cc:dd:ee:ff'}),
    'port network address': (
        [[1, MAC_CHASSIS], [2, (bytes([4, 1]) + bytes([10, 0, 0, 7])).hex()]],
        {'switch_id': '00:11:22:33:44:55', 'port_id': '10.0.0.7'}),
    'a later TLV of a type wins': (
        [[5, b'first'.hex()], [5, b'second'.hex()]],
        {'switch_info': 'second'}),
    'a port ID subtype Ironic cannot parse is dropped': (
        [[1, MAC_CHASSIS], [2, (bytes([6]) + b'circuit').hex()],
         [2, NAME_PORT]],
        {'switch_id': '00:11:22:33:44:55', 'port_id': 'Ethernet1/7'}),
    'a system name that is not UTF-8 is dropped': (
        [[1, MAC_CHASSIS], [5, 'ff'], [2, NAME_PORT]],
        {'switch_id': '00:11:22:33:44:55', 'port_id': 'Ethernet1/7'}),
    'other TLV types are ignored': (
        [[4, b'uplink'.hex()], [1, MAC_CHASSIS], [2, NAME_PORT]],
        {'switch_id': '00:11:22:33:44:55', 'port_id': 'Ethernet1/7'}),
}


@pytest.mark.parametrize('name', sorted(CASES))
def test_local_link_connection_follows_ironic(name):
    tlvs, expected = CASES[name]
    assert lldp.local_link_connection(tlvs) == expected


def test_what_ironic_cannot_parse_is_not_usable():
    bad = [[9, 'zz'], [9, 'abc'], [2, (bytes([6]) + b'x').hex()],
           [5, 'ff'], [1, '0499'], [2, '']]
    good = [[1, MAC_CHASSIS], [4, 'ff'], [2, NAME_PORT]]
    assert lldp.usable(bad + good) == good


def test_the_api_takes_a_connection_only_with_switch_and_port():
    assert lldp.api_link([[2, NAME_PORT]]) == {}
    assert lldp.api_link([[1, MAC_CHASSIS], [2, NAME_PORT]]) == {
        'switch_id': '00:11:22:33:44:55', 'port_id': 'Ethernet1/7'}


def test_the_inspection_applier_hands_ironic_only_usable_tlvs():
    from hwbus.consumer.appliers.inspection import usable_lldp

    inventory = {'interfaces': [{'name': 'eth0', 'lldp': [
        [1, MAC_CHASSIS], [2, (bytes([6]) + b'x').hex()]]}]}
    plugin_data = {'errors': [], 'lldp_raw': {'eth0': [[5, 'ff']]}}
    body = usable_lldp(plugin_data, inventory)
    assert body['inventory']['interfaces'][0]['lldp'] == [[1, MAC_CHASSIS]]
    assert body['lldp_raw'] == {'eth0': []}
    assert 'dropped 2 LLDP TLVs' in body['errors'][0]['message']
    assert inventory['interfaces'][0]['lldp'][1]  # the original is kept
