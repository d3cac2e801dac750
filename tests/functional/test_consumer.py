"""hwbus-consumer against the real broker, store and Ironic.

The consumer runs as its installed command with a configuration file;
boots are published exactly as hwbus-ramdisk publishes them.
"""

import json
import zlib

import pytest

from hwbus import envelope, keys
from hwbus.localstack.common import wait_for
from hwbus.localstack.consumer import ConsumerProcess, write_config
from hwbus.store import State, Store
from tests.functional import boots
from tests.functional.conftest import CONSUMER_PASSWORD, credentials_for

QUEUE, DEAD = 'hwbus.inventory', 'hwbus.inventory.dead'


@pytest.fixture
def stack(broker, clean_ironic, tmp_path):
    """Empty queues, no nodes, a fresh SQLite store and a config file."""
    boots.get_all(broker, QUEUE)
    boots.get_all(broker, DEAD)
    url = f'sqlite:///{tmp_path}/hwbus.sqlite'
    store = Store(url)
    config = write_config(tmp_path / 'hwbus.conf', broker, url,
                          clean_ironic.url, CONSUMER_PASSWORD)
    consumer = ConsumerProcess(config, tmp_path / 'consumer.log')

    class Stack:
        pass

    s = Stack()
    s.broker, s.ironic, s.store, s.config = broker, clean_ironic, store, config
    s.credentials = credentials_for(broker, store)
    s.consumer = consumer
    yield s
    consumer.stop()
    s.consumer.stop()  # a test may have swapped in its own
    boots.get_all(broker, QUEUE)
    boots.get_all(broker, DEAD)


def _node_with_port(ironic, mac):
    ports = [p for p in ironic.ports() if p['address'] == mac]
    return ports[0]['node_uuid'] if ports else None


def _wait_nodes(ironic, macs, timeout=120):
    found = {}

    def check():
        by_mac = {p['address']: p['node_uuid'] for p in ironic.ports()}
        found.update({m: by_mac[m] for m in macs if m in by_mac})
        return len(found) == len(macs)

    wait_for(check, timeout, f'{len(macs)} nodes in Ironic')
    return found


def test_an_inventory_becomes_a_node_and_the_credential_is_gone(stack):
    stack.consumer.start()
    issued, sealed = boots.boot(stack.credentials, 1)
    mac = boots.mac_for(1)
    node = _wait_nodes(stack.ironic, [mac])[mac]
    wait_for(lambda: stack.store.get(
        issued.credential.boot_id).state == State.APPLIED.value, 30,
        'state applied')
    record = stack.store.get(issued.credential.boot_id)
    assert record.message_id == sealed.message_id
    # The revoker deletes the user off the message's path, within
    # [consumer] revoke_max_delay of its receipt (tests/functional/
    # test_revoker.py), and records it.
    wait_for(lambda: stack.store.get(
        issued.credential.boot_id).user_deleted_at is not None, 30,
        'the user\'s deletion recorded')
    assert issued.credential.username not in stack.broker.users()
    # The archive is written just after the state changes to applied.
    wait_for(lambda: stack.store.inventories(node=node), 30, 'archived')
    [archived] = stack.store.inventories(node=node)
    assert archived.message_id == sealed.message_id
    # Ironic stores the inventory once its inspection hooks have run.
    stored = {}
    wait_for(lambda: stored.update(stack.ironic.get(
        f'/v1/nodes/{node}/inventory')) or stored, 60, 'stored inventory')
    assert stored['inventory']['cpu']['count'] == 2
    assert boots.depth(stack.broker, QUEUE) == 0
    wait_for(lambda: stack.consumer.counter('applied') == 1, 10, 'counted')


