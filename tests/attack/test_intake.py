"""No message stalls intake: hostile bytes through the real broker.

Every attack uses a credential as the boot server hands them out and a
client of its own (tests/attack/hostile.py, or pika where a normal client
can send it). Each is refused or dead-lettered with its reason in one
delivery, and a legitimate boot published right after is applied.
"""

from __future__ import annotations

import bz2
import hashlib
import itertools
import os
import time
import zlib

import pika
import pytest

from hwbus import envelope
from hwbus.broker import topology
from hwbus.localstack.common import wait_for
from hwbus.localstack.consumer import ConsumerProcess, write_config
from hwbus.store import Store
from tests import amqpbytes as a
from tests.attack import hostile
from tests.functional import boots
from tests.functional.conftest import (
    CONSUMER_PASSWORD,
    credentials_for,
    management_for,
)

QUEUE, DEAD = 'hwbus.inventory', 'hwbus.inventory.dead'
NUMBERS = itertools.count(3000)


class Stack:
    """One consumer (inspection applier) for the module; a clean slate
    (no nodes, empty queues) per test."""

    def __init__(self, broker, ironic, tmp) -> None:
        self.broker, self.ironic = broker, ironic
        url = f'sqlite:///{tmp}/hwbus.sqlite'
        self.store = Store(url)
        self.credentials = credentials_for(broker, self.store)
        self.config = write_config(tmp / 'hwbus.conf', broker, url,
                                   ironic.url, CONSUMER_PASSWORD)
        self.consumer = ConsumerProcess(self.config, tmp / 'consumer.log')

    def issue(self):
        return self.credentials.issue(mac=boots.mac_for(next(NUMBERS)),
                                      after='none', issued_by='bootserver')

    def good_boot(self, since: float) -> float:
        """A legitimate boot, published now, is applied: seconds since."""
        issued = self.issue()
        n = int(issued.credential.mac.replace(':', '')[-6:], 16)
        boots.publish(issued, n)
        wait_for(lambda: self.store.get(issued.credential.boot_id).state ==
                 'applied', 120, 'the legitimate boot applied')
        return round(time.monotonic() - since, 2)

    def dead(self, count: int, timeout: float = 60) -> list[tuple]:
        got: list[tuple] = []
        wait_for(lambda: got.extend(boots.get_all(self.broker, DEAD)) or
                 len(got) >= count, timeout, f'{count} dead letters')
        return got

    def log(self) -> str:
        return self.consumer.log.read_text(errors='replace')


@pytest.fixture(scope='module')
def module_stack(broker, ironic, tmp_path_factory):
    stack = Stack(broker, ironic, tmp_path_factory.mktemp('intake'))
    boots.get_all(broker, QUEUE)
    boots.get_all(broker, DEAD)
    stack.consumer.start()
    yield stack
    stack.consumer.stop()


@pytest.fixture
def stack(module_stack):
    module_stack.ironic.delete_all_nodes()
    boots.get_all(module_stack.broker, DEAD)
    yield module_stack
    assert module_stack.consumer.proc.poll() is None, 'the consumer died'


def _first_delivery(props) -> bool:
    """The dead letter was decided on the message's first delivery."""
    return not (props.headers or {}).get('x-delivery-count')


def _envelope(issued, body: bytes, *headers: bytes, **kwargs) -> None:
    hostile.publish_raw_properties(
        issued, body, hostile.envelope_properties(issued, body, *headers,
                                                  **kwargs))


POISON = {
    # The AMQP client hands an empty body over as text ('').
    'empty body': (lambda issued: _envelope(issued, b''), 'empty'),
    # A table timestamp of 2**63: py-amqp's datetime overflows.
    'header timestamp 2**63': (lambda issued: _envelope(
        issued, hostile.signed_document(issued),
        a.timestamp_item('when', 2**63)), 'undecodable-properties'),
    # Short strings that are not UTF-8.
    'message id not UTF-8': (lambda issued: _envelope(
        issued, hostile.signed_document(issued), message_id=b'\xff\xfe'),
        'undecodable-properties'),
    'content type not UTF-8': (lambda issued: _envelope(
        issued, hostile.signed_document(issued), content_type=b'\xc3\x28'),
        'undecodable-properties'),
}


