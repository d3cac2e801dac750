"""Kernel parameters, the publish loop and the ramdisk program, with fakes.

The real broker is in tests/functional; here the publish attempts are
replaced so that every branch of the retry loop runs in milliseconds.
"""

import base64
import hashlib
import json
import pathlib
import zlib

import pika.exceptions as pe
import pytest

from hwbus import bootparams, envelope, keys
from hwbus.broker import topology
from hwbus.cmd.manage.issue import parse_duration
from hwbus.credentials import BadMac, normalize_mac
from hwbus.ramdisk import main, publisher

MACHINE = (pathlib.Path(__file__).parents[1] / 'fixtures' / 'machines'
           / 'qemu-guest')
SEED, PUBLIC = keys.new_keypair()
PASSWORD = 'S3cr3t-password-value_0123456789abcdefghijk'
CMDLINE = (f'BOOT_IMAGE=/vmlinuz hwbus.url=amqp://boot-0123456789abcdef0123:'
           f'{PASSWORD}@10.0.0.1:5672/%2F,amqps://10.0.0.2:5671/%2F '
           f'hwbus.boot=0123abcd hwbus.key={SEED} hwbus.after=none '
           f'hwbus.deadline=30 quiet')


def test_parse_and_render_round_trip():
    params = bootparams.parse(CMDLINE)
    assert params.user == 'boot-0123456789abcdef0123'
    assert params.after == 'none' and params.deadline == 30
    assert bootparams.parse(params.render()) == params
    second = params.connection_urls()[1]
    assert second.startswith('amqps://boot-0123456789abcdef0123:')
    assert second.endswith('@10.0.0.2:5671/%2F')


@pytest.mark.parametrize('cmdline, words', [
    ('quiet', 'hwbus.url, hwbus.boot, hwbus.key'),
    ('hwbus.url=http://x/ hwbus.boot=1 hwbus.key=k', 'amqp'),
    ('hwbus.url=amqp://host/ hwbus.boot=1 hwbus.key=k', 'no user'),
    (CMDLINE.replace('after=none', 'after=explode'), 'after must be'),
    (CMDLINE.replace('deadline=30', 'deadline=soon'), 'seconds'),
])
def test_bad_parameters_are_named_but_not_echoed(cmdline, words):
    with pytest.raises(bootparams.BadBootParams) as info:
        bootparams.parse(cmdline)
    assert words in str(info.value)
    assert PASSWORD not in str(info.value) and SEED not in str(info.value)


def test_redact():
    url = bootparams.parse(CMDLINE).connection_urls()[0]
    assert bootparams.redact(url) == \
        'amqp://boot-0123456789abcdef0123:***@10.0.0.1:5672/%2F'
    assert bootparams.redact('amqp://h:1/') == 'amqp://h:1/'


@pytest.mark.parametrize('text, want', [
    ('52:54:00:AB:CD:EF', '52:54:00:ab:cd:ef'),
    ('52-54-00-ab-cd-ef', '52:54:00:ab:cd:ef'),
    ('525400abcdef', '52:54:00:ab:cd:ef'),
])
def test_macs_are_normalized(text, want):
    assert normalize_mac(text) == want


@pytest.mark.parametrize('text', ['', 'zz:54:00:ab:cd:ef', '52:54:00:ab:cd',
                                  '01:00:5e:00:00:01', 'x' * 1000])
def test_bad_macs(text):
    with pytest.raises(BadMac):
        normalize_mac(text)


