"""Every operator command says what really happened.

Against the real broker, store and Ironic, as an operator runs the
commands: each wrong answer found by trying them is reproduced here and
must now be the truth, and each error is one line naming its fix, with
the exit status to match (the configuration has ``debug = false``: a
traceback is for ``--debug`` only).
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess

import pytest

from hwbus.localstack.common import free_port, wait_for
from hwbus.localstack.consumer import BIN, ConsumerProcess, write_config
from hwbus.store import State, Store
from tests.functional import boots
from tests.functional.conftest import (
    CONSUMER_PASSWORD,
    DEAD,
    credentials_for,
)

NUMBERS = itertools.count(7000)


def _config(path, broker, url, ironic_url, password=CONSUMER_PASSWORD,
            **kwargs):
    """write_config, without debug: what an operator runs."""
    config = write_config(path, broker, url, ironic_url, password, **kwargs)
    config.write_text(config.read_text().replace('debug = true',
                                                 'debug = false'))
    return config


def _run(command: str, *args, config=None, **kwargs):
    argv = [str(BIN / command)]
    if config is not None:
        argv += ['--config-file', str(config)]
    return subprocess.run([*argv, *args], capture_output=True, text=True,
                          timeout=120, **kwargs)


def _one_line(result) -> str:
    """The command's error: exactly one line, no traceback."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and 'Traceback' not in result.stderr, \
        result.stderr
    return lines[0]


@pytest.fixture
def site(broker, clean_ironic, consumers, tmp_path):
    url = f'sqlite:///{tmp_path}/hwbus.sqlite'
    images = tmp_path / 'images'
    images.mkdir()
    for name in ('vmlinuz', 'initramfs.zst'):
        (images / name).write_bytes(b'image')

    class Site:
        pass

    s = Site()
    s.broker, s.ironic, s.tmp, s.url = broker, clean_ironic, tmp_path, url
    s.store = Store(url)
    s.credentials = credentials_for(broker, s.store)
    s.config = _config(tmp_path / 'hwbus.conf', broker, url,
                       clean_ironic.url,
                       extra=f'\n[bootserver]\nimage_dir = {images}\n')
    s.consumers = consumers

    def consumer(config=None, name='consumer'):
        return consumers(config or s.config, name)

    s.consumer = consumer
    yield s
    if not clean_ironic.running:
        clean_ironic.start()


def test_check_passes_on_a_working_site_and_names_each_fix(site):
    good = _run('hwbus-manage', 'check', config=site.config)
    assert good.returncode == 0, good.stdout + good.stderr
    assert 'checks passed' in good.stdout.splitlines()[-1]
    assert all(line.startswith(('OK', 'NOTE'))
               for line in good.stdout.splitlines()[:-1])
    broken = _config(site.tmp / 'broken.conf', site.broker,
                     f'sqlite:///{site.tmp}/new.sqlite',
                     f'http://127.0.0.1:{free_port()}', password='wrong',
                     extra=f'\n[bootserver]\nimage_dir = {site.tmp}/none\n'
                           f'\n[bmc]\naccount = create\n')
    bad = _run('hwbus-manage', 'check', config=broken)
    assert bad.returncode == 1
    failed = {line.split(':')[0][6:]: line for line in bad.stdout.splitlines()
              if line.startswith('FAIL')}
    assert 'consumer_password' in failed['consumer broker login']
    assert 'hwbus-manage db upgrade' in failed['store']
    assert '[ironic] endpoint_override' in failed['Ironic API']
    assert 'tools/build-ramdisk' in failed['boot server images']
    assert 'hwbus-manage seal-key create' in failed['sealing key']
    assert bad.stdout.splitlines()[-1].startswith('5 of ')