@pytest.mark.parametrize('name', sorted(POISON))
def test_poison_properties_cost_one_delivery(stack, figure, name):
    send, reason = POISON[name]
    issued = stack.issue()
    started = time.monotonic()
    send(issued)
    next_good = stack.good_boot(started)
    [(props, _)] = stack.dead(1)
    assert props.headers['x-hwbus-dead-reason'] == reason
    assert _first_delivery(props)
    # The sender's credential ended with its message.
    assert stack.store.get(issued.credential.boot_id).state == 'revoked'
    assert issued.credential.username not in stack.broker.users()
    figure(attack=f'AMQP: {name}', attempts=1, accepted=0, refused=reason,
           next_good_s=next_good)


def test_a_text_codec_as_content_encoding_keeps_the_body_bytes(stack,
                                                                figure):
    issued = stack.issue()
    body = hostile.signed_document(issued)
    started = time.monotonic()
    boots.publish_raw(issued, body, boots.signed_properties(
        issued, body, content_encoding='utf-8'))
    next_good = stack.good_boot(started)
    [(props, dead_body)] = stack.dead(1)
    assert props.headers['x-hwbus-dead-reason'] == 'bad-encoding'
    # The digest is of the exact wire bytes: nothing decoded them to text
    # (the unverified body itself is not kept).
    assert props.headers['x-hwbus-body-digest'] == \
        'sha256:' + hashlib.sha256(body).hexdigest()
    assert dead_body == b''
    figure(attack='AMQP: content_encoding utf-8 (client decodes)',
           attempts=1, accepted=0, refused='bad-encoding',
           next_good_s=next_good)


def test_a_compression_header_makes_the_consumer_inflate_nothing(stack,
                                                                 figure):
    """kombu would bunzip2 a body whose headers say so: 4.3 GB here."""
    issued = stack.issue()
    block = bz2.compress(b'\0' * 900_000, 9)
    body = block * 4800  # bz2 streams concatenate: 4.3 GB of zeros
    assert len(body) < 1024 * 1024
    started = time.monotonic()
    _envelope(issued, body, a.text_item('compression', 'application/x-bz2'))
    next_good = stack.good_boot(started)
    [(props, _)] = stack.dead(1)
    assert props.headers['x-hwbus-dead-reason'] == 'malformed'
    status = open(f'/proc/{stack.consumer.proc.pid}/status').read()
    peak_kib = int(status.split('VmHWM:')[1].split()[0])
    assert peak_kib < 1024 * 1024, f'consumer peaked at {peak_kib} KiB'
    figure(attack='AMQP: bz2 bomb behind a compression header',
           attempts=1, accepted=0, refused='malformed',
           next_good_s=next_good)


def test_headers_no_client_would_write_are_dead_lettered_intact(stack,
                                                                figure):
    """Keys and values that are not UTF-8 (py-amqp keeps them as bytes):
    the dead-letter copy is still published."""
    issued = stack.issue()
    body = hostile.signed_document(issued, nonce='tampered')
    props = hostile.envelope_properties(
        issued, hostile.signed_document(issued),  # signs another body
        a.shortstr(b'\xff\xfekey') + b'S' + a.longstr(b'\xff\xfe\n'))
    started = time.monotonic()
    hostile.publish_raw_properties(issued, body, props)
    next_good = stack.good_boot(started)
    [(dead_props, _)] = stack.dead(1)
    assert dead_props.headers['x-hwbus-dead-reason'] == 'bad-signature'
    assert _first_delivery(dead_props)
    figure(attack='AMQP: header key and value not UTF-8', attempts=1,
           accepted=0, refused='bad-signature', next_good_s=next_good)


