"""The pipeline's order and outcomes, with fakes for store, broker, Ironic.

The real servers are in tests/functional/test_consumer.py; here every
branch runs in milliseconds.
"""

import datetime
import json
import pathlib
import threading
import types

import pytest

from hwbus import envelope, ironic, keys
from hwbus.consumer.appliers import Applied
from hwbus.consumer.observers import Archive
from hwbus.consumer.outcome import INTERNAL, Outcome
from hwbus.consumer.pipeline import APPLIED, DEAD, RETRY, Pipeline
from hwbus.consumer.workers import Workers
from hwbus.credentials import UnknownCredential
from hwbus.errors import PermanentError
from hwbus.ironic import IronicUnavailable, NodeNotFound
from hwbus.store import StoreUnavailable
from hwbus.store.api import utcnow

DOC = json.loads((pathlib.Path(__file__).parents[1] / 'fixtures' /
                  'machines' / 'qemu-guest' / 'expected.json').read_text())
USER = 'boot-0123456789abcdef0123'


class World:
    """Credentials, store and appliers that record what happened, in order."""

    def __init__(self, applier_error=None, mac='52:54:00:12:34:56',
                 state='issued', expires_in=3600):
        seed, public = keys.new_keypair()
        self.key = keys.private_key(seed)
        self.events = []
        self.credential = types.SimpleNamespace(
            boot_id='boot1', username=USER, public_key=public, mac=mac,
            node=None, state=state, message_id=None,
            expires_at=utcnow() + datetime.timedelta(seconds=expires_in))
        self.applier_error = applier_error
        world = self

        class Store:
            def transition(self, boot_id, to, allowed, **kw):
                world.events.append(f'state {to.value}')
                return True

            def touch(self, boot_id, message_id):
                world.events.append('touch')

            def first_after_expiry(self, boot_id, message_id, again=False):
                return True

            def archive(self, record):
                world.events.append('archive')
                return True

            def inventories(self, **kw):
                return []

        class Credentials:
            store = Store()

            def lookup(self, user):
                if user != USER:
                    raise UnknownCredential(f'no credential for {user}')
                return world.credential

            def withdraw(self, credential, to):
                world.events.append(f'withdraw {to.value}')
                return True

            def receive(self, credential, message_id, again=False,
                        replay=False):
                world.events.append('revoke')
                if credential.message_id not in (None, message_id) or (
                        credential.message_id is not None and not again):
                    return False
                credential.message_id = message_id
                return True

        class Applier:
            name = 'fake'

            def apply(self, context):
                world.events.append('apply')
                if world.applier_error:
                    raise world.applier_error
                return Applied(node='node-1')

        self.pipeline = Pipeline(Credentials(), [Applier()],
                                 observers=[Archive(Credentials.store)])

    def seal(self, **kwargs):
        args = dict(boot_id='boot1', user=USER, key=self.key,
                    inventory=DOC['inventory'],
                    plugin_data=DOC['plugin_data'])
        args.update(kwargs)
        return envelope.seal(**args)

    def process(self, sealed, redelivered=False):
        return self.pipeline.process(
            sealed.body, dict(sealed.properties, redelivered=redelivered))


def test_verify_then_revoke_then_apply_then_applied_then_archive():
    world = World()
    outcome = world.process(world.seal())
    assert outcome.kind == APPLIED and outcome.node == 'node-1'
    assert world.events == ['revoke', 'apply', 'state applied', 'archive']


def test_a_redelivery_is_applied_again_idempotently():
    world = World()
    sealed = world.seal()
    assert world.process(sealed).kind == APPLIED
    assert world.process(sealed, redelivered=True).kind == APPLIED


def test_a_second_publish_of_the_same_message_is_refused():
    """The broker did not redeliver it: the sender published it again
    (or another body under its id); the first one stays the applied one,
    and the copy's body is not kept."""
    for state in ('received', 'applied'):
        world = World(state=state)
        sealed = world.seal()
        world.credential.message_id = sealed.message_id
        world.credential.changed_at = utcnow()
        outcome = world.process(sealed)
        assert (outcome.kind, outcome.reason) == (DEAD, 'replayed-boot')
        assert outcome.verified and not outcome.keep_body
        assert 'apply' not in world.events


