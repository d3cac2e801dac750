"""The binding rule, against nodes and ports in memory.

The same attacks against a real Ironic are in
tests/functional/test_attacks.py.
"""

import copy
import json
import pathlib
import types

import pytest

from hwbus import binding
from tests.unit import ironicfake

DOC = json.loads((pathlib.Path(__file__).parents[1] / 'fixtures' /
                  'machines' / 'qemu-guest' / 'expected.json').read_text())
MAC = DOC['inventory']['boot']['pxe_interface']


def _inventory(**changes):
    inventory = copy.deepcopy(DOC['inventory'])
    for key, value in changes.items():
        if key in ('serial_number', 'uuid'):
            inventory['system_vendor'][key] = value
        else:
            inventory[key] = value
    return inventory


def _credential(mac=MAC, node=None):
    return types.SimpleNamespace(mac=mac, node=node)


def _resolve(baremetal, credential, inventory=None,
             states=('enroll', 'manageable', 'inspect wait')):
    return binding.Binding(types.SimpleNamespace(baremetal=baremetal),
                           states).resolve(
        credential, inventory or _inventory())


def test_a_new_machine_has_no_target():
    target = _resolve(ironicfake.Baremetal([ironicfake.node('a')]),
                      _credential())
    assert target.node is None


def test_a_node_bound_credential_writes_that_node_only():
    victim = ironicfake.node('b', 'enroll')
    own = ironicfake.node('a', 'manageable')
    baremetal = ironicfake.Baremetal([own, victim], ports={MAC: 'b'})
    with pytest.raises(binding.MacConflict, match='port of node b'):
        _resolve(baremetal, _credential(mac=None, node='a'))
    baremetal.port_owner = {}
    assert _resolve(baremetal, _credential(mac=None, node='a')).node is own


def test_a_second_mac_of_the_inventory_cannot_select_a_node():
    inventory = _inventory()
    other_mac = '52:54:00:99:99:99'
    inventory['interfaces'].append(dict(inventory['interfaces'][0],
                                        name='eth9', mac_address=other_mac))
    baremetal = ironicfake.Baremetal([ironicfake.node('victim',
                                                      'available')],
                                     ports={other_mac: 'victim'})
    with pytest.raises(binding.MacConflict, match='victim'):
        _resolve(baremetal, _credential(), inventory)


def test_many_macs_cost_one_port_listing_not_a_query_each():
    inventory = _inventory()
    template = inventory['interfaces'][0]
    for i in range(200):
        inventory['interfaces'].append(dict(
            template, name=f'eth{i}', mac_address=f'52:54:01:00:00:{i:02x}'))
    baremetal = ironicfake.Baremetal([ironicfake.node('victim')],
                                     ports={'52:54:01:00:00:63': 'victim'})
    with pytest.raises(binding.MacConflict, match='victim'):
        _resolve(baremetal, _credential(), inventory)
    assert baremetal.port_queries <= 2


@pytest.mark.parametrize('driver_info', [
    {'ipmi_address': '10.88.0.2'},
    {'redfish_address': 'https://10.88.0.2:8000/redfish/v1'},
    {'ipmi_address': 'https://10.88.0.2'},
])
def test_a_bmc_address_of_another_node_is_a_conflict(driver_info):
    baremetal = ironicfake.Baremetal([ironicfake.node(
        'victim', 'available', driver_info=driver_info)])
    with pytest.raises(binding.BmcConflict, match='victim'):
        _resolve(baremetal, _credential(),
                 _inventory(bmc_address='10.88.0.2'))


def test_a_bmc_address_ironic_resolved_for_its_lookup_is_a_conflict():
    """A host name (or "167837955") in driver_info: Ironic's own lookup
    matches the IP it resolved, so hwbus compares with that too."""
    victim = ironicfake.node('victim', 'inspect wait', driver_info={
        'ipmi_address': 'bmc7.example.net'})
    victim.driver_internal_info = {'lookup_bmc_addresses': [
        'bmc7.example.net', '10.20.0.7']}
    with pytest.raises(binding.BmcConflict, match='victim'):
        _resolve(ironicfake.Baremetal([victim]), _credential(),
                 _inventory(bmc_address='10.20.0.7'))


@pytest.mark.parametrize('claimed', ['88.0.2', '.', '0.0.0.0',  # noqa: S104
                                     '10.88.0.20'])
def test_bmc_addresses_compare_exactly(claimed):
    baremetal = ironicfake.Baremetal([ironicfake.node(
        'victim', 'available', driver_info={'ipmi_address': '10.88.0.2'})])
    target = _resolve(baremetal, _credential(),
                      _inventory(bmc_address=claimed))
    assert target.node is None