@pytest.mark.parametrize('text', ['1e400', '-1e999', '"\\ud800"'])
def test_json_without_a_canonical_form_is_refused_at_once(stack, figure,
                                                          text):
    """Four at once held all four workers for 600 s before."""
    sent = []
    for _ in range(4):
        issued = stack.issue()
        body = hostile.signed_document(issued).replace(
            b'"nonce":"n"', b'"nonce":' + text.encode())
        boots.publish_raw(issued, body, boots.signed_properties(issued,
                                                                body))
        sent.append(issued)
    started = time.monotonic()
    next_good = stack.good_boot(started)
    dead = stack.dead(4)
    assert {p.headers['x-hwbus-dead-reason'] for p, _ in dead} == {
        'not-canonical'}
    assert all(_first_delivery(p) for p, _ in dead)
    assert 'internal-error' not in stack.log()
    figure(attack=f'signed JSON with {text}', attempts=4, accepted=0,
           refused='not-canonical', next_good_s=next_good)


@pytest.mark.parametrize('path, value', [
    (('memory', 'physical_mb'), 10**30), (('cpu', 'count'), 2**63),
    (('memory', 'total'), 2**60)])
def test_values_out_of_range_never_reach_ironic(stack, figure, path, value):
    issued = stack.issue()
    doc = boots.document('qemu-guest', issued.credential.mac)
    doc['inventory'][path[0]][path[1]] = value
    started = time.monotonic()
    boots.publish_raw(issued, *_signed(issued, doc))
    next_good = stack.good_boot(started)
    [(props, _)] = stack.dead(1)
    assert props.headers['x-hwbus-dead-reason'] == 'schema'
    assert not [p for p in stack.ironic.ports()
                if p['address'] == issued.credential.mac]
    figure(attack=f'{".".join(path)} = {value:.0e}', attempts=1,
           accepted=0, refused='schema', next_good_s=next_good)


def _signed(issued, doc: dict, **fields) -> tuple[bytes, dict]:
    body = hostile.signed_document(issued, doc['inventory'],
                                   doc['plugin_data'], **fields)
    return body, boots.signed_properties(issued, body)


def test_a_forged_log_line_stays_inside_its_record(stack, figure):
    issued = stack.issue()
    forged = ('boom\n2026-11-27 05:00:00.000 1 INFO hwbus.consumer.pipeline '
              '[-] applied message m of boot b (user u) to node FORGED-LINE')
    doc = boots.document('qemu-guest', issued.credential.mac)
    started = time.monotonic()
    boots.publish_raw(issued, *_signed(issued, doc, error={
        'stage': 'collect', 'message': forged}))
    next_good = stack.good_boot(started)
    [(props, _)] = stack.dead(1)
    assert props.headers['x-hwbus-dead-reason'] == 'ramdisk-error'
    lines = [line for line in stack.log().splitlines()
             if 'FORGED-LINE' in line]
    assert lines and all('rejected message' in line for line in lines)
    figure(attack='log forgery in a ramdisk error report', attempts=1,
           accepted=0, refused='ramdisk-error (escaped)',
           next_good_s=next_good)


def test_expiry_is_the_consumers_clock_not_the_senders(stack, figure):
    issued = stack.issue()
    with stack.store.session() as session:
        row = session.get(type(issued.credential),
                          issued.credential.boot_id)
        row.expires_at = row.created_at.replace(year=2020)
    # Signed as collected long before the expiry.
    n = int(issued.credential.mac.replace(':', '')[-6:], 16)
    started = time.monotonic()
    try:
        boots.publish(issued, n, deadline=5, now=1_500_000_000)
    except Exception:  # noqa: S110 - the user may be swept first: refused
        pass
    next_good = stack.good_boot(started)
    dead = boots.get_all(stack.broker, DEAD)
    assert [p.headers['x-hwbus-dead-reason'] for p, _ in dead] in (
        [], ['expired'])
    assert stack.store.get(issued.credential.boot_id).state == 'expired'
    assert issued.credential.username not in stack.broker.users()
    assert not [p for p in stack.ironic.ports()
                if p['address'] == issued.credential.mac]
    figure(attack='expired credential, collected_at backdated', attempts=1,
           accepted=0, refused='expired (or login refused)',
           next_good_s=next_good)