def test_a_refused_gate_message_lets_no_copy_through_even_redelivered():
    """Its boot is refused: copies queued under its id come back marked
    redelivered after a lost connection and are refused all the same,
    bodies not kept; an operator's replay still applies it."""
    world = World()
    world.applier_error = ironic.NodeNotFound('no node yet')
    sealed = world.seal()
    outcome = world.process(sealed)
    assert (outcome.reason, outcome.keep_body) == ('node-not-found', True)
    assert 'state refused' in world.events
    world.credential.state = 'refused'
    again = world.process(sealed, redelivered=True)
    assert (again.kind, again.reason, again.keep_body) == (
        DEAD, 'replayed-boot', False)
    world.applier_error = None  # the operator fixed the cause
    replay = world.pipeline.process(sealed.body, sealed.properties,
                                    replay=True)
    assert replay.kind == APPLIED


def test_a_refusal_the_store_did_not_record_is_retried_not_dead_lettered():
    """Dead-lettered with its boot still ``received`` under its id, a
    redelivered copy (or another body under that id) would take the boot
    over after the apply lease and be applied. So the message stays with
    its worker (transient) until the refusal is recorded."""
    world = World()
    world.applier_error = ironic.NodeNotFound('no node yet')
    store = world.pipeline.store
    recorded = store.transition

    def down(boot_id, to, allowed, **kw):
        if to.value == 'refused':
            raise StoreUnavailable('the sqlite store is unavailable')
        return recorded(boot_id, to, allowed, **kw)

    store.transition = down
    sealed = world.seal()
    outcome = world.process(sealed)
    assert (outcome.kind, outcome.reason) == (RETRY, 'store-unavailable')
    assert outcome.claimed and 'node-not-found' in outcome.detail
    assert not any(e.startswith('withdraw') for e in world.events)
    store.transition = recorded  # the store is back: the worker's retry
    again = world.pipeline.process(sealed.body, dict(sealed.properties),
                                   owned=True)
    assert (again.kind, again.reason, again.keep_body) == (
        DEAD, 'node-not-found', True)
    assert 'state refused' in world.events


def test_an_internal_error_is_dead_lettered_only_once_its_gate_is_closed():
    """The workers' own refusal (internal errors, attempts spent) waits
    for the store as well."""
    closed = []

    class Pipeline:
        store = None

        def process(self, body, properties, owned):
            return Outcome(RETRY, INTERNAL, 'bug', claimed=True,
                           boot_id='boot1', message_id='m1')

        def refused(self, properties, outcome):
            closed.append(len(closed) >= 2)  # the store is back at the 3rd
            return closed[-1]

    workers = Workers(Pipeline(), 1, threading.Event(), max_backoff=0.01,
                      internal_attempts=2)
    try:
        outcome = workers.submit(b'', {}).result(timeout=10)
    finally:
        workers.shutdown()
    assert (outcome.kind, outcome.reason) == (DEAD, INTERNAL)
    assert closed == [False, False, True]


def test_only_the_message_that_passed_the_gate_keeps_its_body():
    world = World()
    world.applier_error = ironic.NodeNotFound('gone')
    outcome = world.process(world.seal())
    assert (outcome.kind, outcome.keep_body) == (DEAD, True)
    assert world.process(world.seal()).keep_body is False


def test_a_redelivery_after_the_apply_acks_without_applying_twice():
    """The ack was lost with a broker node: the boot is already applied."""
    world = World(state='applied')
    sealed = world.seal()
    world.credential.message_id = sealed.message_id
    outcome = world.process(sealed, redelivered=True)
    assert (outcome.kind, outcome.applied.matched_by) == (APPLIED,
                                                          'redelivery')
    assert world.events == []


def test_an_operator_replay_applies_again_whatever_the_state():
    for state in ('applied', 'received'):
        world = World(state=state)
        sealed = world.seal()
        world.credential.message_id = sealed.message_id
        world.credential.changed_at = utcnow()
        outcome = world.pipeline.process(sealed.body, sealed.properties,
                                         replay=True)
        assert outcome.kind == APPLIED and 'apply' in world.events


def test_a_redelivery_waits_while_another_worker_may_be_applying():
    world = World(state='received')
    sealed = world.seal()
    world.credential.message_id = sealed.message_id
    world.credential.changed_at = utcnow()
    outcome = world.process(sealed, redelivered=True)
    assert (outcome.kind, outcome.reason) == (RETRY, 'in-progress')
    assert 'apply' not in world.events
    # The worker that received it retries as the owner...
    owned = world.pipeline.process(sealed.body, sealed.properties, True)
    assert owned.kind == APPLIED and owned.claimed
    # ...and a silent owner's claim lapses after the lease.
    world.credential.changed_at = utcnow() - datetime.timedelta(hours=1)
    assert world.process(sealed, redelivered=True).kind == APPLIED


