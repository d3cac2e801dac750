"""Ironic's own inspection takes hwbus's inventory unchanged.

The real standalone Ironic API with auto-discovery on receives this very
machine's document, collected by the real hwbus-collect, through
POST /v1/continue_inspection, and enrols a node from it.
"""

import json
import pathlib
import subprocess
import sys

import pytest

from hwbus.localstack.common import wait_for

MACHINES = pathlib.Path(__file__).parents[1] / 'fixtures' / 'machines'


def _collect(*args):
    result = subprocess.run(
        [sys.executable, '-m', 'hwbus.cmd.collect', *args],
        capture_output=True, text=True, timeout=120, check=True)
    return json.loads(result.stdout)


def _enrolled(ironic, macs):
    """The UUID of the node that owns all these MACs, once it has them."""
    ports = [p for p in ironic.ports() if p['address'] in macs]
    if len(ports) != len(macs):
        return None
    (node_uuid,) = {p['node_uuid'] for p in ports}
    return node_uuid


def _stored(ironic, node_uuid):
    """The inventory Ironic stored.

    Ironic stores it after every hook has run and saved the node (each
    hook saves on its own, so properties appear one by one before it).
    """
    found = {}
    wait_for(lambda: found.update(ironic.get(
        f'/v1/nodes/{node_uuid}/inventory')) or found, 60, 'inventory')
    return found


def _expected_ports(inventory):
    """Ironic's default ([inspector] add_ports = pxe): a port for the boot
    NIC when the inventory names one, else for every interface."""
    pxe = inventory['boot']['pxe_interface']
    if pxe:
        return {pxe}
    return {i['mac_address'] for i in inventory['interfaces']}


def _post_and_wait(ironic, document):
    body = dict(document['plugin_data'], inventory=document['inventory'])
    response = ironic.post('/v1/continue_inspection', body)
    assert response.status_code == 202, response.text
    macs = _expected_ports(document['inventory'])
    found = {}
    wait_for(lambda: found.update(node=_enrolled(ironic, macs))
             or found['node'], 60, 'enrolled node')
    _stored(ironic, found['node'])
    return (response.json()['node']['uuid'],
            ironic.get(f'/v1/nodes/{found["node"]}'))


def test_this_machine_is_enrolled_with_its_ports_arch_and_inventory(
        clean_ironic):
    ironic = clean_ironic
    document = _collect()
    node_uuid, node = _post_and_wait(ironic, document)
    inventory = document['inventory']
    assert node['uuid'] == node_uuid
    assert node['provision_state'] == 'enroll'
    props = node['properties']
    assert props['cpu_arch'] == inventory['cpu']['architecture']
    assert props['memory_mb'] == inventory['memory']['physical_mb']
    ports = {p['address'] for p in ironic.ports()
             if p['node_uuid'] == node_uuid}
    assert ports == _expected_ports(inventory)
    stored = _stored(ironic, node_uuid)
    assert stored['inventory'] == inventory
    assert stored['plugin_data']['pci_devices'] == \
        document['plugin_data']['pci_devices']


@pytest.mark.parametrize('machine', sorted(
    p.name for p in MACHINES.iterdir() if p.is_dir()))
def test_recorded_machines_are_enrolled_too(clean_ironic, machine):
    ironic = clean_ironic
    document = _collect('--root', str(MACHINES / machine))
    node_uuid, node = _post_and_wait(ironic, document)
    inventory = document['inventory']
    root_disk = document['plugin_data']['root_disk']
    props = node['properties']
    assert props['cpu_arch'] == inventory['cpu']['architecture']
    assert props['memory_mb'] == inventory['memory']['physical_mb']
    ports = {p['address'] for p in ironic.ports()
             if p['node_uuid'] == node_uuid}
    assert ports == _expected_ports(inventory)
    if root_disk:
        # Ironic keeps 1 GiB for partitioning ([inspector]
        # disk_partitioning_spacing, on by default).
        assert props['local_gb'] == root_disk['size'] // 2**30 - 1
    stored = _stored(ironic, node_uuid)
    assert stored['inventory'] == inventory
