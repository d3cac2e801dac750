"""The BMC account's way: issuer decision, ramdisk step, consumer opening,
driver_info. Fakes only; the real BMC, broker and Ironic are in
tests/functional/test_bmc_account.py and tests/e2e."""

from __future__ import annotations

import copy
import types

import pytest

from hwbus import bmc, bootparams, keys, sealing
from hwbus.consumer.appliers import Applied, Context, bmcinfo
from hwbus.consumer.pipeline import APPLIED, DEAD
from hwbus.ramdisk import bmcstep
from hwbus.ramdisk.bmc_account import ensure
from hwbus.ramdisk.bmc_account.result import AccountResult
from tests.unit.test_pipeline import DOC, World

PASSWORD = 'Zq8rT2mW9xK4pL7vN3bY'


def _node(driver='ipmi', **info):
    return types.SimpleNamespace(id='n1', driver=driver, driver_info=info,
                                 provision_state='enroll', extra={})


# -- the issuer -------------------------------------------------------------
@pytest.mark.parametrize('account,rotate,node,mode', [
    ('off', False, None, None),
    ('off', True, _node(ipmi_password='******'), None),
    ('create', False, None, 'create'),
    ('create', False, _node(ipmi_address='10.0.0.1'), 'create'),
    ('create', False, _node(ipmi_password='******'), 'keep'),
    ('create', False, _node('redfish', redfish_password='******'), 'keep'),
    ('create', True, _node(ipmi_password='******'), 'create'),
])
def test_a_node_keeps_its_credentials_unless_rotation_is_asked(
        account, rotate, node, mode):
    assert bmc.issue_mode(account, rotate, node) == mode


# -- what a node gets ---------------------------------------------------------
def test_ipmi_fields():
    secret = bmc.Secret('hwbus', PASSWORD)
    info = bmc.driver_info_for(bmc.IPMI, secret, {'bmc_address': '10.1.1.5'},
                               types.SimpleNamespace(ipmi_cipher_suite='3'))
    assert info == {'ipmi_address': '10.1.1.5', 'ipmi_username': 'hwbus',
                    'ipmi_password': PASSWORD, 'ipmi_cipher_suite': '3'}


def test_redfish_fields_take_the_v6_address_when_there_is_no_v4():
    info = bmc.driver_info_for(
        bmc.REDFISH, bmc.Secret('hwbus', PASSWORD),
        {'bmc_address': None, 'bmc_v6address': 'fd00::5'},
        types.SimpleNamespace(redfish_verify_ca='False'))
    assert info == {'redfish_address': 'https://[fd00::5]',
                    'redfish_username': 'hwbus',
                    'redfish_password': PASSWORD,
                    'redfish_verify_ca': False}


@pytest.mark.parametrize('driver,family', [
    ('ipmi', 'ipmi'), ('redfish', 'redfish'), ('idrac', 'redfish'),
    ('fake-hardware', None), ('ilo', None), (None, None)])
def test_family(driver, family):
    assert bmc.family(driver) == family


def test_auto_hardware_type_follows_the_redfish_host_interface():
    assert bmc.hardware_type('auto', {}) == 'ipmi'
    assert bmc.hardware_type('auto', {'dmi': {
        'redfish_host_interface': True}}) == 'redfish'
    assert bmc.hardware_type('ipmi', {'dmi': {
        'redfish_host_interface': True}}) == 'ipmi'


def test_a_secret_never_shows_its_password():
    secret = bmc.Secret('hwbus', PASSWORD)
    assert PASSWORD not in repr(secret)
    context = Context(boot_id='b', message_id='m', boot=None, inventory={},
                      plugin_data={}, bmc_secret=secret)
    assert PASSWORD not in repr(context)


@pytest.mark.parametrize('data', [
    b'', b'nope', b'[]', b'{"username":"hwbus"}',
    b'{"username":"hwbus","password":"x","more":1}',
    b'{"username":"","password":"x"}', b'{"username":"a","password":""}',
    b'{"username":"a\\n","password":"x"}', b'{"username":"a","password":5}',
    b'{"username":"a","password":"' + b'x' * 65 + b'"}'])
def test_opened_secrets_must_look_like_what_a_ramdisk_writes(data):
    with pytest.raises(bmc.BadBmcSecret) as info:
        bmc.Secret.from_bytes(data)
    assert info.value.reason == 'sealed-secret'


class FakeBaremetal:
    def __init__(self, node):
        self.node = node
        self.patches = []
        self.states = []

    def patch_node(self, node, patch):
        self.patches.append(patch)

    def set_node_provision_state(self, node, target):
        self.states.append(target)

    def get_node(self, ident):
        return self.node


def _context(secret=True):
    return Context(boot_id='b1', message_id='m1', boot=None,
                   inventory={'bmc_address': '10.1.1.5'}, plugin_data={},
                   bmc_secret=bmc.Secret('hwbus', PASSWORD)
                   if secret else None)


