"""Both appliers leave the same node: Ironic's inspection and hwbus's enroll.

The ``inspection`` applier lets Ironic's hooks compute a node's
properties and ports; the ``enroll`` applier computes them itself. On
every recorded machine, and with LLDP as switches send it, the two must
agree: each document goes through the real Ironic's continue_inspection,
then through the enroll applier (against the same Ironic), and the nodes
are compared.
"""

from __future__ import annotations

import copy
import json
import pathlib
import types

import pytest

from hwbus import lldp
from hwbus.consumer.appliers import Context, enroll
from hwbus.consumer.appliers.inspection import usable_lldp
from hwbus.consumer.outcome import Boot
from hwbus.localstack.common import wait_for
from tests.unit.test_lldp import CASES

MACHINES = pathlib.Path(__file__).parents[1] / 'fixtures' / 'machines'
RECORDED = sorted(p.name for p in MACHINES.iterdir()
                  if (p / 'expected.json').exists())


def _documents():
    for name in RECORDED:
        yield name, json.loads((MACHINES / name / 'expected.json')
                               .read_text())
    base = json.loads((MACHINES / 'qemu-guest' / 'expected.json')
                      .read_text())
    for case, (tlvs, _) in sorted(CASES.items()):
        doc = copy.deepcopy(base)
        doc['inventory']['interfaces'][0]['lldp'] = tlvs
        yield f'qemu-guest, LLDP: {case}', doc


def _capabilities(text: str | None) -> dict[str, str]:
    return dict(c.split(':', 1) for c in (text or '').split(',') if ':' in c)


def _seen(ironic, node_uuid: str) -> dict:
    node = ironic.get(f'/v1/nodes/{node_uuid}')
    props = dict(node['properties'])
    props['capabilities'] = _capabilities(props.get('capabilities'))
    ports = {}
    for port in ironic._all(f'/v1/ports?node_uuid={node_uuid}'
                            f'&fields=address,pxe_enabled,'
                            f'local_link_connection', 'ports'):
        ports[port['address']] = (port['pxe_enabled'],
                                  port['local_link_connection'])
    return {'properties': props, 'ports': ports}


def _connection(ironic):
    import openstack
    from keystoneauth1 import noauth, session

    return openstack.connection.Connection(
        session=session.Session(auth=noauth.NoAuth()),
        baremetal_endpoint_override=ironic.url,
        baremetal_api_version='1.87')


def _by_inspection(ironic, doc) -> dict:
    # As the inspection applier hands it over (only usable LLDP TLVs).
    body = usable_lldp(doc['plugin_data'], doc['inventory'])
    response = ironic.post('/v1/continue_inspection', body)
    assert response.status_code == 202, response.text
    uuid = response.json()['node']['uuid']
    # The hooks run after the answer: the stored inventory comes last.
    wait_for(lambda: ironic.request(
        'GET', f'/v1/nodes/{uuid}/inventory').ok, 60, 'inspection done')
    return _seen(ironic, uuid)


def _by_enroll(ironic, doc) -> dict:
    settings = types.SimpleNamespace(
        driver='fake-hardware', create_nodes=True, states=['enroll'],
        resource_class=None, conductor_group=None, traits=[],
        all_ports=False, name_template='{boot_id}', manage=False,
        manage_timeout=0)
    applier = enroll.EnrollApplier(settings, _connection(ironic))
    boot_mac = doc['inventory']['boot']['pxe_interface']
    context = Context(boot_id='agreement', message_id='m1',
                      boot=Boot('agreement', boot_mac, None, 'received',
                                'm0'),
                      inventory=doc['inventory'],
                      plugin_data=doc['plugin_data'])
    return _seen(ironic, applier.apply(context).node)


@pytest.mark.parametrize('name, doc', list(_documents()),
                         ids=[n for n, _ in _documents()])
def test_enroll_sets_what_ironic_inspection_sets(clean_ironic, name, doc):
    """Equal nodes, but for one thing the API does not allow: a partial
    local_link_connection (Ironic's hook writes it to its database
    directly; a port created through the API needs switch_id and
    port_id, so the enroll applier sets none then)."""
    inspected = _by_inspection(clean_ironic, doc)
    clean_ironic.delete_all_nodes()
    enrolled = _by_enroll(clean_ironic, doc)
    for mac, (pxe, link) in inspected['ports'].items():
        if not all(k in link for k in lldp.API_REQUIRED):
            inspected['ports'][mac] = (pxe, {})
    assert enrolled == inspected
    # And what Ironic set is what hwbus.lldp says it sets.
    for interface in doc['inventory']['interfaces']:
        if interface.get('lldp') and interface['mac_address'] in \
                inspected['ports']:
            assert inspected['ports'][interface['mac_address']][1] == \
                lldp.api_link(interface['lldp'])