def test_ipv6_bmc_addresses_are_normalised():
    assert binding.normalize_address('[2001:DB8::0001]') == '2001:db8::1'
    assert binding.normalize_address('https://[2001:db8::1]:443/') == \
        '2001:db8::1'
    assert binding.normalize_address('::') is None
    assert binding.normalize_address('BMC-1.example.') == 'bmc-1.example.'


def test_a_copied_serial_number_is_an_identity_conflict():
    baremetal = ironicfake.Baremetal([ironicfake.node(
        'victim', 'active', extra={'system_serial': 'CZ1234'})])
    with pytest.raises(binding.IdentityConflict, match='victim'):
        _resolve(baremetal, _credential(),
                 _inventory(serial_number='CZ1234'))
    # A placeholder serial is nobody's.
    baremetal.by_id['victim'].extra = {'system_serial': 'Default string'}
    assert _resolve(baremetal, _credential(), _inventory(
        serial_number='Default string')).node is None


@pytest.mark.parametrize('state, extra, stored, allowed', [
    ('inspect wait', {}, None, True),
    ('enroll', {binding.DISCOVERED_BY: 'boot1'}, None, True),
    ('enroll', {}, {'plugin_data': {'auto_discovered': True}}, True),
    ('enroll', {}, None, False),          # an operator's node
    ('manageable', {}, None, False),
    ('available', {}, None, False),
    ('active', {}, None, False),
])
def test_a_mac_bound_credential_writes_only_a_node_awaiting_discovery(
        state, extra, stored, allowed):
    node = ironicfake.node('n', state, extra=extra)
    baremetal = ironicfake.Baremetal(
        [node], ports={MAC: 'n'}, inventories={'n': stored} if stored
        else {})
    states = ('enroll', 'manageable', 'inspect wait')
    if allowed:
        assert _resolve(baremetal, _credential(), states=states).node is node
    else:
        with pytest.raises(binding.NodeClosed):
            _resolve(baremetal, _credential(), states=states)


@pytest.mark.parametrize('state, allowed', [
    ('manageable', True), ('inspect wait', True), ('available', False),
    ('active', False), ('deploying', False), ('cleaning', False)])
def test_a_node_bound_credential_needs_an_open_state(state, allowed):
    baremetal = ironicfake.Baremetal([ironicfake.node('a', state)])
    if allowed:
        assert _resolve(baremetal, _credential(mac=None, node='a')).node
    else:
        with pytest.raises(binding.NodeClosed, match=state):
            _resolve(baremetal, _credential(mac=None, node='a'))


def test_a_second_discovery_as_another_machine_is_quarantined():
    recorded = {'serial': 'REAL-1', 'system_uuid': 'abc'}
    node = ironicfake.node('n', 'enroll', extra={
        binding.DISCOVERED_BY: 'boot1', binding.IDENTITY: recorded})
    baremetal = ironicfake.Baremetal([node], ports={MAC: 'n'})
    with pytest.raises(binding.IdentityConflict, match="'REAL-1'"):
        _resolve(baremetal, _credential(), _inventory(serial_number='FAKE'))
    # A field the first report lacked is no conflict.
    assert _resolve(baremetal, _credential(), _inventory(
        serial_number='REAL-1', uuid='ABC')).node is node


def test_identity_is_read_from_ironics_stored_inventory_too():
    stored = {'inventory': _inventory(serial_number='REAL-1'),
              'plugin_data': {'auto_discovered': True}}
    baremetal = ironicfake.Baremetal([ironicfake.node('n', 'inspect wait')],
                                     ports={MAC: 'n'},
                                     inventories={'n': stored})
    with pytest.raises(binding.IdentityConflict):
        _resolve(baremetal, _credential(), _inventory(serial_number='FAKE'))


def test_the_inspection_applier_names_the_target_to_ironic():
    from hwbus.consumer.appliers import Context
    from hwbus.consumer.appliers.inspection import InspectionApplier

    baremetal = ironicfake.Baremetal([ironicfake.node('n', 'inspect wait')],
                                     ports={MAC: 'n'})
    applier = InspectionApplier(
        types.SimpleNamespace(states=['inspect wait']),
        types.SimpleNamespace(baremetal=baremetal))
    credential = types.SimpleNamespace(state='issued', message_id=None,
                                       mac=MAC, node=None)
    context = Context(boot_id='b', message_id='m1', boot=credential,
                      inventory=DOC['inventory'], plugin_data={})
    assert applier.apply(context).node == 'n'
    assert baremetal.posted[0][0] == '/continue_inspection?node_uuid=n'
    # A new machine: Ironic's lookup and auto-discovery decide.
    baremetal.port_owner = {}
    applier.apply(context)
    assert baremetal.posted[1][0] == '/continue_inspection'
