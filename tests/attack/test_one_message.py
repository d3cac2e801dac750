"""A credential is good for one message: copies, reused message ids and
floods past the first message apply nothing, stall nothing and keep no
bodies.

The attacker holds a credential as the boot server hands them out (its
key signs anything) and publishes with its own client, faster than the
consumer deletes the user. Only the broker's own word tells a
redelivery (``redelivered``) from a second publish; only the message
that passed the credential's gate (or the first after its expiry) may
leave its body in the dead-letter queue.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pika

from hwbus import envelope, keys
from hwbus.localstack.common import wait_for
from hwbus.localstack.consumer import BIN
from tests.attack import test_intake
from tests.attack.test_intake import DEAD, QUEUE
from tests.functional import boots

# The same stack as test_intake's: one consumer for the module, a clean
# slate (no nodes, no dead letters) per test.
module_stack = test_intake.module_stack
stack = test_intake.stack


def _publish(issued, messages: list[tuple[bytes, dict]]) -> int:
    """Publish each (body, properties) back to back on one connection with
    confirms; the number the broker confirmed before the user went."""
    connection = pika.BlockingConnection(pika.URLParameters(
        issued.params.connection_urls()[0]))
    channel = connection.channel()
    channel.confirm_delivery()
    confirmed = 0
    try:
        for body, props in messages:
            channel.basic_publish('hwbus.inventory',
                                  f'inventory.{issued.params.user}', body,
                                  pika.BasicProperties(**props))
            confirmed += 1
    except pika.exceptions.AMQPError:
        pass  # the consumer deleted the user: its connection is closed
    finally:
        if connection.is_open:
            connection.close()
    return confirmed


def _sealed(issued, error=None, nonce_pad: str = '') -> envelope.Sealed:
    doc = boots.document('qemu-guest', issued.credential.mac)
    plugin_data = dict(doc['plugin_data'])
    if nonce_pad:
        plugin_data['pad'] = nonce_pad
    return envelope.seal(boot_id=issued.params.boot_id,
                         user=issued.params.user,
                         key=keys.private_key(issued.params.key),
                         inventory=doc['inventory'], plugin_data=plugin_data,
                         error=error)


def _nodes_with(ironic, mac: str) -> int:
    """Nodes whose port or discovery data names ``mac``."""
    ports = {p['node_uuid'] for p in ironic.ports()
             if p['address'] == mac}
    return len(ports)


def _retries(stack, reason: str) -> float:
    return stack.consumer.counter('retry', reason)


def _settled(stack, count: int) -> list[tuple]:
    wait_for(lambda: boots.depth(stack.broker, QUEUE) == 0, 120, 'drained')
    dead = stack.dead(count, timeout=120)
    return dead


def test_copies_of_one_message_are_applied_once(stack, figure):
    """The same bytes published four times back to back: the first copy
    the gate sees is applied, the others are refused at once (the broker
    did not redeliver them), and their bodies are not kept."""
    issued = stack.issue()
    sealed = _sealed(issued)
    props = dict(sealed.properties)
    confirmed = _publish(issued, [(sealed.body, props)] * 4)
    wait_for(lambda: stack.store.get(issued.credential.boot_id).state ==
             'applied', 120, 'the first copy applied')
    dead = _settled(stack, confirmed - 1)
    assert len(dead) == confirmed - 1 >= 1
    assert {p.headers['x-hwbus-dead-reason'] for p, _ in dead} == \
        {'replayed-boot'}
    assert all(b == b'' and p.headers['x-hwbus-body-size'] ==
               len(sealed.body) for p, b in dead)
    assert _nodes_with(stack.ironic, issued.credential.mac) == 1
    next_good = stack.good_boot(time.monotonic())
    figure(attack='the same message published 4 times', attempts=4,
           accepted=1, refused=f'{len(dead)} replayed-boot, bodies not '
           f'kept; one node', next_good_s=next_good)


def test_a_reused_message_id_neither_stalls_intake_nor_applies(stack,
                                                               figure):
    """A ramdisk error report, then twelve other bodies under the same
    message id, back to back. Exactly one of the thirteen passes the
    boot's gate (the workers take several at once: on a loaded machine a
    copy may get there first, and is then the boot's one message); every
    other one is refused at once. None waits for the apply lease, none is
    applied after another passed, and only the gate's message keeps its
    body."""
    busy_before = _retries(stack, 'in-progress')
    issued = stack.issue()
    boot_id = issued.credential.boot_id
    first = _sealed(issued, error={'stage': 'collect', 'message': 'x'})
    copies = []
    for n in range(12):
        other = _sealed(issued, nonce_pad=f'copy {n}')
        props = dict(other.properties, message_id=first.message_id)
        copies.append((other.body, props))
    confirmed = _publish(issued, [(first.body, dict(first.properties)),
                                  *copies])
    wait_for(lambda: stack.store.get(boot_id).state in ('refused',
                                                        'applied'),
             120, 'the gate message settled')
    applied = stack.store.get(boot_id).state == 'applied'
    dead = _settled(stack, confirmed - applied)
    reasons = sorted(p.headers['x-hwbus-dead-reason'] for p, _ in dead)
    passed = [p.headers['x-hwbus-dead-reason'] for p, b in dead if b]
    if applied:   # a copy won the gate: the error report is a copy now
        assert passed == [] and 'ramdisk-error' not in reasons
        assert _nodes_with(stack.ironic, issued.credential.mac) == 1
    else:         # the error report won it, and was refused
        assert passed == ['ramdisk-error']
        assert reasons.count('ramdisk-error') == 1
        assert _nodes_with(stack.ironic, issued.credential.mac) == 0
    assert set(reasons) - {'ramdisk-error'} <= {'replayed-boot', 'revoked'}
    # One more may have been taken without its confirm reaching us.
    assert confirmed - applied <= len(dead) <= len(copies) + 1 - applied
    assert _retries(stack, 'in-progress') == busy_before
    next_good = stack.good_boot(time.monotonic())
    assert _retries(stack, 'in-progress') == busy_before
    figure(attack='12 bodies reusing the first message\'s id', attempts=13,
           accepted=int(applied), refused=f'{len(dead)} dead letters, '
           f'{len(passed)} body kept, no in-progress wait',
           next_good_s=next_good)


def test_a_flood_past_the_first_message_keeps_no_bodies(stack, figure):
    """Distinct, validly signed bodies of 200 KiB after the first message,
    as fast as the broker takes them: every one is refused, and the
    dead-letter queue keeps their digests, not their bytes."""
    issued = stack.issue()
    first = _sealed(issued)
    flood = []
    for n in range(60):
        other = _sealed(issued, nonce_pad=os.urandom(100 * 1024).hex()
                        + str(n))
        flood.append((other.body, dict(other.properties)))
    confirmed = _publish(issued, [(first.body, dict(first.properties)),
                                  *flood])
    wait_for(lambda: stack.store.get(issued.credential.boot_id).state ==
             'applied', 120, 'the first message applied')
    dead = _settled(stack, confirmed - 1) if confirmed > 1 else []
    wait_for(lambda: dead.extend(boots.get_all(stack.broker, DEAD)) or
             boots.depth(stack.broker, QUEUE) == 0, 60, 'all taken')
    # One more may have been taken without its confirm reaching us.
    assert confirmed - 1 <= len(dead) <= len(flood)
    assert {p.headers['x-hwbus-dead-reason'] for p, _ in dead} <= \
        {'replayed-boot', 'revoked'}
    assert sum(len(b) for _, b in dead) == 0
    next_good = stack.good_boot(time.monotonic())
    figure(attack='signed bodies past the first message', attempts=61,
           accepted=1, refused=f'{len(dead)} queued before the user went; '
           f'0 bytes of body kept', next_good_s=next_good)


def test_a_body_nested_to_the_parsers_edge_is_malformed_once(stack, figure):
    """At one depth (near the interpreter's recursion limit) the parser
    succeeds and re-encoding recursed too deep: an internal error,
    retried, its credential never ended. Every depth around it is now
    ``malformed`` on the first delivery and ends its credential."""
    depths = range(960, 1001)
    issued = []
    for depth in depths:
        one = stack.issue()
        doc = boots.document('qemu-guest', one.credential.mac)
        text = envelope.canonical({
            'version': 1, 'boot_id': one.params.boot_id,
            'collected_at': '2026-01-01T00:00:00Z', 'nonce': 'n',
            'inventory': doc['inventory'], 'plugin_data': {'x': 0}})
        nested = '[' * depth + ']' * depth
        body = text.replace(b'{"x":0}', b'{"x":' + nested.encode() + b'}')
        boots.publish_raw(one, body, boots.signed_properties(one, body))
        issued.append(one)
    dead = _settled(stack, len(depths))
    assert {p.headers['x-hwbus-dead-reason'] for p, _ in dead} == \
        {'malformed'}
    assert stack.consumer.counter('retry', 'internal-error') == 0
    wait_for(lambda: all(stack.store.get(i.credential.boot_id)
                         .user_deleted_at for i in issued), 60,
             'every sender ended')
    next_good = stack.good_boot(time.monotonic())
    figure(attack=f'bodies nested {depths[0]}..{depths[-1]} deep',
           attempts=len(depths), accepted=0,
           refused='malformed, first delivery, credentials ended',
           next_good_s=next_good)


# The module consumer's workers ([consumer] workers of the test profile).
WORKERS = 4


def _restart(consumer) -> None:
    """Start the consumer again and wait until the new process consumes
    (the log, appended to, already says so for the one before)."""
    seen = consumer.log.read_text(errors='replace').count('; consuming ')
    consumer.start()
    wait_for(lambda: consumer.log.read_text(errors='replace')
             .count('; consuming ') > seen, 60, 'hwbus-consumer restarted',
             consumer.log, consumer.proc)


def _queue(stack, name: str = QUEUE) -> tuple[int, int]:
    """(ready, unacknowledged) of a queue, from the management API."""
    queue = stack.credentials.management.queue(name) or {}
    return queue.get('messages_ready', -1), \
        queue.get('messages_unacknowledged', -1)


def _redelivered(stack) -> int:
    """Deliveries the broker marked redelivered on the inventory queue
    (the management API's count, since it started)."""
    queue = stack.credentials.management.queue(QUEUE) or {}
    return (queue.get('message_stats') or {}).get('redeliver', 0)


def _manage(stack, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / 'hwbus-manage'), '--config-file',
                           str(stack.config), *args], capture_output=True,
                          text=True, timeout=120)


