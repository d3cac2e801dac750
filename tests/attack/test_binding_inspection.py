"""No credential rewrites another machine's node: the inspection applier.

An attacker gets credentials from the boot server for any MAC (its own
or a victim's) and signs whatever inventory it likes. The binding rule
(hwbus/binding.py) keeps every write on the credential's own node, never
on one its claims point at; a legitimate boot right after is applied.
"""

from __future__ import annotations

import time

from hwbus.localstack.common import wait_for
from tests.attack import nodes
from tests.attack.nodes import set_fields, with_mac

inspection = nodes.stack_fixture('inspection')
clean = nodes.clean


def test_a_spoofed_first_report_is_surfaced_when_the_real_machine_reports(
        inspection, figure):
    stack = inspection
    victim = stack.mac()
    started = time.monotonic()
    stack.send(victim, change=set_fields(serial='FAKE-0001'))
    node = {}
    wait_for(lambda: node.update({p['address']: p['node_uuid'] for p in
                                  stack.ironic.ports()}) or victim in node,
             60, 'the spoofed node')
    wait_for(lambda: stack.ironic.request(
        'GET', f'/v1/nodes/{node[victim]}/inventory').ok, 60,
        'Ironic keeps the spoofed inventory')
    # The real machine boots: the boot server still answers it (the node
    # was enrolled by discovery), and its report is quarantined.
    stack.send(victim, change=set_fields(serial='REAL-0001'))
    assert stack.dead_reason() == 'identity-conflict'
    next_good = stack.good_boot(started)
    assert len([p for p in stack.ironic.ports()
                if p['address'] == victim]) == 1
    figure(attack='spoofed first report, then the real machine', attempts=1,
           accepted=1, refused='the real report: identity-conflict '
           '(quarantined for an operator)', next_good_s=next_good)


def test_a_node_in_inspect_wait_is_found_by_no_claim(inspection, figure):
    stack = inspection
    own = stack.mac()
    victim = stack.ironic.enroll('inspect wait', ports=(own,),
                                 driver_info={'ipmi_address': '10.88.0.2'})
    before = stack.snapshot(victim['uuid'])
    started = time.monotonic()
    reasons = []
    # Its BMC address, from a machine of the attacker's.
    stack.send(stack.mac(), change=set_fields(bmc_address='10.88.0.2'))
    reasons.append(stack.dead_reason())
    # Its port MAC as a second NIC of the attacker's machine.
    stack.send(stack.mac(), change=with_mac(own))
    reasons.append(stack.dead_reason())
    assert reasons == ['bmc-conflict', 'mac-conflict']
    assert stack.snapshot(victim['uuid']) == before
    next_good = stack.good_boot(started)
    # The node's own boot, with a credential bound to it, goes through.
    issued = stack.send(own, node=victim['uuid'],
                        change=set_fields(bmc_address='10.88.0.2'))
    assert stack.settled(issued) == 'applied'
    figure(attack='inspect-wait node by BMC address / second MAC',
           attempts=2, accepted=0, refused=', '.join(reasons),
           next_good_s=next_good)


def test_a_credential_bound_to_one_node_cannot_write_another(inspection,
                                                             figure):
    stack = inspection
    mac_a, mac_b = stack.mac(), stack.mac()
    node_a = stack.ironic.enroll('inspect wait', ports=(mac_a,))
    node_b = stack.ironic.enroll('inspect wait', ports=(mac_b,))
    before = stack.snapshot(node_b['uuid'])
    started = time.monotonic()
    # A's credential, B's MAC as the boot NIC.
    stack.send(mac_b, node=node_a['uuid'])
    assert stack.dead_reason() == 'mac-conflict'
    assert stack.snapshot(node_b['uuid']) == before
    assert stack.ironic.get(f'/v1/nodes/{node_a["uuid"]}')[
        'provision_state'] == 'inspect wait'
    next_good = stack.good_boot(started)
    figure(attack='credential of node A, inventory of node B', attempts=1,
           accepted=0, refused='mac-conflict', next_good_s=next_good)


def test_a_bmc_address_ironic_resolved_selects_nothing(inspection, figure):
    """driver_info holds a form Ironic resolves ("167837955" is 10.1.1.3;
    a host name works the same): Ironic's lookup would match the claimed
    IP, so hwbus compares with the addresses Ironic resolved."""
    stack = inspection
    victim = stack.ironic.enroll('inspect wait', ports=(stack.mac(),),
                                 driver_info={'ipmi_address': '167837955'})
    cached = stack.ironic.get(f'/v1/nodes/{victim["uuid"]}')[
        'driver_internal_info'].get('lookup_bmc_addresses')
    assert '10.1.1.3' in cached
    before = stack.snapshot(victim['uuid'])
    started = time.monotonic()
    stack.send(stack.mac(), change=set_fields(bmc_address='10.1.1.3'))
    assert stack.dead_reason() == 'bmc-conflict'
    assert stack.snapshot(victim['uuid']) == before
    next_good = stack.good_boot(started)
    figure(attack='BMC address as Ironic resolved it', attempts=1,
           accepted=0, refused='bmc-conflict', next_good_s=next_good)