def _flood(issued, body: bytes, props: dict,
           most: int | None = None) -> tuple[int, int]:
    """Publish as fast as the broker confirms, for up to 60 s (or ``most``
    messages): (attempts, confirmed)."""
    connection = pika.BlockingConnection(pika.URLParameters(
        issued.params.connection_urls()[0]))
    channel = connection.channel()
    channel.confirm_delivery()
    attempts = accepted = 0
    started = time.monotonic()
    try:
        while time.monotonic() - started < 60 and \
                (most is None or attempts < most):
            attempts += 1
            channel.basic_publish('hwbus.inventory',
                                  f'inventory.{issued.params.user}', body,
                                  pika.BasicProperties(**props))
            accepted += 1
    except pika.exceptions.AMQPError:
        pass  # the consumer deleted the user: its connection is closed
    finally:
        if connection.is_open:
            connection.close()
    return attempts, accepted


def test_one_credential_floods_nothing_past_its_first_message(stack,
                                                              figure):
    """Messages of ~1 MiB as fast as the broker takes them: the first one
    the consumer sees ends the credential and its connection."""
    issued = stack.issue()
    body = os.urandom(1000 * 1024)
    props = boots.signed_properties(issued, body)
    started = time.monotonic()
    attempts, accepted = _flood(issued, body, props)
    cut_s = round(time.monotonic() - started, 2)
    next_good = stack.good_boot(started)
    dead = stack.dead(accepted, timeout=120)
    wait_for(lambda: boots.depth(stack.broker, QUEUE) == 0, 60, 'drained')
    dead += boots.get_all(stack.broker, DEAD)
    # Every message the broker took is kept, with its reason (one may
    # have been taken without its confirm reaching the attacker).
    assert accepted <= len(dead) <= attempts
    # The first ones are refused for what they are (the workers take a
    # few at once, before the first refusal ends the credential: the
    # test profile's 4 workers, and those that start before the refusal
    # is recorded); the rest for the credential being gone.
    reasons = [p.headers['x-hwbus-dead-reason'] for p, _ in dead]
    assert 1 <= reasons.count('malformed') <= 8
    assert set(reasons) <= {'malformed', 'revoked'}
    assert stack.store.get(issued.credential.boot_id).state == 'revoked'
    figure(attack=f'flood from one credential (cut after {cut_s} s)',
           attempts=attempts, accepted=0, refused=f'malformed, then revoked; '
           f'{len(dead)} queued before the user was deleted',
           next_good_s=next_good)


def test_the_broker_refuses_an_oversize_message(stack, figure):
    issued = stack.issue()
    body = b'x' * (50 * 1024 * 1024)
    started = time.monotonic()
    with pytest.raises(pika.exceptions.AMQPError, match='max size'):
        boots.publish_raw(issued, body, boots.signed_properties(issued,
                                                                body))
    next_good = stack.good_boot(started)
    assert boots.depth(stack.broker, DEAD) == 0
    figure(attack='50 MiB message', attempts=1, accepted=0,
           refused='broker: max_message_size (406)', next_good_s=next_good)


def test_a_full_queue_refuses_new_messages_and_keeps_the_rest(broker,
                                                              figure):
    """The queues' byte limits, on a vhost of their own with 1 MiB."""
    vhost = 'hwbus-limits'
    management = management_for(broker)
    management.vhost = vhost
    small = topology.Topology(vhost=vhost, queue_max_bytes=1024 * 1024,
                              dead_queue_max_bytes=1024 * 1024)
    topology.setup(management, small, None)
    broker.api('PUT', f'/api/permissions/{vhost}/{broker.admin_user}',
               json={'configure': '.*', 'write': '.*', 'read': '.*'})
    params = broker.pika_parameters()
    params.virtual_host = vhost
    connection = pika.BlockingConnection(params)
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        accepted = refused = 0
        for _ in range(6):
            try:
                channel.basic_publish('hwbus.inventory', 'inventory.x',
                                      b'y' * 300 * 1024)
                accepted += 1
            except pika.exceptions.NackError:
                refused += 1
        depth = channel.queue_declare('hwbus.inventory',
                                      passive=True).method.message_count
    finally:
        connection.close()
        broker.api('DELETE', f'/api/vhosts/{vhost}')
    assert refused and accepted == depth
    figure(attack='queue filled past max-length-bytes', attempts=6,
           accepted=0, refused=f'broker nack x{refused} (reject-publish); '
           f'the {depth} taken before all kept', next_good_s='-')


