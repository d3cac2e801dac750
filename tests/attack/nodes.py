"""A consumer and a real Ironic for the binding attacks, and the changes
an attacker makes to an inventory."""

from __future__ import annotations

import copy
import itertools
import time

import pytest

from hwbus.localstack.common import wait_for
from hwbus.localstack.consumer import ConsumerProcess, write_config
from hwbus.store import Store
from tests.functional import boots
from tests.functional.conftest import CONSUMER_PASSWORD, credentials_for

QUEUE, DEAD = 'hwbus.inventory', 'hwbus.inventory.dead'
NUMBERS = itertools.count(5000)
ENROLL = '\n[enroll]\ndriver = fake-hardware\n'


class Stack:
    def __init__(self, broker, ironic, tmp, appliers: str) -> None:
        self.broker, self.ironic = broker, ironic
        url = f'sqlite:///{tmp}/hwbus.sqlite'
        self.store = Store(url)
        self.credentials = credentials_for(broker, self.store)
        config = write_config(tmp / 'hwbus.conf', broker, url, ironic.url,
                              CONSUMER_PASSWORD, appliers=appliers,
                              extra=ENROLL if appliers == 'enroll' else '')
        self.consumer = ConsumerProcess(config, tmp / 'consumer.log')

    @classmethod
    def started(cls, broker, ironic, tmp_path_factory, appliers: str):
        """Empty queues and a consumer running with these appliers."""
        stack = cls(broker, ironic, tmp_path_factory.mktemp(appliers),
                    appliers)
        boots.get_all(broker, QUEUE)
        boots.get_all(broker, DEAD)
        stack.consumer.start()
        return stack

    def mac(self) -> str:
        return boots.mac_for(next(NUMBERS))

    def send(self, mac: str | None = None, node: str | None = None,
             change=None, machine: str = 'qemu-guest'):
        """Publish a boot's inventory for ``mac`` (its boot NIC), changed
        by change(inventory); the credential as the boot server (a MAC)
        or an operator (a node) issues it."""
        issued = self.credentials.issue(
            mac=mac, node=node, after='none',
            issued_by='manage' if node else 'bootserver')
        doc = boots.document(machine, mac)
        inventory = copy.deepcopy(doc['inventory'])
        if change:
            change(inventory)
        from hwbus import envelope, keys
        from hwbus.ramdisk import publisher

        sealed = envelope.seal(boot_id=issued.params.boot_id,
                               user=issued.params.user,
                               key=keys.private_key(issued.params.key),
                               inventory=inventory,
                               plugin_data=doc['plugin_data'])
        publisher.publish(sealed, issued.params, deadline=30)
        return issued

    def settled(self, issued, timeout: float = 60) -> str:
        """'applied', or the reason it was dead-lettered."""
        got: list = []

        def done() -> bool:
            got.extend(boots.get_all(self.broker, DEAD))
            return bool(got) or self.store.get(
                issued.credential.boot_id).state == 'applied'

        wait_for(done, timeout, 'the message applied or dead-lettered')
        return got[0][0].headers['x-hwbus-dead-reason'] if got else 'applied'

    def dead_reason(self, timeout: float = 60) -> str:
        got: list = []
        wait_for(lambda: got.extend(boots.get_all(self.broker, DEAD)) or got,
                 timeout, 'a dead letter')
        assert len(got) == 1, [p.headers for p, _ in got]
        return got[0][0].headers['x-hwbus-dead-reason']

    def good_boot(self, since: float) -> float:
        issued = self.send(self.mac())
        wait_for(lambda: self.store.get(issued.credential.boot_id).state ==
                 'applied', 120, 'the legitimate boot applied')
        return round(time.monotonic() - since, 2)

    def snapshot(self, node: str) -> dict:
        """What an attack must not change: the node and its ports."""
        data = self.ironic.get(f'/v1/nodes/{node}')
        ports = sorted(p['address'] for p in self.ironic.ports()
                       if p['node_uuid'] == node)
        return {k: data[k] for k in ('properties', 'extra', 'driver_info',
                                     'provision_state', 'updated_at')} | {
            'ports': ports}


def with_mac(mac: str):
    """The inventory gains a second NIC with this MAC."""
    def change(inventory):
        extra = dict(inventory['interfaces'][0], name='eth9',
                     mac_address=mac)
        inventory['interfaces'].append(extra)
    return change


def set_fields(**fields):
    """Top-level inventory fields (and ``serial``) set to these values."""
    def change(inventory):
        for key, value in fields.items():
            if key == 'serial':
                inventory['system_vendor']['serial_number'] = value
            else:
                inventory[key] = value
    return change


def stack_fixture(appliers: str):
    """A module's consumer with these appliers (one at a time may run:
    they share the queue)."""

    @pytest.fixture(scope='module')
    def stack(broker, ironic, tmp_path_factory):
        started = Stack.started(broker, ironic, tmp_path_factory, appliers)
        yield started
        started.consumer.stop()

    return stack


@pytest.fixture(autouse=True)
def clean(ironic, broker):
    """No nodes in Ironic and no dead letters when a test starts."""
    ironic.delete_all_nodes()
    boots.get_all(broker, DEAD)