def _bad_messages(stack):
    """(reason, publish) for each way a message can be bad."""
    creds = stack.credentials
    good = boots.document('qemu-guest', boots.mac_for(9))

    def canonical(doc, issued):
        return envelope.canonical({
            'version': 1, 'boot_id': issued.params.boot_id,
            'collected_at': '2026-01-01T00:00:00Z', 'nonce': 'n',
            'inventory': doc['inventory'],
            'plugin_data': doc['plugin_data']})

    def forged():
        issued = creds.issue(mac=boots.mac_for(9))
        other, _ = keys.new_keypair()
        body = canonical(good, issued)
        boots.publish_raw(issued, body, boots.signed_properties(
            issued, body, key=keys.private_key(other)))

    def unknown_user():
        issued = creds.issue(mac=boots.mac_for(9))
        body = canonical(good, issued)
        props = boots.signed_properties(issued, body)
        creds.store.delete(issued.credential.boot_id)  # store forgot it
        boots.publish_raw(issued, body, props)

    def expired():
        issued = creds.issue(mac=boots.mac_for(9), ttl=60)
        with creds.store.session() as session:
            row = session.get(type(issued.credential),
                              issued.credential.boot_id)
            row.expires_at = row.created_at.replace(year=2020)
        body = envelope.canonical({
            'version': 1, 'boot_id': issued.params.boot_id,
            'collected_at': '2026-01-01T00:00:00Z', 'nonce': 'n',
            'inventory': good['inventory'],
            'plugin_data': good['plugin_data']})
        boots.publish_raw(issued, body, boots.signed_properties(issued, body))

    def replayed():
        issued = creds.issue(mac=boots.mac_for(9))
        for nonce in ('first', 'second'):
            body = envelope.canonical({
                'version': 1, 'boot_id': issued.params.boot_id,
                'collected_at': '2026-01-01T00:00:00Z', 'nonce': nonce,
                'inventory': good['inventory'],
                'plugin_data': good['plugin_data']})
            boots.publish_raw(issued, body, boots.signed_properties(
                issued, body, message_id=nonce))

    def bomb():
        issued = creds.issue(mac=boots.mac_for(9))
        packer = zlib.compressobj(9, zlib.DEFLATED, 31)
        body = packer.compress(b'{"a":"' + b'0' * (50 * 1024 * 1024)) + \
            packer.flush()
        boots.publish_raw(issued, body, boots.signed_properties(
            issued, body, content_encoding='gzip'))

    def malformed():
        issued = creds.issue(mac=boots.mac_for(9))
        body = b'{"version": 1, "boot_id": \xff'
        boots.publish_raw(issued, body, boots.signed_properties(issued, body))

    def schema_invalid():
        issued = creds.issue(mac=boots.mac_for(9))
        doc = dict(good, inventory=dict(good['inventory'], cpu='fast'))
        body = canonical(doc, issued)
        boots.publish_raw(issued, body, boots.signed_properties(issued, body))

    def other_machine():
        # A command line stolen from the machine it was issued for, used
        # by a different machine that sends its own inventory.
        issued = creds.issue(mac='52:54:10:ff:ff:01')
        body = canonical(good, issued)
        boots.publish_raw(issued, body, boots.signed_properties(issued, body))

    return [('bad-signature', forged), ('unknown-credential', unknown_user),
            ('mac-mismatch', other_machine),
            ('expired', expired), ('replayed-boot', replayed),
            ('oversize', bomb),
            ('malformed', malformed), ('schema', schema_invalid)]


def test_bad_messages_are_dead_lettered_with_their_reason(stack):
    cases = _bad_messages(stack)
    for _, publish in cases:
        publish()
    stack.consumer.start()
    expected = sorted(reason for reason, _ in cases)
    dead = []

    def collected():
        dead.extend(boots.get_all(stack.broker, DEAD))
        return len(dead) >= len(expected)

    wait_for(collected, 120, 'dead letters')
    reasons = sorted(p.headers['x-hwbus-dead-reason'] for p, _ in dead)
    assert reasons == expected
    for props, _ in dead:
        assert props.headers['x-hwbus-dead-detail']
        assert props.headers['x-hwbus-original-user-id'].startswith('boot-')
    # The one good message of the replayed pair was applied (its dead
    # twin may be refused while it is still being applied): nothing else.
    wait_for(lambda: len(stack.ironic.nodes()) >= 1, 60, 'the good one')
    assert len(stack.ironic.nodes()) == 1
    for reason in set(expected):
        assert stack.consumer.counter('dead', reason) == expected.count(
            reason)
    log = stack.consumer.log.read_text()
    assert 'rejected message' in log
    for secret in (CONSUMER_PASSWORD, stack.broker.admin_password):
        assert secret not in log


