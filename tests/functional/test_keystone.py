"""Ironic behind a real Keystone, as operators run it.

A real Keystone (hwbus/localstack/keystone.py) and a real Ironic with
``auth_strategy = keystone`` (keystonemiddleware, the service user
``ironic``, the ``baremetal`` endpoints in the catalog), the real broker
and hwbus-consumer as a process. hwbus's account is the user ``hwbus``
with the ``service`` role in the ``service`` project (see
docs/consumer.md, "Ironic behind Keystone"). Each way of giving hwbus its
credentials brings a published boot into Ironic; a wrong password loses
nothing and says so in one line; tokens that expire are renewed.
"""

from __future__ import annotations

import itertools
import secrets
import subprocess
import textwrap

import pytest
from oslo_config import cfg

from hwbus import ironic as handle
from hwbus.cmd import wiring
from hwbus.conf import ironic as ironic_conf
from hwbus.localstack.common import wait_for
from hwbus.localstack.consumer import BIN, ConsumerProcess, write_config
from hwbus.localstack.ironic import IronicServer
from hwbus.localstack.keystone import REGION, SERVICE_PROJECT, KeystoneServer
from hwbus.store import State, Store
from tests.functional import boots
from tests.functional.conftest import CONSUMER_PASSWORD, credentials_for

QUEUE, DEAD = 'hwbus.inventory', 'hwbus.inventory.dead'
# MACs of their own (boots.mac_for), apart from the other modules'.
NUMBERS = itertools.count(0x4b0000)
SHORT_TOKENS = 20  # seconds: [token] expiration for the renewal test


@pytest.fixture(scope='module')
def keystone(tmp_path_factory):
    server = KeystoneServer(tmp_path_factory.mktemp('keystone')).start()
    yield server
    server.stop()


@pytest.fixture(scope='module')
def ironic_ks(keystone, tmp_path_factory):
    server = IronicServer(tmp_path_factory.mktemp('ironic-keystone'),
                          keystone=keystone).start()
    yield server
    server.stop()


class Account:
    """hwbus's user in Keystone and an application credential of it."""

    def __init__(self, keystone: KeystoneServer) -> None:
        self.username = 'hwbus'
        self.password = secrets.token_urlsafe(16)
        keystone.user(self.username, self.password, SERVICE_PROJECT,
                      roles=('service',))
        self.app_id, self.app_secret = keystone.application_credential(
            self.username, self.password)


@pytest.fixture(scope='module')
def account(keystone):
    return Account(keystone)


def password_options(keystone, username, password,
                     scope: dict[str, str] | None = None) -> dict[str, str]:
    """[ironic] for auth_type password: no endpoint, the catalog has it."""
    if scope is None:
        scope = {'project_name': SERVICE_PROJECT,
                 'project_domain_name': 'Default'}
    return {'auth_type': 'password', 'auth_url': keystone.url,
            'username': username, 'password': password,
            'user_domain_name': 'Default', **scope,
            'region_name': REGION}


@pytest.fixture
def site(broker, ironic_ks, keystone, tmp_path):
    """Empty queues, no nodes, a fresh store; configs and consumers."""
    boots.get_all(broker, QUEUE)
    boots.get_all(broker, DEAD)
    ironic_ks.delete_all_nodes()
    url = f'sqlite:///{tmp_path}/hwbus.sqlite'

    class Site:
        pass

    s = Site()
    s.broker, s.ironic, s.keystone, s.tmp = broker, ironic_ks, keystone, \
        tmp_path
    s.store = Store(url)
    s.credentials = credentials_for(broker, s.store)
    s.consumers = []

    def config(ironic: dict[str, str], name: str = 'hwbus.conf',
               appliers: str = 'inspection'):
        return write_config(tmp_path / name, broker, url, None,
                            CONSUMER_PASSWORD, appliers=appliers,
                            ironic=ironic,
                            extra='\n[enroll]\ndriver = fake-hardware\n')

    def consumer(path, name: str = 'consumer'):
        process = ConsumerProcess(path, tmp_path / f'{name}.log')
        s.consumers.append(process)
        return process.start()

    s.config, s.consumer = config, consumer
    yield s
    for process in s.consumers:
        process.stop()
    boots.get_all(broker, QUEUE)
    boots.get_all(broker, DEAD)
    ironic_ks.delete_all_nodes()


def _boot(site):
    """Publish one boot of a new machine, as its ramdisk would."""
    i = next(NUMBERS)
    issued, sealed = boots.boot(site.credentials, i)
    return issued, sealed, boots.mac_for(i)


def _node_of(ironic, mac: str) -> str | None:
    return {p['address']: p['node_uuid'] for p in ironic.ports()}.get(mac)