def test_the_sealing_key_is_made_once_and_checked(site):
    """seal-key create writes a 0600 key and prints its public half,
    never overwrites one; check finds it, and an enroll hardware type
    Ironic does not have."""
    key = site.tmp / 'seal.pem'
    made = _run('hwbus-manage', 'seal-key', 'create', '--output', str(key),
                config=site.config)
    assert made.returncode == 0, made.stderr
    assert key.stat().st_mode & 0o777 == 0o600
    again = _run('hwbus-manage', 'seal-key', 'create', '--output', str(key),
                 config=site.config)
    assert again.returncode == 1
    assert 'never overwritten' in _one_line(again)
    config = _config(site.tmp / 'bmc.conf', site.broker,
                     f'sqlite:///{site.tmp}/hwbus.sqlite', site.ironic.url,
                     appliers='enroll',
                     extra=f'\n[bmc]\naccount = create\n'
                           f'\n[sealing]\nprivate_key_file = {key}\n'
                           f'\n[enroll]\ndriver = redfish\n'
                           f'\n[bootserver]\nimage_dir = {site.tmp}\n')
    shown = _run('hwbus-manage', 'seal-key', 'show', config=config)
    assert shown.stdout.strip() == made.stdout.strip()
    check = _run('hwbus-manage', 'check', config=config)
    lines = {line.split(':')[0][6:]: line for line in check.stdout.splitlines()
             if line[:4] in ('OK  ', 'FAIL', 'NOTE')}
    assert lines['sealing key'].startswith('OK'), check.stdout
    assert lines['enroll hardware type'].startswith('FAIL'), check.stdout
    assert 'enabled_hardware_types' in lines['enroll hardware type']
    mac = boots.mac_for(next(NUMBERS))
    issued = _run('hwbus-manage', 'issue', '--mac', mac, '--bmc', 'create',
                  config=config)
    assert issued.returncode == 0, issued.stderr
    assert 'hwbus.bmc=create' in issued.stdout
    assert f'hwbus.seal={made.stdout.strip()}' in issued.stdout
    keyless = _run('hwbus-manage', 'issue', '--mac', mac, '--bmc', 'create',
                   config=site.config)
    assert keyless.returncode == 1
    assert 'seal-key create' in _one_line(keyless)


def test_replaying_a_dead_letter_reaches_ironic_or_says_it_did_not(site):
    """A node-not-found dead letter replayed while the node is still
    missing is dead again (exit 1, kept), never "applied"; once the node
    exists and awaits inspection, the replay reaches Ironic."""
    consumer = site.consumer().start()
    mac = boots.mac_for(next(NUMBERS))
    issued = site.credentials.issue(mac=mac, node='ghost-node',
                                    after='none')
    sealed = boots.publish(issued, int(mac.replace(':', '')[-6:], 16))
    [(props, _)] = _wait_dead(site, 1)
    assert props.headers['x-hwbus-dead-reason'] == 'node-not-found'
    boots.get_all(site.broker, DEAD)
    # Put it back as it was (the listing read it off the queue).
    consumer.stop()
    boots.publish_raw  # noqa: B018 - the dead letter is re-sent below
    site.credentials.store.transition(issued.credential.boot_id,
                                      State.RECEIVED, [State.RECEIVED])
    _dead_letter_again(site, sealed)
    replay = _run('hwbus-manage', 'dead', 'replay', sealed.message_id,
                  config=site.config)
    assert replay.returncode == 1
    assert f'{sealed.message_id}: dead node-not-found' in replay.stdout
    assert boots.depth(site.broker, DEAD) == 1
    node = site.ironic.enroll('inspect wait', ports=(mac,),
                              name='ghost-node')
    replay = _run('hwbus-manage', 'dead', 'replay', sealed.message_id,
                  config=site.config)
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert f'{sealed.message_id}: applied' in replay.stdout
    wait_for(lambda: site.ironic.get(f'/v1/nodes/{node["uuid"]}')[
        'provision_state'] != 'inspect wait', 60, 'Ironic continued')
    assert boots.depth(site.broker, DEAD) == 0


def _wait_dead(site, count):
    got = []
    wait_for(lambda: got.extend(boots.get_all(site.broker, DEAD)) or
             len(got) >= count, 60, f'{count} dead letters')
    return got