def _dead_shown(stack, message_id: str) -> list[dict]:
    """The operator's view of the dead letters of one message id (they
    stay in the queue)."""
    shown = _manage(stack, 'dead', 'show', message_id)
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)


class _Paused:
    """Ironic stopped (SIGSTOP) for a while: the consumer's calls to it
    wait, unanswered, as they would on an Ironic that hangs."""

    def __init__(self, ironic) -> None:
        self.group = os.getpgid(ironic.proc.pid)
        self.paused = False

    def pause(self) -> None:
        os.killpg(self.group, signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        if self.paused:
            os.killpg(self.group, signal.SIGCONT)
            self.paused = False


def test_copies_of_a_refused_message_in_prefetch_stay_refused_after_a_kill(
        stack, figure):
    """The gate message of a boot is refused, and copies of it sit
    unacknowledged in the consumer's prefetch when it is killed: the
    broker gives them back marked ``redelivered``. None passes the gate
    (the boot stays ``refused``), none is applied, none is lost, intake
    goes on, and only an operator's ``dead replay`` gets the gate
    message past the gate again.

    The attacker's first message is a signed ramdisk error report: it
    passes the gate (``issued → received``) and is then refused
    (``ramdisk-error``), which moves the boot to ``refused``. (A bad
    signature or a malformed body never passes the gate: it revokes the
    credential instead, and its copies meet ``revoked``.) Behind it come
    six identical copies and six other bodies, valid inventories of the
    credential's own machine, under the same message id.

    Deterministic: the consumer is stopped while everything is
    published, so the queue holds the gate message, then one legitimate
    boot per worker, then the copies. Ironic is paused (SIGSTOP), so the
    legitimate boots hold every worker in their first Ironic call (a
    GET: nothing is written when it is answered to a dead consumer) once
    the gate message is refused, and the copies wait in the prefetch:
    the broker's management API shows them unacknowledged, and the
    consumer's counters show none of them processed, before the
    SIGKILL."""
    consumer = stack.consumer
    attacker = stack.issue()
    boot_id, mac = attacker.credential.boot_id, attacker.credential.mac
    gate = _sealed(attacker, error={'stage': 'collect',
                                    'message': 'refused on purpose'})
    copies = [(gate.body, dict(gate.properties))] * 6
    for n in range(6):
        other = _sealed(attacker, nonce_pad=f'copy {n}')
        copies.append((other.body, dict(other.properties,
                                        message_id=gate.message_id)))
    legit = [stack.issue() for _ in range(WORKERS)]
    ironic = _Paused(stack.ironic)
    consumer.stop()
    try:
        assert _publish(attacker, [(gate.body, dict(gate.properties))]) == 1
        for issued in legit:
            boots.publish(issued, int(issued.credential.mac
                                      .replace(':', '')[-6:], 16))
        assert _publish(attacker, copies) == len(copies)
        assert boots.depth(stack.broker, QUEUE) == 1 + WORKERS + len(copies)

        ironic.pause()
        _restart(consumer)
        wait_for(lambda: consumer.counter('dead', 'ramdisk-error') == 1,
                 60, 'the gate message dead-lettered')
        wait_for(lambda: all(stack.store.get(i.credential.boot_id).state ==
                             'received' for i in legit), 60,
                 'every worker held by a legitimate boot')
        # The management API's figures lag (statistics every few s).
        wait_for(lambda: _queue(stack) == (0, WORKERS + len(copies)), 60,
                 f'{WORKERS} boots and {len(copies)} copies unacknowledged')
        assert consumer.counter('dead', 'replayed-boot') == 0
        assert consumer.counter('applied') == 0
        refused_at_kill = stack.store.get(boot_id).state
        redelivered = _redelivered(stack)
        consumer.kill()
        ironic.resume()

        started = time.monotonic()
        _restart(consumer)
        # The legitimate boots wait out the apply lease of the killed
        # workers (the copies queue behind them), then are applied.
        wait_for(lambda: all(stack.store.get(i.credential.boot_id).state ==
                             'applied' for i in legit), 120,
                 'the legitimate boots applied after the restart')
        wait_for(lambda: _queue(stack) == (0, 0), 60, 'the queue drained')
        # What the killed consumer held came back marked redelivered.
        wait_for(lambda: _redelivered(stack) - redelivered >=
                 WORKERS + len(copies), 60, 'the redeliveries counted')
        assert _redelivered(stack) - redelivered == WORKERS + len(copies)
    finally:
        ironic.resume()
        if consumer.proc is None:
            _restart(consumer)

    # Every copy came back marked redelivered and was refused at the
    # gate: nothing of that boot reached Ironic, and it stays refused.
    assert _nodes_with(stack.ironic, mac) == 0
    assert consumer.counter('applied') == len(legit)
    assert consumer.counter('dead', 'replayed-boot') == len(copies)
    assert consumer.counter('dead', 'ramdisk-error') == 0
    assert refused_at_kill == stack.store.get(boot_id).state == 'refused'
    assert all(_nodes_with(stack.ironic, i.credential.mac) == 1
               for i in legit)
    assert attacker.credential.username not in stack.broker.users()
    # Nothing lost: each of the attacker's messages is a dead letter with
    # its reason; only the gate message keeps its body.
    dead = _dead_shown(stack, gate.message_id)
    assert {row['user_id'] for row in dead} == \
        {attacker.credential.username}
    assert sorted(row['reason'] for row in dead) == \
        ['ramdisk-error'] + ['replayed-boot'] * len(copies)
    # From the restart: mostly the apply lease of the boots the killed
    # workers held ([consumer] apply_lease, 15 s in the test profile).
    next_good = stack.good_boot(started)

    # The operator's replay is the one way past the gate: the gate
    # message passes it again (refused as what it is, an error report,
    # not as replayed-boot), and the boot is refused again; the copies
    # kept no body to replay.
    replayed = _manage(stack, 'dead', 'replay', gate.message_id)
    assert replayed.returncode == 1, replayed.stderr
    lines = sorted(replayed.stdout.splitlines())
    assert lines == sorted([f'{gate.message_id}: dead ramdisk-error'] +
                           [f'{gate.message_id}: dead body-not-kept'] *
                           len(copies)), replayed.stdout
    assert stack.store.get(boot_id).state == 'refused'
    assert _nodes_with(stack.ironic, mac) == 0
    kept = [(p, b) for p, b in boots.get_all(stack.broker, DEAD)
            if p.headers.get('x-hwbus-original-user-id') ==
            attacker.credential.username]
    assert len(kept) == 1 + len(copies)
    assert [p.headers['x-hwbus-dead-reason'] for p, b in kept if b] == \
        ['ramdisk-error']
    figure(attack='a refused message\'s copies in prefetch at SIGKILL',
           attempts=1 + len(copies), accepted=0,
           refused=f'1 ramdisk-error, {len(copies)} redelivered copies '
           f'replayed-boot; boot stays refused',
           next_good_s=next_good)