def _wait_applied(site, issued, mac: str, timeout: float = 120) -> str:
    """The boot is applied and its MAC is a port of an Ironic node."""
    wait_for(lambda: site.store.get(issued.credential.boot_id).state ==
             State.APPLIED.value, timeout, f'boot of {mac} applied')
    wait_for(lambda: _node_of(site.ironic, mac), 60, f'a node for {mac}')
    return _node_of(site.ironic, mac)


def _conf(path) -> cfg.ConfigOpts:
    """[ironic] of a config file, as hwbus reads it."""
    conf = cfg.ConfigOpts()
    # A group of its own: cfg copies a registered group shallowly, so the
    # auth plugin options keystoneauth adds would reach the next conf.
    conf.register_group(cfg.OptGroup(ironic_conf.GROUP.name))
    ironic_conf.register_opts(conf)
    conf(['--config-file', str(path)], project='hwbus',
         default_config_files=[], default_config_dirs=[])
    return conf


def _sees(path, node: str) -> bool:
    """hwbus's credential sees the node Ironic's auto-discovery made (no
    owner): the binding rule's lookups need every node, not a project's."""
    baremetal = handle.baremetal(wiring.ironic_connection(_conf(path)))
    with handle.calling('node list'):
        return node in {n.id for n in baremetal.nodes()}


def _clouds_yaml(path, keystone, account) -> None:
    path.write_text(textwrap.dedent(f'''\
        clouds:
          hwbus:
            auth:
              auth_url: {keystone.url}
              username: {account.username}
              password: {account.password}
              project_name: {SERVICE_PROJECT}
              user_domain_name: Default
              project_domain_name: Default
            region_name: {REGION}
            interface: internal
            identity_api_version: 3
        '''))
    path.chmod(0o600)


# -- (a), (b), (c): three ways to give hwbus its credentials ----------------
@pytest.mark.parametrize('who,appliers', [('service-role', 'inspection'),
                                          ('system-reader', 'inspection'),
                                          ('system-admin', 'enroll')])
def test_password_auth_reaches_ironic_through_the_catalog(site, account,
                                                         who, appliers):
    """[ironic] auth_type = password, no endpoint_override: Keystone's
    catalog names Ironic. The accounts Ironic's policy lets see every
    node work: the service role of the service project and a system
    reader (Ironic's auto-discovery makes the node), and a system admin
    (the enroll applier makes it, owned by no project)."""
    if who == 'service-role':
        options = password_options(site.keystone, account.username,
                                   account.password)
    else:
        password = secrets.token_urlsafe(16)
        site.keystone.user(f'hwbus-{who}', password, project=None,
                           system_roles=(who.split('-')[1],))
        options = password_options(site.keystone, f'hwbus-{who}', password,
                                   scope={'system_scope': 'all'})
    config = site.config(options, appliers=appliers)
    site.consumer(config)
    issued, sealed, mac = _boot(site)
    node = _wait_applied(site, issued, mac)
    assert site.store.get(issued.credential.boot_id).message_id == \
        sealed.message_id
    assert _sees(config, node)
    assert site.ironic.get(f'/v1/nodes/{node}')['owner'] is None
    assert boots.depth(site.broker, DEAD) == 0


def test_a_clouds_yaml_cloud(site, account):
    """[ironic] cloud from the file [ironic] clouds_yaml names."""
    clouds = site.tmp / 'clouds.yaml'
    _clouds_yaml(clouds, site.keystone, account)
    config = site.config({'cloud': 'hwbus', 'clouds_yaml': str(clouds)})
    site.consumer(config)
    issued, _, mac = _boot(site)
    node = _wait_applied(site, issued, mac)
    assert _sees(config, node)


def test_an_application_credential(site, account):
    """auth_type = v3applicationcredential: no password in hwbus.conf."""
    config = site.config({
        'auth_type': 'v3applicationcredential',
        'auth_url': site.keystone.url,
        'application_credential_id': account.app_id,
        'application_credential_secret': account.app_secret,
        'region_name': REGION, 'interface': 'internal,public'})
    site.consumer(config)
    issued, _, mac = _boot(site)
    node = _wait_applied(site, issued, mac)
    assert _sees(config, node)
    assert account.password not in config.read_text()