def _dead_letter_again(site, sealed) -> None:
    """The dead letter, as the consumer wrote it (the test took it)."""
    import pika

    connection = pika.BlockingConnection(site.broker.pika_parameters())
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        headers = dict(sealed.properties['headers'])
        headers.update({'x-hwbus-dead-reason': 'node-not-found',
                        'x-hwbus-original-user-id':
                            sealed.properties['user_id']})
        props = {k: v for k, v in sealed.properties.items()
                 if k not in ('headers', 'user_id')}
        channel.basic_publish('hwbus.dead', 'node-not-found', sealed.body,
                              pika.BasicProperties(headers=headers, **props))
    finally:
        connection.close()


def test_issue_for_a_node_ironic_does_not_know_issues_nothing(site):
    before = len(site.store.list(limit=1000))
    result = _run('hwbus-manage', 'issue', '--node', 'nosuchnode',
                  '--write-node', config=site.config)
    assert result.returncode == 1
    assert 'Ironic knows no node nosuchnode' in _one_line(result)
    assert len(site.store.list(limit=1000)) == before
    node = site.ironic.enroll('manageable', name='known-node')
    result = _run('hwbus-manage', 'issue', '--node', 'known-node',
                  '--write-node', config=site.config)
    assert result.returncode == 0, result.stderr
    params = site.ironic.get(f'/v1/nodes/{node["uuid"]}')['driver_info'][
        'kernel_append_params']
    assert 'hwbus.url=' in params


def test_a_stopped_consumer_hands_its_message_over_at_once(site):
    """SIGTERM while Ironic is down: the message goes back with its claim
    released, so the next consumer applies it without waiting out the
    apply lease (600 s here, far beyond the wait)."""
    config = _config(site.tmp / 'lease.conf', site.broker, site.url,
                     site.ironic.url)
    config.write_text(config.read_text().replace('apply_lease = 15',
                                                 'apply_lease = 600'))
    site.ironic.stop()
    first = site.consumer(config, 'first').start()
    issued, _ = boots.boot(site.credentials, next(NUMBERS))
    wait_for(lambda: 'will retry' in first.log.read_text(), 60, 'retrying')
    assert 'ironic-unavailable' in first.log.read_text()
    assert first.stop() == 0
    assert 'of 1 messages in flight, 0 finished and 1 returned' in \
        first.log.read_text()
    site.ironic.start()
    site.consumer(config, 'second').start()
    wait_for(lambda: site.store.get(issued.credential.boot_id).state ==
             'applied', 120, 'applied by the next consumer')


def test_credentials_and_history_tell_the_truth(site):
    config = _config(site.tmp / 'enroll.conf', site.broker, site.url,
                     site.ironic.url, appliers='enroll',
                     extra='\n[enroll]\ndriver = fake-hardware\n'
                           'name_template = hwbus-{serial}\n')
    site.consumer(config, 'enroll').start()
    n = next(NUMBERS)
    mac = boots.mac_for(n)
    for _ in range(3):
        issued, _ = boots.boot(site.credentials, n, machine='dell-r740')
        wait_for(lambda i=issued: site.store.get(
            i.credential.boot_id).state == 'applied', 60, 'applied')
    [node] = [p['node_uuid'] for p in site.ironic.ports()
              if p['address'] == mac]
    name = site.ironic.get(f'/v1/nodes/{node}')['name']
    listed = json.loads(_run('hwbus-manage', 'credentials', 'list',
                             '--node', node, '--format', 'json',
                             config=config).stdout)
    assert [r['state'] for r in listed] == ['applied'] * 3
    short = _run('hwbus-manage', 'history', '--node', name, '--limit', '2',
                 config=config)
    assert short.returncode == 0, short.stderr
    assert 'first inventory' not in short.stdout
    assert short.stdout.count(' boot ') == 2
    full = _run('hwbus-manage', 'history', '--node', name, config=config)
    assert full.stdout.count('first inventory') == 1
    # An unused credential past its expiry says so before any sweep.
    expiring = _run('hwbus-manage', 'issue', '--mac', boots.mac_for(
        next(NUMBERS)), '--ttl', '1s', '--format', 'json', config=config)
    boot_id = json.loads(expiring.stdout)['boot_id']
    wait_for(lambda: [r['state'] for r in json.loads(_run(
        'hwbus-manage', 'credentials', 'list', '--format', 'json',
        config=config).stdout) if r['boot_id'] == boot_id] == ['expired'],
        30, 'shown expired')