def test_a_gzip_bomb_inflates_only_to_the_limit(stack, figure):
    issued = stack.issue()
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    body = packer.compress(b'{"a":"' + b'0' * (200 * 1024 * 1024)) + \
        packer.flush()
    started = time.monotonic()
    boots.publish_raw(issued, body, boots.signed_properties(
        issued, body, content_encoding='gzip'))
    next_good = stack.good_boot(started)
    [(props, dead_body)] = stack.dead(1)
    assert props.headers['x-hwbus-dead-reason'] == 'oversize'
    # Oversize dead letters keep the size and digest, not the body.
    assert dead_body == b''
    assert props.headers['x-hwbus-body-size'] == len(body)
    assert props.headers['x-hwbus-body-digest'].startswith('sha256:')
    figure(attack='gzip bomb (200 MiB)', attempts=1, accepted=0,
           refused='oversize (body kept as digest)', next_good_s=next_good)


def test_envelope_fields_are_checked_before_use(stack, figure):
    """A body naming another boot, and a user_id the broker would not
    let through are covered by the broker and test_consumer; here the
    body names another version."""
    issued = stack.issue()
    doc = boots.document('qemu-guest', issued.credential.mac)
    body = envelope.canonical({'version': 2, 'boot_id': issued.params.boot_id,
                               'collected_at': 'x', 'nonce': 'n',
                               'inventory': doc['inventory'],
                               'plugin_data': doc['plugin_data']})
    started = time.monotonic()
    boots.publish_raw(issued, body, boots.signed_properties(issued, body))
    next_good = stack.good_boot(started)
    [(props, _)] = stack.dead(1)
    assert props.headers['x-hwbus-dead-reason'] == 'bad-version'
    figure(attack='envelope version 2', attempts=1, accepted=0,
           refused='bad-version', next_good_s=next_good)


def test_the_dead_letter_tools_read_any_message_in_the_queue(stack, figure):
    """What the broker itself dead-letters keeps the sender's bytes: the
    operator's tools must read, replay and purge it without a
    traceback."""
    import subprocess

    from hwbus.localstack.consumer import BIN

    admin = hostile.admin_connection(stack.broker)
    poison = [
        (b'', a.properties(0)),
        (b'{}', a.properties(a.HEADERS | a.MESSAGE_ID, a.table(
            a.timestamp_item('when', 2**63)), a.shortstr(b'm-ts'))),
        (b'x', a.properties(a.MESSAGE_ID | a.CONTENT_TYPE,
                            a.shortstr(b'\xff\xfe\n'),
                            a.shortstr(b'\x1b[2J'))),
    ]
    try:
        channel = admin.channel()
        channel.confirm_select()
        for body, props in poison:
            channel.basic_publish_confirm(hostile.RawMessage(body, props),
                                          exchange='hwbus.dead',
                                          routing_key='delivery_limit')
    finally:
        admin.close()

    def manage(*args):
        result = subprocess.run(
            [str(BIN / 'hwbus-manage'), '--config-file', str(stack.config),
             *args], capture_output=True, text=True, timeout=120)
        assert 'Traceback' not in result.stderr, result.stderr
        assert '\x1b' not in result.stdout
        return result

    listing = manage('dead', 'list')
    assert listing.returncode == 0 and len(listing.stdout.splitlines()) == 4
    replay = manage('dead', 'replay', '--all')
    assert replay.returncode == 1  # none of them can be applied
    assert replay.stdout.count(': dead ') == 3
    assert boots.depth(stack.broker, DEAD) == 3  # replay kept them
    purge = manage('dead', 'purge', '--all')
    assert purge.returncode == 0 and 'purged 3' in purge.stdout
    started = time.monotonic()
    figure(attack='poison messages in the dead-letter queue', attempts=3,
           accepted=0, refused='listed, not replayed, purged (no traceback)',
           next_good_s=stack.good_boot(started))


