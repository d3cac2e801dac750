"""hwbus-manage and hwbus-ramdisk as an operator runs them, on a real broker.

The commands run as subprocesses with a configuration file, exactly as
installed; the ramdisk collects a recorded machine (--root) so that what
arrives on the queue can be compared with a hand-checked inventory.
"""

import json
import pathlib
import subprocess
import sys
import textwrap
import time

import pika
import pytest

from hwbus import bootparams, envelope
from hwbus.broker import topology
from hwbus.localstack.consumer import write_config as consumer_config
from hwbus.localstack.rabbitmq import RabbitMQServer
from hwbus.store import Store
from tests.functional import boots
from tests.functional.conftest import CONSUMER_PASSWORD, management_for

BIN = pathlib.Path(sys.executable).parent
MACHINE = (pathlib.Path(__file__).parents[1] / 'fixtures' / 'machines'
           / 'qemu-guest')
MAC = '52:54:00:12:34:56'


def write_config(path, server, db):
    """The shared test configuration, with a SQLite store at db."""
    return consumer_config(path, server, f'sqlite:///{db}', None,
                           CONSUMER_PASSWORD)


def manage(config, *args, check=True):
    result = subprocess.run(
        [str(BIN / 'hwbus-manage'), '--config-file', str(config), *args],
        capture_output=True, text=True, timeout=120)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def ramdisk(cmdline, *args, **kwargs):
    return subprocess.run(
        [str(BIN / 'hwbus-ramdisk'), '--cmdline', cmdline, '--root',
         str(MACHINE), '--after', 'none', '--debug', *args],
        capture_output=True, text=True, timeout=300, **kwargs)


def drain(server):
    return boots.get_all(server, 'hwbus.inventory')


def properties(props):
    return {'content_type': props.content_type,
            'content_encoding': props.content_encoding,
            'user_id': props.user_id, 'message_id': props.message_id,
            'headers': props.headers}


@pytest.fixture
def config(broker, tmp_path):
    drain(broker)
    yield write_config(tmp_path / 'hwbus.conf', broker,
                       tmp_path / 'hwbus.sqlite')
    drain(broker)


def test_setup_broker_is_idempotent_and_matches_its_definitions(
        config, broker):
    for _ in range(2):
        out = manage(config, 'setup-broker').stdout
        assert 'quorum queues hwbus.inventory' in out
    queue = broker.api('GET', '/api/queues/%2F/hwbus.inventory').json()
    assert queue['type'] == 'quorum'
    assert queue['arguments']['x-delivery-limit'] == 20
    assert queue['arguments']['x-dead-letter-exchange'] == 'hwbus.dead'
    definitions = json.loads(
        manage(config, 'setup-broker', '--print-definitions').stdout)
    # The broker takes its own topology back unchanged.
    response = broker.api('POST', '/api/definitions', json=definitions)
    assert response.status_code in (200, 201, 204), response.text
    # The consumer's user logs in with the password from the file's hash.
    url = (f'amqp://hwbus-consumer:{CONSUMER_PASSWORD}@127.0.0.1:'
           f'{broker.amqp_port}/%2F')
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    channel.basic_get('hwbus.inventory')  # may read
    with pytest.raises(pika.exceptions.ChannelClosedByBroker):
        channel.queue_declare('consumer-may-not-configure')
    connection.close()


def test_setup_broker_removes_the_dead_letter_binding_of_older_versions(
        config, broker):
    """Older versions bound the dead-letter queue to every routing key,
    so the broker's own dead letters (expired ones with their bodies)
    went straight there: check names that binding, setup-broker removes
    it and binds the broker's dead-letter queue instead."""
    manage(config, 'setup-broker')
    old = '/api/bindings/%2F/e/hwbus.dead/q/hwbus.inventory.dead'
    assert broker.api('POST', old, json={'routing_key': '#'}).ok

    def topology_line() -> str:
        out = subprocess.run(
            [str(BIN / 'hwbus-manage'), '--config-file', str(config),
             'check'], capture_output=True, text=True, timeout=120).stdout
        return next(line for line in out.splitlines()
                    if 'broker topology' in line)

    line = topology_line()
    assert line.startswith('FAIL') and 'left from an older setup' in line
    assert 'hwbus.dead → hwbus.inventory.dead (#)' in line
    manage(config, 'setup-broker')
    keys = {b['routing_key'] for b in broker.api('GET', old).json()}
    assert keys == {'*'}
    broker_dead = broker.api(
        'GET', '/api/bindings/%2F/e/hwbus.dead/q/hwbus.inventory.dead.broker')
    assert {b['routing_key'] for b in broker_dead.json()} == {'inventory.#'}
    assert topology_line().startswith('OK')


def test_issue_then_ramdisk_publishes_a_verifiable_inventory(config, broker):
    issued = json.loads(manage(config, 'issue', '--mac', MAC, '--ttl', '30m',
                               '--format', 'json').stdout)
    assert issued['mac'] == MAC and issued['state'] == 'issued'
    result = ramdisk(issued['kernel_params'])
    assert result.returncode == 0, result.stderr
    assert 'confirmed message' in result.stderr
    [(props, body)] = drain(broker)
    store = Store(f'sqlite:///{config.parent}/hwbus.sqlite')
    opened = envelope.open(
        body, properties(props),
        lambda h: store.by_username(h.user_id).public_key)
    expected = json.loads((MACHINE / 'expected.json').read_text())
    assert opened.inventory == expected['inventory']
    assert opened.header.boot_id == issued['boot_id']
    listing = json.loads(manage(config, 'credentials', 'list', '--format',
                                'json').stdout)
    assert [row['boot_id'] for row in listing] == [issued['boot_id']]