def test_errors_are_one_line_naming_the_fix(site):
    missing = _run('hwbus-consumer', config=site.tmp / 'nope.conf')
    assert missing.returncode != 0
    assert 'configuration file not found' in _one_line(missing)
    empty = site.tmp / 'empty'  # oslo.config also looks in ~ and ~/.hwbus
    empty.mkdir()
    nothing = _run('hwbus-manage', 'credentials', 'list', cwd=empty,
                   env={**os.environ, 'HOME': str(empty)})
    assert nothing.returncode != 0
    assert 'no configuration file' in _one_line(nothing)
    wrong = _config(site.tmp / 'wrong.conf', site.broker, site.url,
                    site.ironic.url, password='wrong')
    listing = _run('hwbus-manage', 'dead', 'list', config=wrong)
    assert listing.returncode == 1
    assert 'consumer_password' in _one_line(listing)
    shown = _run('hwbus-manage', 'dead', 'show', 'nosuchid',
                 config=site.config)
    assert shown.returncode == 1
    assert 'no dead letter with message or boot id nosuchid' in \
        _one_line(shown)
    refused = ConsumerProcess(wrong, site.tmp / 'refused.log')
    refused.proc = subprocess.Popen(
        [str(BIN / 'hwbus-consumer'), '--config-file', str(wrong)],
        stdout=subprocess.DEVNULL, stderr=refused.log.open('a'))
    site.consumers.append(refused)
    wait_for(lambda: 'refused the login' in refused.log.read_text(), 60,
             'the refused login reported')
    log = refused.log.read_text()
    assert 'consumer_password' in log and 'Traceback' not in log
    assert refused.proc.poll() is None  # it keeps trying


def test_enroll_waits_for_an_unreachable_ironic_instead_of_dying(site):
    config = _config(site.tmp / 'enroll.conf', site.broker, site.url,
                     site.ironic.url, appliers='enroll',
                     extra='\n[enroll]\ndriver = fake-hardware\n')
    site.ironic.stop()
    consumer = site.consumer(config, 'enroll').start()
    issued, _ = boots.boot(site.credentials, next(NUMBERS))
    wait_for(lambda: 'will retry' in consumer.log.read_text(), 60,
             'a retry')
    log = consumer.log.read_text()
    assert 'ironic-unavailable' in log
    assert 'internal-error' not in log and 'Traceback' not in log
    site.ironic.start()
    wait_for(lambda: site.store.get(issued.credential.boot_id).state ==
             'applied', 120, 'applied once Ironic is back')


def test_hwbus_collect_into_a_closed_pipe_is_quiet():
    collect = subprocess.Popen([str(BIN / 'hwbus-collect'), '--format',
                                'yaml', '--collectors', 'cpu,memory'],
                               stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    collect.stdout.readline()
    collect.stdout.close()  # as `| head -1` does
    _, err = collect.communicate(timeout=60)
    assert b'Traceback' not in err and b'BrokenPipe' not in err
    assert collect.returncode == 0


def test_dead_purge_removes_exactly_what_it_reports(site):
    import pika

    connection = pika.BlockingConnection(site.broker.pika_parameters())
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        for i in range(15):
            reason = 'malformed' if i % 3 else 'schema'
            channel.basic_publish('hwbus.dead', reason, b'x' * i,
                                  pika.BasicProperties(
                                      message_id=f'm{i}', headers={
                                          'x-hwbus-dead-reason': reason}))
    finally:
        connection.close()
    purge = _run('hwbus-manage', 'dead', 'purge', '--reason', 'malformed',
                 config=site.config)
    assert purge.returncode == 0 and 'purged 10 dead letters' in purge.stdout
    listing = json.loads(_run('hwbus-manage', 'dead', 'list', '--format',
                              'json', config=site.config).stdout)
    assert sorted(r['reason'] for r in listing) == ['schema'] * 5
