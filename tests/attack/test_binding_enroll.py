"""No credential rewrites another machine's node: the enroll applier.

An attacker gets credentials from the boot server for any MAC (its own
or a victim's) and signs whatever inventory it likes. The binding rule
(hwbus/binding.py) keeps every write on the credential's own node, never
on one its claims point at, never on a node in use; a legitimate boot
right after is applied.
"""

from __future__ import annotations

import time

from tests.attack import nodes
from tests.attack.nodes import set_fields, with_mac

enroll = nodes.stack_fixture('enroll')
clean = nodes.clean


def test_enroll_never_rewrites_a_node_in_use(enroll, figure):
    stack = enroll
    own = stack.mac()
    victim = stack.ironic.enroll(
        'available', ports=(own,), driver_info={'ipmi_address': '10.88.0.2'},
        properties={'cpus': 64, 'memory_mb': 262144},
        extra={'system_serial': 'SER-VICTIM'})
    before = stack.snapshot(victim['uuid'])
    started = time.monotonic()
    attacks = [
        ('its MAC as a second NIC', stack.mac(), with_mac(own),
         'mac-conflict'),
        ('its exact BMC address', stack.mac(),
         set_fields(bmc_address='10.88.0.2'), 'bmc-conflict'),
        ('its serial number', stack.mac(), set_fields(serial='SER-VICTIM'),
         'identity-conflict'),
        ('its own MAC (node available)', own, None, 'node-state'),
    ]
    refused = []
    for _name, mac, change, reason in attacks:
        stack.send(mac, change=change)
        refused.append(stack.dead_reason())
        assert refused[-1] == reason
    # Substrings of its BMC address select nothing: new nodes, not it.
    for claimed in ('88.0.2', '.'):
        issued = stack.send(stack.mac(),
                            change=set_fields(bmc_address=claimed))
        assert stack.settled(issued) == 'applied'
    assert stack.snapshot(victim['uuid']) == before
    next_good = stack.good_boot(started)
    figure(attack='enroll: an available node by MAC/BMC/serial/own MAC',
           attempts=len(attacks) + 2, accepted=0,
           refused=', '.join(refused) + '; BMC substrings: new nodes',
           next_good_s=next_good)


def test_a_second_discovery_as_another_machine_is_quarantined(enroll,
                                                              figure):
    stack = enroll
    mac = stack.mac()
    first = stack.send(mac, change=set_fields(serial='REAL-0002'))
    assert stack.settled(first) == 'applied'
    [node] = [p['node_uuid'] for p in stack.ironic.ports()
              if p['address'] == mac]
    before = stack.snapshot(node)
    started = time.monotonic()
    stack.send(mac, change=set_fields(serial='FAKE-0002'))
    assert stack.dead_reason() == 'identity-conflict'
    assert stack.snapshot(node) == before
    # The same machine again (the serial it had) is welcome.
    again = stack.send(mac, change=set_fields(serial='REAL-0002'))
    assert stack.settled(again) == 'applied'
    next_good = stack.good_boot(started)
    figure(attack='enroll: the same MAC as another machine', attempts=1,
           accepted=0, refused='identity-conflict', next_good_s=next_good)