# -- (d): a wrong password ----------------------------------------------------
def test_a_wrong_password_loses_nothing_and_says_so_in_one_line(site,
                                                                account):
    wrong = secrets.token_urlsafe(16)
    broken = site.config(password_options(site.keystone, account.username,
                                          wrong), 'broken.conf')
    consumer = site.consumer(broken, 'broken')
    issued, sealed, mac = _boot(site)

    def retries() -> list[str]:
        return [line for line in consumer.log.read_text().splitlines()
                if f'will retry message {sealed.message_id}' in line]

    wait_for(lambda: len(retries()) >= 3, 60, 'three retries')
    assert consumer.proc.poll() is None  # still running
    text = consumer.log.read_text()
    for line in retries():
        assert 'ironic-auth-failed' in line, line
        assert 'refused the credentials in [ironic] (401)' in line, line
        assert '[ironic] username/password' in line, line
    # One line per retry: nothing else mentions the 401, no traceback,
    # and never the password.
    assert [line for line in text.splitlines() if '(401)' in line] == \
        retries()
    assert 'Traceback' not in text
    assert wrong not in text
    # Not dead-lettered, not lost: still received, and back in the queue
    # when the consumer stops.
    assert site.store.get(issued.credential.boot_id).state == \
        State.RECEIVED.value
    assert boots.depth(site.broker, DEAD) == 0
    assert _node_of(site.ironic, mac) is None
    consumer.stop()
    wait_for(lambda: boots.depth(site.broker, QUEUE) == 1, 30, 'requeued')
    # The operator fixes the password and restarts: it is applied.
    fixed = site.config(password_options(site.keystone, account.username,
                                         account.password), 'fixed.conf')
    site.consumer(fixed, 'fixed')
    _wait_applied(site, issued, mac)
    assert boots.depth(site.broker, DEAD) == 0


def test_a_role_ironic_refuses_is_retried_and_names_the_role(site):
    """A project reader cannot create nodes (the enroll applier): Ironic's
    403 is one line per retry naming the role, and the message waits."""
    password = secrets.token_urlsafe(16)
    site.keystone.user('hwbus-reader', password, 'demo', roles=('reader',))
    config = site.config(password_options(
        site.keystone, 'hwbus-reader', password,
        scope={'project_name': 'demo', 'project_domain_name': 'Default'}),
        'reader.conf', appliers='enroll')
    consumer = site.consumer(config, 'reader')
    issued, sealed, _ = _boot(site)

    def retries() -> list[str]:
        return [line for line in consumer.log.read_text().splitlines()
                if f'will retry message {sealed.message_id}' in line]

    wait_for(lambda: len(retries()) >= 2, 60, 'two retries')
    for line in retries():
        assert 'ironic-auth-failed: node create: Ironic refused the ' \
            '[ironic] user (403): give it the role hwbus needs' in line, line
        assert 'baremetal:node:create' in line, line
    assert 'Traceback' not in consumer.log.read_text()
    assert site.store.get(issued.credential.boot_id).state == \
        State.RECEIVED.value
    assert boots.depth(site.broker, DEAD) == 0


def test_a_cloud_that_is_not_there_is_one_line_naming_the_option(
        site, account):
    clouds = site.tmp / 'clouds.yaml'
    _clouds_yaml(clouds, site.keystone, account)
    config = site.config({'cloud': 'hwbsu', 'clouds_yaml': str(clouds)})
    with pytest.raises(handle.IronicConfigError) as raised:
        wiring.ironic_connection(_conf(config))
    message = str(raised.value)
    assert message == (f"[ironic] cloud 'hwbsu' is not in {clouds} (clouds "
                       f"there: hwbus): fix [ironic] cloud or [ironic] "
                       f"clouds_yaml")
    # The consumer stops at start-up with that line, no traceback.
    config.write_text(config.read_text().replace('debug = true',
                                                 'debug = false'))
    result = subprocess.run([str(BIN / 'hwbus-consumer'), '--config-file',
                             str(config)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1
    assert 'Traceback' not in result.stderr
    assert [line for line in result.stderr.splitlines()
            if '[ironic]' in line] == [f'hwbus-consumer: {message}']
    config = site.config({'cloud': 'hwbus',
                          'clouds_yaml': str(site.tmp / 'none.yaml')})
    with pytest.raises(handle.IronicConfigError,
                       match=r'^\[ironic\] clouds_yaml .*none\.yaml: No '
                             r'such file'):
        wiring.ironic_connection(_conf(config))


# -- (e): tokens that expire --------------------------------------------------
def test_tokens_that_expire_are_renewed_without_losing_a_message(site,
                                                                 account):
    """With [token] expiration of SHORT_TOKENS seconds, boots published
    before and after every token the consumer had used expired are all
    applied, none retried for its credentials."""
    site.keystone.restart(token_expiration=SHORT_TOKENS)
    try:
        config = site.config(password_options(
            site.keystone, account.username, account.password))
        consumer = site.consumer(config)
        before = [_boot(site) for _ in range(3)]
        for issued, _, mac in before:
            _wait_applied(site, issued, mac)
        # A token issued now expires after every token the consumer used
        # for the boots above.
        token, _ = site.keystone.token(account.username, account.password)
        wait_for(lambda: not site.keystone.token_valid(token),
                 SHORT_TOKENS * 6, 'the token to expire')
        after = [_boot(site) for _ in range(3)]
        for issued, _, mac in after:
            _wait_applied(site, issued, mac)
        assert 'ironic-auth-failed' not in consumer.log.read_text()
        assert boots.depth(site.broker, DEAD) == 0
        wait_for(lambda: consumer.counter('applied') == 6, 10, 'counted')
    finally:
        site.keystone.restart(token_expiration=3600)