def test_ironic_down_then_back_applies_every_queued_boot(stack):
    stack.ironic.stop()
    stack.consumer.start()
    macs = []
    for i in range(50):
        boots.boot(stack.credentials, 100 + i)
        macs.append(boots.mac_for(100 + i))
    wait_for(lambda: 'will retry' in stack.consumer.log.read_text(), 60,
             'a retry while Ironic is down')
    stack.ironic.start()
    found = _wait_nodes(stack.ironic, macs, timeout=300)
    assert len(set(found.values())) == 50
    wait_for(lambda: boots.depth(stack.broker, QUEUE) == 0, 60, 'empty')
    assert boots.get_all(stack.broker, DEAD) == []
    assert len(stack.store.inventories(limit=1000)) == 50


def test_sigkill_mid_message_is_redelivered_and_applied_once(stack):
    stack.ironic.stop()
    stack.consumer.start()
    issued, _sealed = boots.boot(stack.credentials, 200)
    wait_for(lambda: 'will retry' in stack.consumer.log.read_text(), 60,
             'the consumer holding the message')
    stack.consumer.kill()
    stack.ironic.start()
    stack.consumer.start()
    mac = boots.mac_for(200)
    _wait_nodes(stack.ironic, [mac])
    wait_for(lambda: stack.store.get(
        issued.credential.boot_id).state == State.APPLIED.value, 60,
        'applied')
    assert len(stack.store.inventories(limit=10)) == 1
    assert len([p for p in stack.ironic.ports() if p['address'] == mac]) == 1
    assert boots.get_all(stack.broker, DEAD) == []


def test_sigterm_returns_in_flight_messages(stack):
    stack.ironic.stop()
    stack.consumer.start()
    boots.boot(stack.credentials, 300)
    wait_for(lambda: 'will retry' in stack.consumer.log.read_text(), 60,
             'in flight')
    assert stack.consumer.stop() == 0
    assert 'returned to the queue' in stack.consumer.log.read_text()
    assert boots.depth(stack.broker, QUEUE) == 1
    stack.ironic.start()


def test_enroll_applier_is_idempotent(stack, tmp_path):
    config = write_config(tmp_path / 'enroll.conf', stack.broker,
                          f'sqlite:///{tmp_path}/hwbus.sqlite',
                          stack.ironic.url, CONSUMER_PASSWORD,
                          appliers='enroll',
                          extra='\n[enroll]\ndriver = fake-hardware\n'
                                'traits = CUSTOM_HWBUS\n')
    consumer = ConsumerProcess(config, tmp_path / 'enroll.log').start()
    try:
        issued, _ = boots.boot(stack.credentials, 400, machine='dell-r740')
        mac = boots.mac_for(400)
        node_id = _wait_nodes(stack.ironic, [mac])[mac]
        wait_for(lambda: stack.store.get(
            issued.credential.boot_id).state == State.APPLIED.value, 60,
            'applied')
        node = stack.ironic.get(f'/v1/nodes/{node_id}')
        assert node['properties']['capabilities'].count('cpu_') == 5
        assert node['properties']['memory_mb'] == 65536
        assert node['properties']['cpu_arch'] == 'x86_64'
        assert 'boot_mode:uefi' in node['properties']['capabilities']
        assert node['extra']['system_serial']
        traits = stack.ironic.get(f'/v1/nodes/{node_id}/traits')['traits']
        assert traits == ['CUSTOM_HWBUS']
        before = node['updated_at']
        # The same hardware boots again: found by MAC, nothing written.
        issued2, _ = boots.boot(stack.credentials, 400, machine='dell-r740')
        wait_for(lambda: stack.store.get(
            issued2.credential.boot_id).state == State.APPLIED.value, 60,
            'second applied')
        assert len(stack.ironic.nodes()) == 1
        assert stack.ironic.get(f'/v1/nodes/{node_id}')['updated_at'] == \
            before
    finally:
        consumer.stop()


