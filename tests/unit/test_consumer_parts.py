"""Consumer pieces without servers: history, enroll's rules, LLDP, URLs."""

import copy
import json
import pathlib
import types

import pytest

from hwbus import binding
from hwbus.cmd import wiring
from hwbus.consumer import history
from hwbus.consumer.appliers import Context, enroll

MACHINES = pathlib.Path(__file__).parents[1] / 'fixtures' / 'machines'


def _doc(name='dell-r740'):
    return json.loads((MACHINES / name / 'expected.json').read_text())


def test_history_names_each_kind_of_change():
    old = _doc()
    new = copy.deepcopy(old)
    gone = new['plugin_data']['dmi']['memory']['devices'].pop(0)
    new['inventory']['memory']['physical_mb'] -= gone['size_mb']
    new['inventory']['disks'][0]['serial'] = 'REPLACED01'
    new['inventory']['interfaces'].append(
        dict(new['inventory']['interfaces'][0],
             mac_address='aa:bb:cc:dd:ee:0f', name='eth9'))
    lines = history.diff(old, new)
    assert f'dimm {gone["locator"]} gone ({gone["size_mb"]} MB ' \
        f'{gone["part_number"]} {gone["serial_number"]})' in lines
    assert any(line.startswith('memory_mb: 65536 -> 49152') for line in lines)
    assert any(line.startswith('disk REPLACED01 added') for line in lines)
    assert any(line.startswith('nic aa:bb:cc:dd:ee:0f added')
               for line in lines)
    assert history.diff(old, copy.deepcopy(old)) == []


def _context(doc, **credential):
    cred = types.SimpleNamespace(node=None, mac=None, **credential)
    return Context(boot_id='b1', message_id='m1', boot=cred,
                   inventory=doc['inventory'], plugin_data=doc['plugin_data'])


def test_properties_are_what_ironic_inspection_would_set():
    props = enroll.properties_for(_context(_doc()))
    root = _doc()['plugin_data']['root_disk']['size']
    assert props == {'cpu_arch': 'x86_64', 'memory_mb': 65536,
                     'local_gb': root // 1024 ** 3 - 1}
    # The same as the real Ironic's hooks on this very document.
    assert enroll.capabilities_for(_context(_doc())) == {
        'cpu_vt': 'true', 'cpu_aes': 'true', 'cpu_hugepages': 'true',
        'cpu_hugepages_1g': 'true', 'cpu_txt': 'true', 'boot_mode': 'uefi'}


@pytest.mark.parametrize('serial, expected', [
    ('To Be Filled By O.E.M.', None), ('Default string', None), ('', None),
    ('  CZ1234ABCD ', 'CZ1234ABCD')])
def test_placeholder_serials_are_ignored(serial, expected):
    doc = _doc()
    doc['inventory']['system_vendor']['serial_number'] = serial
    assert binding.serial_of(doc['inventory']) == expected


def test_node_names_follow_the_template_or_are_left_out():
    settings = types.SimpleNamespace(name_template='{vendor}-{serial}',
                                     states=['enroll'])
    applier = enroll.EnrollApplier(settings, types.SimpleNamespace(
        baremetal=None))
    doc = _doc()
    name = applier._name(_context(doc))
    assert name and ' ' not in name
    settings.name_template = '{nonsense}'
    assert applier._name(_context(doc)) is None


def test_consumer_urls_carry_quoted_credentials():
    conf = types.SimpleNamespace(
        broker=types.SimpleNamespace(consumer_user='hwbus-consumer',
                                     consumer_password='p@ss/word'),
        consumer=types.SimpleNamespace(broker_urls=[
            'amqp://a:5672/%2F', 'amqps://b:5671/%2F']))
    assert wiring.consumer_urls(conf) == [
        'amqp://hwbus-consumer:p%40ss%2Fword@a:5672/%2F',
        'amqps://hwbus-consumer:p%40ss%2Fword@b:5671/%2F']


def _tls_conf(*urls, ca_file=None):
    return types.SimpleNamespace(
        broker=types.SimpleNamespace(ca_file=ca_file),
        consumer=types.SimpleNamespace(broker_urls=list(urls)))


def test_amqps_urls_verify_the_broker_against_the_site_ca():
    import ssl

    assert wiring.consumer_tls(_tls_conf('amqp://a/')) is False
    options = wiring.consumer_tls(_tls_conf('amqps://a/', 'amqps://b/',
                                            ca_file='/etc/hwbus/ca.pem'))
    assert options == {'ca_certs': '/etc/hwbus/ca.pem',
                       'cert_reqs': ssl.CERT_REQUIRED,
                       'server_hostname': None}
    with pytest.raises(ValueError, match='mixes'):
        wiring.consumer_tls(_tls_conf('amqp://a/', 'amqps://b/'))


@pytest.mark.parametrize('interface, boot, expected', [
    ({'mac_address': 'aa', 'has_carrier': True}, 'aa', True),
    ({'mac_address': 'bb', 'has_carrier': True}, 'aa', False),
    ({'mac_address': 'bb', 'has_carrier': True}, None, False),
    ({'mac_address': 'bb', 'has_carrier': True, 'client_id': 'ff:00'}, None,
     False),
])
def test_only_the_boot_nic_is_pxe_enabled_as_ironic_marks_it(interface, boot,
                                                             expected):
    assert enroll.pxe_enabled(interface, boot) is expected


def test_the_reconnect_backoff_starts_over_after_a_good_connection(
        monkeypatch):
    """A connection lost at once keeps the wait growing; one that
    consumed STABLE_AFTER seconds starts it over (sixth attacker: after
    a string of losses every later blip cost 15-30 s)."""
    from hwbus.consumer import service as service_mod

    clock = [0.0]
    monkeypatch.setattr(service_mod.time, 'monotonic', lambda: clock[0])
    monkeypatch.setattr(service_mod.backoff, 'delay',
                        lambda attempt, base: attempt)
    service = service_mod.Service(object(), service_mod.Settings(
        urls=['amqp://x'], workers=1, sweep_interval=0))
    lived = iter([0, 0, 0, 120, 0])
    waits: list[float] = []

    def consume():
        service._consuming_since = clock[0]
        clock[0] += next(lived)
        raise ConnectionError('lost')

    def wait(delay):
        waits.append(delay)
        if len(waits) == 5:
            service.stopping.set()
        return service.stopping.is_set()

    monkeypatch.setattr(service, '_consume', consume)
    monkeypatch.setattr(service.stopping, 'wait', wait)
    service.run()
    assert waits == [1, 2, 3, 1, 2]