def test_a_flood_without_user_id_ends_its_credential_and_keeps_no_bodies(
        stack, figure):
    """user_id is optional in AMQP: the routing key, which the broker
    enforces, names the sender; unverified bodies are not kept."""
    issued = stack.issue()
    body = os.urandom(500 * 1024)
    props = boots.signed_properties(issued, body)
    del props['user_id']
    started = time.monotonic()
    attempts, accepted = _flood(issued, body, props, most=200)
    next_good = stack.good_boot(started)
    wait_for(lambda: boots.depth(stack.broker, QUEUE) == 0, 60, 'drained')
    dead = boots.get_all(stack.broker, DEAD)
    assert accepted <= len(dead) <= attempts
    assert all(b == b'' and p.headers['x-hwbus-body-size'] == len(body)
               for p, b in dead)
    assert stack.store.get(issued.credential.boot_id).state == 'revoked'
    assert attempts < 200  # the credential ended before the flood did
    figure(attack='flood without user_id (routing key names the sender)',
           attempts=attempts, accepted=0,
           refused=f'bad-properties; credential revoked; {len(dead)} dead '
           f'letters kept as digests', next_good_s=next_good)


def test_a_full_dead_letter_queue_stalls_nothing(stack, figure):
    """Bad messages while the dead-letter queue refuses everything: intake
    goes on. Noise (no body kept) is dropped with its record in the log
    line, since the broker's dead-lettering would keep its body after
    all (round-7 attacker); the one message of a credential that passed
    its gate (here a ramdisk's error report) is handed to the broker's
    dead-lettering and reaches the dead-letter queue, body and all, once
    there is room."""
    policy = 'hwbus.inventory.dead-limits'
    stack.broker.api('PUT', f'/api/policies/%2F/{policy}', json={
        'pattern': '^hwbus\\.inventory\\.dead$', 'apply-to': 'queues',
        'definition': {'max-length': 1, 'overflow': 'reject-publish'},
        'priority': 0}).raise_for_status()
    try:
        # One dead letter fills it (a quorum queue may take one more
        # before it applies the limit); the next are refused.
        noise = [stack.issue() for _ in range(3)]
        started = time.monotonic()
        for one in noise:
            _envelope(one, b'')
        wait_for(lambda: 'its body not kept anyway' in stack.log(), 60,
                 'the noise dropped')
        report = stack.issue()
        sealed = boots.publish(
            report, int(report.credential.mac.replace(':', '')[-6:], 16),
            error={'stage': 'collect', 'message': 'x'})
        next_good = stack.good_boot(started)
        wait_for(lambda: 'handed to the broker' in stack.log(), 60,
                 'the report handed to the broker')
        wait_for(lambda: boots.depth(stack.broker, QUEUE) == 0, 60,
                 'the bad ones taken')
        assert stack.consumer.proc.poll() is None
    finally:
        topology.setup(management_for(stack.broker), topology.Topology(),
                       CONSUMER_PASSWORD)
    # Room again: the report the broker held reaches the dead-letter queue
    # (the consumer sorts the broker's dead letters; it tries a refused
    # copy again every 5 s).
    restored = time.monotonic()
    dead: list[tuple] = []
    wait_for(lambda: dead.extend(boots.get_all(stack.broker, DEAD)) or
             sealed.body in [body for _, body in dead], 300,
             'the report dead-lettered')
    held = round(time.monotonic() - restored, 1)
    assert sorted(body for _, body in dead)[-1] == sealed.body
    assert all(body in (b'', sealed.body) for _, body in dead)
    figure(attack='bad messages while the dead-letter queue is full',
           attempts=4, accepted=0, refused=f'noise dropped with a log line; '
           f'the gate message kept by the broker, dead-lettered {held} s '
           f'after room was made', next_good_s=next_good)