def test_archive_keeps_the_signed_body(stack):
    stack.consumer.start()
    _issued, sealed = boots.boot(stack.credentials, 500)
    wait_for(lambda: stack.store.inventories(limit=5), 60, 'archived')
    [archived] = stack.store.inventories(limit=5)
    assert archived.body == sealed.body
    opened = envelope.open(
        archived.body,
        {'content_type': 'application/json',
         'content_encoding': archived.content_encoding,
         'user_id': archived.user_id, 'message_id': archived.message_id,
         'headers': {envelope.HEADER_BOOT: archived.boot_id,
                     envelope.HEADER_SIGNATURE: archived.signature}},
        lambda h: stack.store.by_username(h.user_id).public_key)
    assert json.dumps(opened.inventory)


def _manage(config, *args):
    import subprocess
    import sys

    from hwbus.localstack.consumer import BIN
    del sys
    return subprocess.run([str(BIN / 'hwbus-manage'), '--config-file',
                           str(config), *args], capture_output=True,
                          text=True, timeout=120)


def test_dead_letters_are_listed_replayed_and_purged(stack, tmp_path):
    url = f'sqlite:///{tmp_path}/hwbus.sqlite'
    strict = write_config(tmp_path / 'strict.conf', stack.broker, url,
                          stack.ironic.url, CONSUMER_PASSWORD,
                          appliers='enroll',
                          extra='\n[enroll]\ncreate_nodes = false\n'
                                'driver = fake-hardware\n')
    lenient = write_config(tmp_path / 'lenient.conf', stack.broker, url,
                           stack.ironic.url, CONSUMER_PASSWORD,
                           appliers='enroll',
                           extra='\n[enroll]\ndriver = fake-hardware\n')
    consumer = ConsumerProcess(strict, tmp_path / 'strict.log').start()
    try:
        issued, sealed = boots.boot(stack.credentials, 600)
        forged = stack.credentials.issue(mac=boots.mac_for(601))
        body = b'{}'
        other, _ = keys.new_keypair()
        boots.publish_raw(forged, body, boots.signed_properties(
            forged, body, key=keys.private_key(other)))
        wait_for(lambda: boots.depth(stack.broker, DEAD) == 2, 60,
                 'two dead letters')
    finally:
        consumer.stop()
    listing = _manage(strict, 'dead', 'list', '--format', 'json')
    assert listing.returncode == 0, listing.stderr
    reasons = {r['message_id']: r['reason']
               for r in json.loads(listing.stdout)}
    assert reasons[sealed.message_id] == 'node-not-found'
    assert sorted(reasons.values()) == ['bad-signature', 'node-not-found']
    assert boots.depth(stack.broker, DEAD) == 2  # listing keeps them
    shown = _manage(strict, 'dead', 'show', sealed.message_id)
    assert json.loads(shown.stdout)[0]['detail']
    # The cause is fixed (enrolment on): the replay is verified and applied.
    replay = _manage(lenient, 'dead', 'replay', '--reason', 'node-not-found')
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert f'{sealed.message_id}: applied' in replay.stdout
    _wait_nodes(stack.ironic, [boots.mac_for(600)])
    assert stack.store.get(issued.credential.boot_id).state == 'applied'
    # A forged one is never applied on replay (only its digest was kept,
    # and its credential ended with the refusal), and can be purged.
    again = _manage(lenient, 'dead', 'replay', '--all')
    assert 'dead body-not-kept' in again.stdout
    assert stack.store.get(forged.credential.boot_id).state == 'revoked'
    assert forged.credential.username not in stack.broker.users()
    purge = _manage(lenient, 'dead', 'purge', '--reason', 'bad-signature')
    assert 'purged 1' in purge.stdout
    assert boots.depth(stack.broker, DEAD) == 0