def test_a_redelivery_whose_first_attempt_reached_ironic():
    """The node left "inspect wait" because the first delivery reached
    Ironic: acknowledged as applied, not posted again; an operator's
    replay of the same message must reach Ironic and fails instead."""
    from hwbus.consumer.appliers import Context
    from hwbus.consumer.appliers.inspection import InspectionApplier
    from tests.unit import ironicfake

    mac = DOC['inventory']['boot']['pxe_interface']
    baremetal = ironicfake.Baremetal(
        [ironicfake.node('node-9', 'manageable')], ports={mac: 'node-9'})
    applier = InspectionApplier(
        types.SimpleNamespace(states=['inspect wait']),
        types.SimpleNamespace(baremetal=baremetal))
    credential = types.SimpleNamespace(state='received', message_id='m1',
                                       mac=mac, node=None)
    context = Context(boot_id='b', message_id='m1', boot=credential,
                      inventory=DOC['inventory'], plugin_data={})
    applied = applier.apply(context)
    assert (applied.node, applied.matched_by) == ('node-9', 'redelivery')
    assert baremetal.posted == []
    context.replay = True
    with pytest.raises(PermanentError, match='provision state'):
        applier.apply(context)
    credential.state = 'issued'  # a first delivery: the node is closed
    context.replay = False
    with pytest.raises(PermanentError, match='provision state'):
        applier.apply(context)


def test_a_second_message_for_the_boot_is_refused_before_applying():
    world = World()
    world.process(world.seal())
    world.events.clear()
    outcome = world.process(world.seal())
    assert (outcome.kind, outcome.reason) == (DEAD, 'replayed-boot')
    assert 'apply' not in world.events


@pytest.mark.parametrize('error, kind, reason', [
    (IronicUnavailable('503'), RETRY, 'ironic-unavailable'),
    (NodeNotFound('404'), DEAD, 'node-not-found'),
    (RuntimeError('bug'), RETRY, 'internal-error'),
])
def test_applier_failures_fall_in_their_family(error, kind, reason):
    world = World(applier_error=error)
    outcome = world.process(world.seal())
    assert (outcome.kind, outcome.reason) == (kind, reason)
    assert 'state applied' not in world.events


def test_a_bad_signature_applies_nothing_and_ends_the_senders_credential():
    """The broker vouches for user_id: whoever sent this holds the
    credential, and a credential is good for one message."""
    world = World()
    other = World()
    outcome = world.process(other.seal())
    assert (outcome.kind, outcome.reason) == (DEAD, 'bad-signature')
    assert world.events == ['withdraw revoked']


def test_mac_binding_and_error_reports_and_schema():
    world = World(mac='52:54:00:99:99:99')
    assert world.process(world.seal()).reason == 'mac-mismatch'
    world = World()
    report = world.seal(inventory={}, plugin_data={'errors': []},
                        error={'stage': 'collect', 'message': 'boom'})
    outcome = world.process(report)
    assert outcome.reason == 'ramdisk-error' and 'boom' in outcome.detail
    world = World()
    broken = world.seal(inventory=dict(DOC['inventory'], cpu='fast'))
    assert world.process(broken).reason == 'schema'
    assert 'apply' not in world.events


def test_revoked_and_expired_credentials():
    world = World(state='revoked')
    assert world.process(world.seal()).reason == 'revoked'
    # Signed after the expiry: refused.
    world = World(expires_in=-60)
    assert world.process(world.seal()).reason == 'expired'
    # Claiming to be collected before the expiry changes nothing: time is
    # the consumer's. The credential ends with the refusal.
    world = World(expires_in=-60)
    sealed = world.seal(now=(utcnow() - datetime.timedelta(seconds=120))
                        .replace(tzinfo=datetime.UTC).timestamp())
    assert world.process(sealed).reason == 'expired'
    assert world.events[-1] == 'withdraw expired'
    # An operator may still replay it (consumed after a long outage).
    outcome = world.pipeline.process(sealed.body, sealed.properties,
                                     replay=True)
    assert outcome.kind == APPLIED