def test_set_credentials_patches_the_fields_and_names_no_password():
    node = _node(ipmi_address='10.1.1.5')
    baremetal = FakeBaremetal(node)
    result = Applied()
    bmcinfo.set_credentials(baremetal, node, _context(),
                            types.SimpleNamespace(bmc=None), result)
    (patch,) = baremetal.patches
    assert {p['path']: p['value'] for p in patch} == {
        '/driver_info/ipmi_username': 'hwbus',
        '/driver_info/ipmi_password': PASSWORD}
    assert result.changes == ['bmc credentials set for user hwbus '
                              '(ipmi_address, ipmi_password, ipmi_username)']
    assert PASSWORD not in repr(result)


def test_set_credentials_over_old_ones_says_replaced():
    node = _node(ipmi_password='******', ipmi_username='hwbus')
    result = Applied()
    bmcinfo.set_credentials(FakeBaremetal(node), node, _context(), None,
                            result)
    assert result.changes[0].startswith('bmc credentials replaced')


def test_set_credentials_leaves_other_hardware_types_alone():
    node = _node('fake-hardware')
    baremetal = FakeBaremetal(node)
    result = Applied()
    bmcinfo.set_credentials(baremetal, node, _context(), None, result)
    assert baremetal.patches == []
    assert 'reads no ipmi/redfish fields' in result.changes[0]


def test_no_secret_no_write():
    node = _node()
    baremetal = FakeBaremetal(node)
    bmcinfo.set_credentials(baremetal, node, _context(secret=False), None,
                            Applied())
    assert baremetal.patches == []


@pytest.mark.parametrize('final,error,expect', [
    ('manageable', None, 'manageable (Ironic verified power control)'),
    ('enroll', 'Failed to get power state: timeout',
     'manage failed: node is enroll: Failed to get power state: timeout'),
])
def test_manage_records_ironics_verdict(final, error, expect):
    node = _node()
    node.provision_state, node.last_error = final, error
    baremetal = FakeBaremetal(node)
    result = Applied()
    bmcinfo.manage(baremetal, node, 5, result)
    assert baremetal.states == ['manage'] and result.changes == [expect]


# -- the ramdisk step ---------------------------------------------------------
class Root:
    """Only what bmcstep asks of a SystemRoot: is there a BMC device."""

    def __init__(self, ipmi=True):
        self.ipmi = ipmi

    def exists(self, path):
        return self.ipmi and path == '/dev/ipmi0'


def _params(key, bmc_mode='create', seal=True):
    return bootparams.BootParams(
        urls=['amqp://u:p@h/%2F'], boot_id='b1', key='k', bmc=bmc_mode,
        seal=keys.b64encode(sealing.public_bytes(key)) if seal else None)


@pytest.fixture
def made(monkeypatch):
    calls = []

    def ensure_account(root, *, mode, channels=None, **kw):
        calls.append((mode, channels))
        result = AccountResult(
            username='hwbus', mode=mode, user_id=3, channels=[1],
            action='created' if mode == 'create' else 'kept',
            verified=True, verified_how='user test',
            password=PASSWORD if mode == 'create' else None)
        return result

    monkeypatch.setattr(ensure, 'ensure_account', ensure_account)
    return calls


def _document():
    document = copy.deepcopy({'inventory': DOC['inventory'],
                              'plugin_data': DOC['plugin_data']})
    document['plugin_data']['bmc'] = {'channel': 1}
    return document


def test_the_ramdisk_seals_the_new_password_to_the_consumer(made):
    key = sealing.new_private_key()
    document = _document()
    sealed = bmcstep.run(Root(), _params(key), document)
    assert made == [('create', [1])]
    account = document['plugin_data']['bmc_account']
    assert account['user_id'] == 3 and account['password_length'] == 20
    assert PASSWORD not in repr(document)
    opened = sealing.open([key], sealed['bmc'], boot_id='b1', purpose='bmc')
    assert bmc.Secret.from_bytes(opened) == bmc.Secret('hwbus', PASSWORD)


@pytest.mark.parametrize('plaintext', [
    b'{"password":"%s","username":"ADMIN"}' % PASSWORD.encode(),
    b'{"password":"short1","username":"hwbus"}',
    b'{"password":"%s","username":"hwbus"}' % (PASSWORD * 2).encode(),
    b'{"password":"%s","username":"hwbus"}' % (PASSWORD[:19] + ' ').encode(),
    b'{ "username": "hwbus", "password": "%s" }' % PASSWORD.encode(),
    b'{"password":"x","password":"%s","username":"hwbus"}'
    % PASSWORD.encode(),
], ids=['another user', 'short', 'long', 'punctuation', 'not canonical',
        'duplicate key'])