@pytest.mark.parametrize('text, seconds', [('90', 90), ('90s', 90),
                                           ('30m', 1800), ('2h', 7200),
                                           ('1d', 86400)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


def test_definitions_password_hash_is_rabbitmqs():
    salt = b'\x01\x02\x03\x04'
    got = base64.b64decode(topology.password_hash('pw', salt))
    assert got == salt + hashlib.sha256(salt + b'pw').digest()
    text = json.dumps(topology.definitions(topology.Topology(), 'pw'))
    assert '"pw"' not in text


def test_boot_permissions_admit_only_the_inventory_exchange():
    perms = topology.Topology().boot_permissions()
    assert perms == {'configure': '^$', 'write': r'^hwbus\.inventory$',
                     'read': '^$'}


# -- the publish loop ----------------------------------------------------
class Script:
    """Stands in for one publish attempt each call, from a list."""

    def __init__(self, outcomes):
        self.outcomes = list(outcomes)
        self.urls = []

    def __call__(self, url, sealed, exchange, ca, name):
        self.urls.append(url)
        outcome = self.outcomes.pop(0)
        if outcome is not None:
            raise outcome


class Clock:
    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def _sealed(params):
    return envelope.seal(boot_id=params.boot_id, user=params.user,
                         key=keys.private_key(params.key), inventory={},
                         plugin_data={})


def _publish(monkeypatch, outcomes, deadline=30):
    params = bootparams.parse(CMDLINE)
    script, clock = Script(outcomes), Clock()
    monkeypatch.setattr(publisher, '_attempt', script)
    try:
        return publisher.publish(_sealed(params), params, deadline=deadline,
                                 sleep=clock.sleep, clock=clock), script, \
            clock
    except Exception as exc:
        exc.script, exc.clock = script, clock
        raise


def test_retries_transient_failures_round_robin(monkeypatch):
    result, script, clock = _publish(monkeypatch, [
        pe.AMQPConnectionError('refused'), pe.StreamLostError('lost'),
        pe.UnroutableError([]), pe.NackError([]), None])
    assert result.attempts == 5
    assert [u.split('@')[1] for u in script.urls] == [
        '10.0.0.1:5672/%2F', '10.0.0.2:5671/%2F'] * 2 + ['10.0.0.1:5672/%2F']
    assert len(clock.sleeps) == 4
    assert all(0 < s <= publisher.MAX_BACKOFF for s in clock.sleeps)
    assert PASSWORD not in result.url


def test_an_auth_failure_is_final_at_once(monkeypatch):
    with pytest.raises(publisher.Refused, match='credential') as info:
        _publish(monkeypatch, [pe.ProbableAuthenticationError('x')])
    assert len(info.value.script.urls) == 1


def test_a_denied_routing_key_is_final(monkeypatch):
    with pytest.raises(publisher.Refused, match='denied'):
        _publish(monkeypatch, [pe.ChannelClosedByBroker(403, 'ACCESS')])


class _Connection:
    """pika.BlockingConnection whose broker deletes the user at a step."""

    is_open = False

    def __init__(self, step):
        self.step = step

    def _maybe_close(self, step):
        if step == self.step:
            raise pe.ConnectionClosedByBroker(
                320, "CONNECTION_FORCED - user 'boot-x' is deleted")

    def channel(self):
        self._maybe_close('channel')
        return self

    def confirm_delivery(self):
        pass

    def basic_publish(self, *args, **kwargs):
        self._maybe_close('publish')


def test_the_user_deleted_while_awaiting_the_confirm_means_received(
        monkeypatch):
    params = bootparams.parse(CMDLINE)
    monkeypatch.setattr(publisher.pika, 'BlockingConnection',
                        lambda *a, **k: _Connection('publish'))
    result = publisher.publish(_sealed(params), params, deadline=5)
    assert result.confirmed is False and result.attempts == 1


def test_the_user_deleted_before_the_publish_is_no_delivery(monkeypatch):
    params = bootparams.parse(CMDLINE)
    clock = Clock()
    monkeypatch.setattr(publisher.pika, 'BlockingConnection',
                        lambda *a, **k: _Connection('channel'))
    with pytest.raises(publisher.DeadlineExceeded, match='deleted'):
        publisher.publish(_sealed(params), params, deadline=5,
                          sleep=clock.sleep, clock=clock)


def test_gives_up_at_the_deadline(monkeypatch):
    with pytest.raises(publisher.DeadlineExceeded) as info:
        _publish(monkeypatch, [OSError('unreachable')] * 1000, deadline=60)
    assert info.value.clock.now <= 60 + 0.1
    assert max(info.value.clock.sleeps) <= publisher.MAX_BACKOFF


def test_the_program_publishes_a_recorded_machine(monkeypatch):
    sent = []
    monkeypatch.setattr(publisher, '_attempt',
                        lambda url, sealed, *a: sent.append(sealed))
    actions = []
    monkeypatch.setattr(main.after, 'do', actions.append)
    assert main.run(CMDLINE, root=str(MACHINE)) == 0
    assert actions == ['none']
    [sealed] = sent
    opened = envelope.open(sealed.body, sealed.properties,
                           lambda h: PUBLIC)
    expected = json.loads((MACHINE / 'expected.json').read_text())
    assert opened.inventory == expected['inventory']
    assert opened.error is None


def test_a_broken_collection_still_sends_a_signed_report(monkeypatch):
    sent = []
    monkeypatch.setattr(publisher, '_attempt',
                        lambda url, sealed, *a: sent.append(sealed))
    monkeypatch.setattr(main.after, 'do', lambda action: None)

    def explode(*args, **kwargs):
        raise RuntimeError('the collector framework broke')

    monkeypatch.setattr(main.runner, 'collect', explode)
    assert main.run(CMDLINE, root=str(MACHINE)) == 0
    opened = envelope.open(sent[0].body, sent[0].properties,
                           lambda h: PUBLIC)
    assert opened.error['stage'] == 'collect'
    assert 'framework broke' in opened.error['message']


def test_an_oversize_document_sheds_plugin_data_first():
    params = bootparams.parse(CMDLINE)
    document = {'inventory': {'cpu': {'count': 1}},
                'plugin_data': {'blob': 'x' * 50000, 'errors': []}}
    sealed = main.seal(document, None, params, max_size=20000)
    body = json.loads(zlib.decompress(sealed.body, 31))
    assert body['inventory'] == {'cpu': {'count': 1}}
    assert body['plugin_data'] == {'errors': []}
    assert body['error']['stage'] == 'seal'


def test_bad_parameters_exit_2_without_publishing(monkeypatch):
    monkeypatch.setattr(publisher, '_attempt', pytest.fail)
    assert main.run('quiet') == main.EXIT_BAD_PARAMS
    assert main.run(CMDLINE.replace(SEED, 'AAAA')) == main.EXIT_BAD_PARAMS


def test_hwbus_ca_pins_the_broker_ca_from_the_cmdline(tmp_path):
    import ssl

    from hwbus.localstack.tls import CA

    der = CA('hwbus CA').der
    text = keys.b64encode(der)
    assert len(text) < 700  # fits the kernel command line
    context = publisher.ssl_context(text)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert [c['subject'] for c in context.get_ca_certs()] == [
        ((('commonName', 'hwbus CA'),),)]
    pem = tmp_path / 'ca.pem'
    pem.write_text(ssl.DER_cert_to_PEM_cert(der))
    assert len(publisher.ssl_context(str(pem)).get_ca_certs()) == 1
    params = publisher.connection_parameters(
        'amqps://u:p@broker.example:5671/%2F', text, 'x')
    assert params.ssl_options.server_hostname == 'broker.example'