def test_formats_of_issue(config):
    cmdline = manage(config, 'issue', '--mac', MAC).stdout.strip()
    assert bootparams.parse(cmdline).after == 'none'
    ipxe = manage(config, 'issue', '--node', 'node-7', '--format',
                  'ipxe').stdout
    assert ipxe.startswith('#!ipxe\n') and 'set hwbus_args hwbus.url=' in ipxe
    bad = manage(config, 'issue', '--mac', 'not-a-mac', check=False)
    assert bad.returncode == 1 and 'not a MAC address' in bad.stderr


def test_the_publisher_survives_a_broker_restart_in_its_retry_window(
        tmp_path):
    server = RabbitMQServer(tmp_path / 'rabbitmq').start()
    try:
        topology.setup(management_for(server), topology.Topology(),
                       CONSUMER_PASSWORD)
        config = write_config(tmp_path / 'hwbus.conf', server,
                              tmp_path / 'hwbus.sqlite')
        cmdline = manage(config, 'issue', '--mac', MAC).stdout.strip()
        server.stop()
        log = (tmp_path / 'ramdisk.log').open('w+')
        proc = subprocess.Popen(
            [str(BIN / 'hwbus-ramdisk'), '--cmdline', cmdline, '--root',
             str(MACHINE), '--after', 'none', '--deadline', '240'],
            stdout=subprocess.DEVNULL, stderr=log, text=True)
        deadline = time.monotonic() + 60
        while (log_text := (tmp_path / 'ramdisk.log').read_text()).count(
                'retrying') < 2:
            assert proc.poll() is None, log_text
            assert time.monotonic() < deadline, log_text
            time.sleep(0.5)
        server.start()
        assert proc.wait(timeout=240) == 0, (tmp_path /
                                             'ramdisk.log').read_text()
        text = (tmp_path / 'ramdisk.log').read_text()
        assert 'confirmed message' in text
        assert len(drain(server)) == 1
    finally:
        server.stop()


def test_nothing_secret_in_any_log_or_exception_text(config, broker,
                                                     tmp_path):
    issued = json.loads(manage(config, 'issue', '--mac', MAC, '--format',
                               'json').stdout)
    params = bootparams.parse(issued['kernel_params'])
    password = params.urls[0].split(':')[2].split('@')[0]
    secrets = {password, params.key, broker.admin_password,
               CONSUMER_PASSWORD}
    texts = []
    # A good publish, at debug level, pika's own logging included.
    ok = ramdisk(issued['kernel_params'])
    assert ok.returncode == 0
    texts += [ok.stdout, ok.stderr]
    # The same command line once revoked: refused, and said why.
    revoked = manage(config, 'credentials', 'revoke', issued['boot_id'])
    texts += [revoked.stdout, revoked.stderr]
    refused = ramdisk(issued['kernel_params'], '--deadline', '5')
    assert refused.returncode == 1
    assert 'refused this boot\'s credential' in refused.stderr
    texts += [refused.stdout, refused.stderr]
    # hwbus-manage failing against a broker that refuses its password.
    bad = write_config(tmp_path / 'bad.conf', broker, tmp_path / 'x.sqlite')
    bad.write_text(bad.read_text().replace(broker.admin_password,
                                           'wrong-admin-password'))
    failed = manage(bad, 'issue', '--mac', MAC, check=False)
    assert failed.returncode == 1 and '401' in failed.stderr
    texts += [failed.stdout, failed.stderr]
    texts += [manage(config, 'credentials', 'sweep').stderr]
    # And the broker's own log.
    texts.append(broker.log.read_text(errors='replace'))
    for text in texts:
        for secret in secrets:
            assert secret not in text


def test_issue_for_a_known_node_writes_its_kernel_parameters(
        config, clean_ironic):
    from hwbus.store import Store

    text = config.read_text() + textwrap.dedent(f'''
        [ironic]
        auth_type = none
        endpoint_override = {clean_ironic.url}
        ''')
    config.write_text(text)
    node = clean_ironic.post('/v1/nodes', {
        'driver': 'fake-hardware', 'name': 'known-1',
        'driver_info': {'kernel_append_params': 'nofb hwbus.boot=old'}})
    assert node.status_code == 201, node.text
    out = manage(config, 'issue', '--node', 'known-1', '--write-node')
    assert 'driver_info/kernel_append_params' in out.stdout
    params = clean_ironic.get('/v1/nodes/known-1')['driver_info'][
        'kernel_append_params']
    assert params.startswith('nofb hwbus.url=amqp://boot-')
    assert 'hwbus.boot=old' not in params
    parsed = bootparams.parse(params)
    store = Store(f'sqlite:///{config.parent}/hwbus.sqlite')
    record = store.get(parsed.boot_id)
    assert record.node == 'known-1' and record.username == parsed.user
    # Nothing secret on standard output.
    assert parsed.key not in out.stdout + out.stderr