def test_history_names_what_changed_and_replay_reapplies(stack, tmp_path):
    # A known node that is not being inspected: the enroll applier.
    config = write_config(tmp_path / 'enroll.conf', stack.broker,
                          f'sqlite:///{tmp_path}/hwbus.sqlite',
                          stack.ironic.url, CONSUMER_PASSWORD,
                          appliers='enroll',
                          extra='\n[enroll]\ndriver = fake-hardware\n')
    stack.config = config
    stack.consumer = ConsumerProcess(config, tmp_path / 'enroll.log').start()
    mac = boots.mac_for(700)
    first, _ = boots.boot(stack.credentials, 700, machine='dell-r740')
    node = _wait_nodes(stack.ironic, [mac])[mac]
    wait_for(lambda: len(stack.store.inventories(node=node)) == 1, 60,
             'first archived')
    # The same machine, a DIMM pulled and a disk swapped.
    doc = boots.document('dell-r740', mac)
    devices = doc['plugin_data']['dmi']['memory']['devices']
    pulled = devices.pop(0)['locator']
    doc['inventory']['disks'][1]['serial'] = 'NEWDISK0001'
    issued = stack.credentials.issue(mac=mac)
    sealed = envelope.seal(boot_id=issued.params.boot_id,
                           user=issued.params.user,
                           key=keys.private_key(issued.params.key),
                           inventory=doc['inventory'],
                           plugin_data=doc['plugin_data'])
    from hwbus.ramdisk import publisher
    publisher.publish(sealed, issued.params, deadline=30)
    wait_for(lambda: len(stack.store.inventories(node=node)) == 2, 60,
             'second archived')
    out = _manage(stack.config, 'history', '--node', node).stdout
    assert f'dimm {pulled} gone' in out
    assert 'disk NEWDISK0001 added' in out
    assert 'hardware of node' in stack.consumer.log.read_text()
    replay = _manage(stack.config, 'replay', '--node', node)
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert 'applied' in replay.stdout
    assert len(stack.store.inventories(node=node)) == 2
    del first


def test_two_consumers_on_one_postgresql_store_apply_each_boot_once(
        broker, clean_ironic, postgres, tmp_path):
    import sqlalchemy as sa

    engine = sa.create_engine(postgres.url)
    with engine.begin() as connection:
        for table in ('inventories', 'credentials', 'alembic_version'):
            connection.execute(sa.text(f'DROP TABLE IF EXISTS {table}'))
    engine.dispose()
    store = Store(postgres.url)
    credentials = credentials_for(broker, store)
    boots.get_all(broker, QUEUE)
    boots.get_all(broker, DEAD)
    consumers = [
        ConsumerProcess(write_config(
            tmp_path / f'c{n}.conf', broker, postgres.url, clean_ironic.url,
            CONSUMER_PASSWORD, appliers='enroll',
            extra='\n[enroll]\ndriver = fake-hardware\n'),
            tmp_path / f'c{n}.log').start()
        for n in range(2)]
    try:
        for i in range(30):
            boots.boot(credentials, 800 + i)
        macs = [boots.mac_for(800 + i) for i in range(30)]
        _wait_nodes(clean_ironic, macs, timeout=180)
        wait_for(lambda: store.count([State.APPLIED]) == 30, 60,
                 'all applied')
    finally:
        for consumer in consumers:
            consumer.stop()
    assert len(clean_ironic.nodes()) == 30
    assert len(store.inventories(limit=100)) == 30
    logs = [c.log.read_text().count('applied message') for c in consumers]
    assert sum(logs) == 30 and all(logs), logs  # both took a share
    assert boots.get_all(broker, DEAD) == []