def test_only_what_a_ramdisk_mints_opens(plaintext):
    # Anyone can seal to the public key; the consumer takes only the
    # account a ramdisk would have created, byte for byte.
    with pytest.raises(bmc.BadBmcSecret):
        bmc.Secret.from_bytes(plaintext)
    assert bmc.Secret.from_bytes(bmc.Secret('hwbus', PASSWORD[:16])
                                 .to_bytes()).password == PASSWORD[:16]


def test_keep_sends_no_secret(made):
    document = _document()
    assert bmcstep.run(Root(), _params(sealing.new_private_key(), 'keep'),
                       document) is None
    assert document['plugin_data']['bmc_account']['action'] == 'kept'


@pytest.mark.parametrize('root,params,why', [
    (Root(ipmi=False), dict(), 'no IPMI device'),
    (Root(), dict(seal=False), 'without hwbus.seal'),
    (Root(), dict(bmc_mode='explode'), 'unknown hwbus.bmc'),
])
def test_the_bmc_is_left_alone_when_the_step_cannot_be_done(made, root,
                                                            params, why):
    document = _document()
    key = sealing.new_private_key()
    assert bmcstep.run(root, _params(key, **params), document) is None
    assert made == []
    assert why in document['plugin_data']['bmc_account']['errors'][0]
    assert any(why in e for e in document['plugin_data']['errors'])


def test_a_bad_seal_key_sets_no_password(made):
    params = _params(sealing.new_private_key())
    params.seal = 'abc'
    document = _document()
    assert bmcstep.run(Root(), params, document) is None
    assert made == []


def test_no_bmc_parameter_no_step(made):
    params = _params(sealing.new_private_key(), bmc_mode=None)
    assert bmcstep.run(Root(), params, _document()) is None
    assert made == []


# -- the consumer opens it ---------------------------------------------------
def _sealed_world(consumer_key, sealed_to=None, boot_id='boot1',
                  issued_for='create'):
    world = World()
    world.credential.bmc = issued_for
    seen = []

    class Applier:
        name = 'record'

        def apply(self, context):
            seen.append(context.bmc_secret)
            return Applied(node='node-1')

    world.pipeline.appliers = [Applier()]
    world.pipeline.keyring = [consumer_key] if consumer_key else []
    recipient = sealed_to or consumer_key or sealing.new_private_key()
    blob = sealing.seal(sealing.public_bytes(recipient),
                        bmc.Secret('hwbus', PASSWORD).to_bytes(),
                        boot_id=boot_id, purpose='bmc')
    return world, world.seal(sealed={'bmc': blob}), seen


def test_the_consumer_opens_the_account_for_the_appliers():
    world, message, seen = _sealed_world(sealing.new_private_key())
    outcome = world.process(message)
    assert outcome.kind == APPLIED
    assert seen == [bmc.Secret('hwbus', PASSWORD)]


@pytest.mark.parametrize('case', ['no-key', 'wrong-key', 'other-boot',
                                  'not-asked', 'asked-to-keep'])
def test_a_secret_that_does_not_open_is_a_sealed_secret_dead_letter(case):
    key = sealing.new_private_key()
    world, message, seen = _sealed_world(
        None if case == 'no-key' else key,
        sealed_to=sealing.new_private_key() if case == 'wrong-key' else None,
        boot_id='boot2' if case == 'other-boot' else 'boot1',
        issued_for={'not-asked': None, 'asked-to-keep': 'keep'}.get(
            case, 'create'))
    outcome = world.process(message)
    assert (outcome.kind, outcome.reason) == (DEAD, 'sealed-secret')
    assert seen == [] and PASSWORD not in outcome.detail
    assert 'apply' not in world.events


def test_an_inventory_never_moves_a_nodes_bmc_address():
    node = _node(ipmi_address='10.9.9.9', ipmi_password='******')
    baremetal = FakeBaremetal(node)
    result = Applied()
    bmcinfo.set_credentials(baremetal, node, _context(), None, result)
    paths = {p['path'] for p in baremetal.patches[0]}
    assert '/driver_info/ipmi_address' not in paths
    assert '/driver_info/ipmi_password' in paths
    assert 'ipmi_address kept (10.9.9.9)' in result.changes[0]


@pytest.mark.parametrize('address,networks,written', [
    ('10.1.1.5', [], True), ('10.1.1.5', ['10.1.0.0/16'], True),
    ('10.1.1.5', ['192.0.2.0/24'], False),
    ('fd00::5', ['fd00::/64', '10.0.0.0/8'], True), ('junk', ['10.0.0.0/8'],
                                                     False)])
def test_bmc_addresses_outside_the_bmc_networks_are_not_written(
        address, networks, written):
    settings = types.SimpleNamespace(networks=networks, ipmi_cipher_suite=None)
    info = bmc.driver_info_for(bmc.IPMI, bmc.Secret('hwbus', PASSWORD),
                               {'bmc_address': address}, settings)
    assert ('ipmi_address' in info) == written
    assert info['ipmi_password'] == PASSWORD