def test_notifications_are_sent_on_the_message_bus(stack, tmp_path):
    import pika

    rabbit = stack.broker
    url = (f'rabbit://{rabbit.admin_user}:{rabbit.admin_password}@'
           f'127.0.0.1:{rabbit.amqp_port}/')
    config = write_config(
        tmp_path / 'notify.conf', rabbit, f'sqlite:///{tmp_path}/n.sqlite',
        stack.ironic.url, CONSUMER_PASSWORD,
        extra=f'\n[notifications]\ndriver = messagingv2\n'
              f'transport_url = {url}\ntopics = hwbus_test\n')
    connection = pika.BlockingConnection(pika.URLParameters(rabbit.amqp_url))
    channel = connection.channel()
    channel.queue_declare('hwbus_test.info')
    channel.queue_declare('hwbus_test.warn')
    channel.queue_purge('hwbus_test.info')
    channel.queue_purge('hwbus_test.warn')
    store = Store(f'sqlite:///{tmp_path}/n.sqlite')
    credentials = credentials_for(rabbit, store)
    stack.consumer = ConsumerProcess(config, tmp_path / 'n.log').start()
    boots.boot(credentials, 900)
    bad = credentials.issue(mac=boots.mac_for(901))
    boots.publish_raw(bad, b'{}', boots.signed_properties(
        bad, b'{}', key=keys.private_key(keys.new_keypair()[0])))
    got = {}

    def check():
        for queue in ('hwbus_test.info', 'hwbus_test.warn'):
            method, _, body = channel.basic_get(queue, auto_ack=True)
            if method:
                message = json.loads(json.loads(body)['oslo.message'])
                got[message['event_type']] = message['payload']
        return len(got) == 2

    wait_for(check, 60, 'notifications')
    connection.close()
    applied = got['baremetal.hwbus.inventory.applied']
    assert applied['node'] and applied['boot_id']
    rejected = got['baremetal.hwbus.inventory.rejected']
    assert rejected['reason'] == 'bad-signature'


def test_a_message_that_keeps_failing_is_dead_lettered_not_lost(
        stack, tmp_path):
    """retry_window 0: each failure returns the message to the queue at
    once, so the quorum queue's delivery limit is reached quickly."""
    stack.ironic.stop()
    config = write_config(tmp_path / 'impatient.conf', stack.broker,
                          f'sqlite:///{tmp_path}/hwbus.sqlite',
                          stack.ironic.url, CONSUMER_PASSWORD,
                          extra='\n[consumer]\nretry_window = 0\n')
    stack.consumer = ConsumerProcess(config, tmp_path / 'i.log').start()
    try:
        _, sealed = boots.boot(stack.credentials, 1000)
        dead = []
        wait_for(lambda: dead.extend(boots.get_all(stack.broker, DEAD))
                 or dead, 120, 'the dead letter')
        [(props, body)] = dead
        assert props.message_id == sealed.message_id
        assert body == sealed.body
        # The broker dead-lettered it; the consumer sorted it (Topology.
        # bindings) into the dead-letter queue, body kept for a replay.
        assert props.headers['x-hwbus-dead-reason'] == 'delivery_limit'
        assert boots.depth(stack.broker, QUEUE) == 0
        assert boots.depth(stack.broker, DEAD + '.broker') == 0
    finally:
        stack.ironic.start()


def test_the_consumer_reconnects_after_a_broker_restart(
        clean_ironic, tmp_path):
    from hwbus.broker import topology
    from hwbus.localstack.rabbitmq import RabbitMQServer
    from tests.functional.conftest import management_for

    server = RabbitMQServer(tmp_path / 'rabbitmq').start()
    consumer = None
    try:
        topology.setup(management_for(server), topology.Topology(),
                       CONSUMER_PASSWORD)
        url = f'sqlite:///{tmp_path}/hwbus.sqlite'
        store = Store(url)
        credentials = credentials_for(server, store)
        config = write_config(tmp_path / 'hwbus.conf', server, url,
                              clean_ironic.url, CONSUMER_PASSWORD)
        consumer = ConsumerProcess(config, tmp_path / 'c.log').start()
        boots.boot(credentials, 1100)
        _wait_nodes(clean_ironic, [boots.mac_for(1100)])
        server.restart(down_for=3)
        wait_for(lambda: 'broker connection lost' in consumer.log.read_text(),
                 30, 'the consumer noticing')
        boots.boot(credentials, 1101)
        _wait_nodes(clean_ironic, [boots.mac_for(1101)], timeout=120)
        assert consumer.proc.poll() is None
    finally:
        if consumer is not None:
            consumer.stop()
        server.stop()
