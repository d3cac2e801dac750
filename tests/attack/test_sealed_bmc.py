"""Sealed BMC accounts: what an attacker can do with the public key.

With ``[bmc] account = create`` the ramdisk creates a BMC user and sends
its password sealed to the consumer's X25519 key (docs/bmc.md). The
public key is on every kernel command line, so anyone can seal to it;
what an attacker also has is a credential of its own from the boot
server, for any MAC. The contract:

* a blob opens only for the boot and purpose it was sealed for, with the
  key it names, unchanged, and only to what a ramdisk writes; otherwise
  the whole message is dead-lettered ``sealed-secret``;
* only a boot issued with ``hwbus.bmc=create`` may send an account;
* an inventory never moves a node's BMC address, and an address outside
  ``[bmc] networks`` is never written;
* the password is in no log line, notification, dead letter or store
  row in clear.

Each attack asserts the refusal and its reason, that no node's
``driver_info`` (read from Ironic's own database: the API shows
``******``) gained or changed credentials or an address, that no secret
is anywhere in clear; then a legitimate boot issued with ``bmc=create``
and a correctly sealed account is applied and its node holds the
password. The servers are the functional tests' real ones, plus a
consumer and a boot server of this module's own.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import gzip
import ipaddress
import itertools
import json
import secrets
import sqlite3
import string
import subprocess
import time
import uuid

import pika
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from hwbus import bootparams, envelope, keys, sealing
from hwbus.localstack.bootserver import BootServer
from hwbus.localstack.common import free_port, wait_for
from hwbus.localstack.consumer import BIN, ConsumerProcess, write_config
from hwbus.ramdisk import publisher
from hwbus.store import Store
from tests.functional import boots
from tests.functional.conftest import CONSUMER_PASSWORD, credentials_for

QUEUE, DEAD = 'hwbus.inventory', 'hwbus.inventory.dead'
NUMBERS = itertools.count(9000)  # MACs apart from the other modules'
HOSTS = itertools.count(1)
SOURCES = itertools.count(2)  # boot-server clients 127.0.9.N
NETWORKS = ('10.20.0.0/16', '127.0.0.0/8')
NOTIFY_TOPIC = 'hwbus_sealed_attack'
ALPHABET = string.ascii_letters + string.digits
# The BMC fields that an attack must never give or change.
BMC_FIELDS = ('ipmi_address', 'ipmi_username', 'ipmi_password',
              'redfish_address', 'redfish_username', 'redfish_password')


# -- what a ramdisk (or an attacker posing as one) sends -------------------

def new_password(length: int = 20) -> str:
    """As the ramdisk mints them: letters and digits."""
    return ''.join(secrets.choice(ALPHABET) for _ in range(length))


def plaintext(password: str, username: str = 'hwbus') -> bytes:
    """What the ramdisk seals (observed: hwbus.bmc.Secret.to_bytes)."""
    return envelope.canonical({'password': password, 'username': username})


def bmc_address() -> str:
    n = next(HOSTS)
    return f'10.20.{n >> 8 & 255}.{n & 255 or 1}'


def unresolvable() -> str:
    """A node's BMC host name that never resolves: Ironic's ipmitool
    calls after an inspection fail at once instead of retrying a
    silent address for a minute with the node locked."""
    return f'bmc-{next(HOSTS)}.invalid'


def seal_as_documented(recipient: bytes, secret: bytes, *, boot_id: str,
                       purpose: str = 'bmc',
                       aad_boot_id: str | None = None) -> dict:
    """docs/bmc.md's construction written here, without hwbus.sealing's
    limits (purpose, size): HKDF over X25519 with an info naming suite,
    purpose, boot id and both keys; ChaCha20-Poly1305 with the boot id and
    purpose in the associated data."""
    ephemeral = x25519.X25519PrivateKey.generate()
    enc = sealing.public_bytes(ephemeral)
    shared = ephemeral.exchange(
        x25519.X25519PublicKey.from_public_bytes(recipient))
    info = b'\0'.join([sealing.SUITE, purpose.encode(), boot_id.encode(),
                       enc, recipient])
    okm = HKDF(hashes.SHA256(), 44, salt=None, info=info).derive(shared)
    aad = b'\0'.join([sealing.SUITE, purpose.encode(),
                      (aad_boot_id or boot_id).encode()])
    ct = ChaCha20Poly1305(okm[:32]).encrypt(okm[32:], secret, aad)
    return {'v': 1, 'kid': sealing.key_id(recipient),
            'enc': keys.b64encode(enc), 'ct': keys.b64encode(ct)}


def account_document(mac: str, address: str | None,
                     account: bool = True) -> dict:
    """A recorded machine's document with the BMC step's plugin data, as
    the ramdisk writes it after creating the account."""
    doc = boots.document('qemu-guest', mac)
    doc['inventory']['bmc_address'] = address
    if not account:
        return doc
    doc['plugin_data']['bmc_account'] = {
        'username': 'hwbus', 'mode': 'create', 'user_id': 3,
        'channels': [1], 'privilege': 'ADMINISTRATOR', 'enabled': True,
        'action': 'created', 'verified': True,
        'verified_how': 'password test', 'errors': [],
        'password_length': 20}
    return doc


def signed_body(boot, doc: dict, sealed=None, **fields) -> bytes:
    """A canonical, uncompressed body (so a dead letter can be read)."""
    body = {'version': 1, 'boot_id': boot.params.boot_id,
            'collected_at': time.strftime('%Y-%m-%dT%H:%M:%SZ',
                                          time.gmtime()),
            'nonce': uuid.uuid4().hex, 'inventory': doc['inventory'],
            'plugin_data': doc['plugin_data'], **fields}
    if sealed is not None:
        body['sealed'] = sealed
    return envelope.canonical(body)


@dataclasses.dataclass
class Boot:
    """One boot's command line, whoever issued it."""

    params: bootparams.BootParams = dataclasses.field(repr=False)
    mac: str = ''

    @property
    def boot_id(self) -> str:
        return self.params.boot_id

    def publish(self, body: bytes) -> None:
        boots.publish_raw(self, body, boots.signed_properties(
            self, body, message_id=str(uuid.uuid4())))

    def publish_all(self, bodies: list[bytes]) -> int:
        """On one connection, as fast as the broker confirms: how many
        it took before the consumer deleted the user."""
        connection = pika.BlockingConnection(pika.URLParameters(
            self.params.connection_urls()[0]))
        taken = 0
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            for body in bodies:
                channel.basic_publish(
                    'hwbus.inventory', f'inventory.{self.params.user}', body,
                    pika.BasicProperties(**boots.signed_properties(
                        self, body, message_id=str(uuid.uuid4()))))
                taken += 1
        except pika.exceptions.AMQPError:
            pass  # the consumer took the first and deleted the user
        finally:
            boots.close(connection)
        return taken


def secret_forms(*secrets_: str | bytes) -> set[bytes]:
    forms = set()
    for secret in secrets_:
        raw = secret.encode() if isinstance(secret, str) else secret
        forms |= {raw, base64.b64encode(raw),
                  base64.urlsafe_b64encode(raw).rstrip(b'='),
                  raw.hex().encode()}
    return forms


# -- the stack --------------------------------------------------------------

class Stack:
    """A consumer (enroll or inspection applier) and a boot server, both
    with the sealing key and ``[bmc] account = create``."""

    def __init__(self, broker, ironic, tmp) -> None:
        self.broker, self.ironic, self.tmp = broker, ironic, tmp
        key = sealing.new_private_key()
        key_file = tmp / 'seal.pem'
        key_file.touch(mode=0o600)
        key_file.write_bytes(sealing.private_pem(key))
        self.public = sealing.public_bytes(key)
        url = f'sqlite:///{tmp}/hwbus.sqlite'
        self.store = Store(url)
        self.credentials = credentials_for(broker, self.store,
                                           seal_key=self.public)
        images = tmp / 'images'
        images.mkdir()
        (images / 'vmlinuz').write_bytes(b'kernel\n')
        (images / 'initramfs.zst').write_bytes(b'initramfs\n')
        self.boot_port = free_port()
        notify = (f'rabbit://{broker.admin_user}:{broker.admin_password}@'
                  f'127.0.0.1:{broker.amqp_port}/')
        extra = (f'\n[sealing]\nprivate_key_file = {key_file}\n'
                 f'\n[bmc]\naccount = create\n'
                 f'networks = {",".join(NETWORKS)}\n'
                 f'\n[enroll]\ndriver = ipmi\nmanage = false\n'
                 f'\n[notifications]\ndriver = messagingv2\n'
                 f'transport_url = {notify}\ntopics = {NOTIFY_TOPIC}\n'
                 f'\n[bootserver]\nhost = 127.0.0.1\nport = {self.boot_port}\n'
                 f'image_dir = {images}\n')
        self.configs = {
            appliers: write_config(tmp / f'hwbus-{appliers}.conf', broker,
                                   url, ironic.url, CONSUMER_PASSWORD,
                                   appliers=appliers, extra=extra)
            for appliers in ('enroll', 'inspection')}
        self.consumer: ConsumerProcess | None = None
        self.appliers = ''
        self.logs = [tmp / 'bootserver.log']
        self.bootserver = BootServer(self.configs['enroll'], self.logs[0],
                                     self.boot_port)
        self.dead_letters: list[tuple] = []  # every one read, for scans
        self.outputs: list[str] = []  # hwbus-manage output, for scans
        self.notifications: list[bytes] = []
        self.passwords: list[str] = []  # legitimate ones, for scans
        connection = pika.BlockingConnection(pika.URLParameters(
            broker.amqp_url))
        self.notify_channel = connection.channel()
        for priority in ('info', 'warn', 'error'):
            self.notify_channel.queue_declare(f'{NOTIFY_TOPIC}.{priority}')
            self.notify_channel.queue_purge(f'{NOTIFY_TOPIC}.{priority}')

    def use(self, appliers: str) -> Stack:
        """This module's consumer runs with ``appliers`` (one at a time:
        consumers share the queue)."""
        if self.appliers == appliers:
            return self
        if self.consumer is not None:
            self.consumer.stop()
        boots.get_all(self.broker, QUEUE)
        boots.get_all(self.broker, DEAD)
        log = self.tmp / f'consumer-{appliers}.log'
        self.logs.append(log)
        self.consumer = ConsumerProcess(self.configs[appliers], log)
        self.consumer.start()
        self.appliers = appliers
        return self

    def stop(self) -> None:
        if self.consumer is not None:
            self.consumer.stop()
        self.bootserver.stop()
        self.notify_channel.connection.close()

    # boots

    def mac(self) -> str:
        return boots.mac_for(next(NUMBERS))

    def issue(self, mac: str | None = None, bmc: str | None = 'create',
              node: str | None = None) -> Boot:
        """A credential as the boot server (a MAC) or an operator (a node)
        issues it, ``bmc`` its hwbus.bmc=."""
        mac = mac or self.mac()
        issued = self.credentials.issue(
            mac=mac, node=node, after='none', bmc=bmc,
            issued_by='manage' if node else 'bootserver')
        return Boot(issued.params, mac)

    def ask_bootserver(self, mac: str) -> Boot:
        """What anyone on the provisioning network gets for ``mac``."""
        import http.client

        conn = http.client.HTTPConnection(
            '127.0.0.1', self.boot_port, timeout=10,
            source_address=(f'127.0.9.{next(SOURCES)}', 0))
        try:
            conn.request('GET', f'/boot.ipxe?mac={mac}')
            response = conn.getresponse()
            text = response.read().decode()
        finally:
            conn.close()
        assert response.status == 200, text
        [line] = [line for line in text.splitlines() if 'hwbus.key=' in line]
        return Boot(bootparams.parse(line), mac)

    def publish_account(self, boot: Boot, password: str,
                        address: str | None, **inventory) -> None:
        """What the real ramdisk publishes (hwbus.envelope.seal, gzip,
        hwbus.ramdisk.publisher) after creating the account; other
        inventory fields as given."""
        doc = account_document(boot.mac, address)
        doc['inventory'].update(inventory)
        blob = sealing.seal(self.public, plaintext(password),
                            boot_id=boot.boot_id, purpose='bmc')
        message = envelope.seal(
            boot_id=boot.boot_id, user=boot.params.user,
            key=keys.private_key(boot.params.key),
            inventory=doc['inventory'], plugin_data=doc['plugin_data'],
            sealed={'bmc': blob})
        publisher.publish(message, boot.params, deadline=30)

    def settled(self, boot: Boot, timeout: float = 60) -> str:
        """'applied', or the reason its message was dead-lettered. Only
        this boot's dead letters count: an earlier attack's second
        message may be dead-lettered late (its sender could not tell
        whether the consumer took it before the user was deleted)."""
        got: list = []

        def ours(props) -> bool:
            headers = props.headers or {}
            return boot.boot_id in (headers.get('x-hwbus-boot-id'),) or \
                boot.params.user in (headers.get('x-hwbus-original-user-id'),
                                     getattr(props, 'user_id', None))

        def done() -> bool:
            got.extend(d for d in self.read_dead() if ours(d[0]))
            state = self.store.get(boot.boot_id).state
            return bool(got) or state == 'applied'

        wait_for(done, timeout, 'the message applied or dead-lettered')
        return got[0][0].headers['x-hwbus-dead-reason'] if got else 'applied'

    def read_dead(self) -> list[tuple]:
        got = boots.get_all(self.broker, DEAD)
        self.dead_letters.extend(got)
        return got

    def dead(self, count: int, timeout: float = 60) -> list[tuple]:
        got: list[tuple] = []
        wait_for(lambda: got.extend(self.read_dead()) or len(got) >= count,
                 timeout, f'{count} dead letters')
        assert len(got) == count, [p.headers for p, _ in got]
        return got

    def good_boot(self, since: float) -> float:
        """A legitimate create boot (its credential as the boot server
        issues it) is applied and its node gets the account: seconds
        since ``since``."""
        boot = self.issue(bmc='create')
        password, address = new_password(), bmc_address()
        self.passwords.append(password)
        self.publish_account(boot, password, address)
        assert self.settled(boot, timeout=120) == 'applied'
        seconds = round(time.monotonic() - since, 2)
        node = self.node_of(boot.mac)
        info = self.driver_info()[node]['driver_info']
        assert info.get('ipmi_username') == 'hwbus', info.keys()
        assert info.get('ipmi_password') == password
        assert info.get('ipmi_address') == address
        shown = self.ironic.get(f'/v1/nodes/{node}')['driver_info']
        assert shown['ipmi_password'] == '******'
        return seconds

    def good_inspection_boot(self, since: float) -> float:
        """The inspection applier's legitimate boot: a node in inspect
        wait, a credential bound to it with bmc=create, its account."""
        mac, address = self.mac(), unresolvable()
        node = ipmi_node_in_inspect_wait(self, mac, ipmi_address=address)
        boot = self.issue(mac, node=node, bmc='create')
        password = new_password()
        self.passwords.append(password)
        self.publish_account(boot, password, bmc_address())
        assert self.settled(boot, timeout=120) == 'applied'
        seconds = round(time.monotonic() - since, 2)
        info = self.driver_info()[node]['driver_info']
        assert (info.get('ipmi_username'), info.get('ipmi_password'),
                info.get('ipmi_address')) == ('hwbus', password, address)
        return seconds

    # what Ironic holds

    def node_of(self, mac: str) -> str:
        found: dict = {}
        wait_for(lambda: found.update(
            {p['address']: p['node_uuid'] for p in self.ironic.ports()})
            or mac in found, 30, f'the node of {mac}')
        return found[mac]

    def driver_info(self) -> dict[str, dict]:
        """Every node as Ironic's database holds it (passwords in clear)."""
        database = self.ironic.workdir / 'ironic.sqlite'
        db = sqlite3.connect(f'file:{database}?mode=ro', uri=True,
                             timeout=30)
        try:
            rows = db.execute('select uuid, driver, driver_info, '
                              'provision_state from nodes').fetchall()
        finally:
            db.close()
        return {uuid_: {'driver': driver,
                        'driver_info': json.loads(info or '{}'),
                        'provision_state': state}
                for uuid_, driver, info, state in rows}

    def delete_all_nodes(self) -> None:
        """After an inspection, Ironic reboots an ipmi node through a
        BMC that is not there, retrying for ``[ipmi]
        command_retry_timeout`` (60 s) with the node locked: wait."""
        def unlocked() -> bool:
            database = self.ironic.workdir / 'ironic.sqlite'
            db = sqlite3.connect(f'file:{database}?mode=ro', uri=True,
                                 timeout=30)
            try:
                return not db.execute('select count(*) from nodes where '
                                      'reservation is not null').fetchone()[0]
            finally:
                db.close()

        wait_for(unlocked, 180, 'Ironic done with the nodes')
        self.ironic.delete_all_nodes()

    def bmc_view(self) -> dict[str, dict]:
        """What an attack must not give or change: each node's BMC
        fields."""
        return {node: {k: v for k, v in row['driver_info'].items()
                       if k in BMC_FIELDS}
                for node, row in self.driver_info().items()}

    def manage(self, *args: str) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [str(BIN / 'hwbus-manage'), '--config-file',
             str(self.configs[self.appliers or 'enroll']), *args],
            capture_output=True, text=True, timeout=120)
        assert 'Traceback' not in result.stderr, result.stderr
        self.outputs.append(result.stdout + result.stderr)
        return result

    # secrets

    def read_notifications(self) -> list[bytes]:
        for priority in ('info', 'warn', 'error'):
            while True:
                method, _, body = self.notify_channel.basic_get(
                    f'{NOTIFY_TOPIC}.{priority}', auto_ack=True)
                if method is None:
                    break
                self.notifications.append(body)
        return self.notifications

    def assert_nowhere_in_clear(self, *secrets_: str | bytes) -> None:
        """Not in any consumer or boot server log, dead letter (headers
        and body), notification, the store (and its archive), Ironic's
        log, hwbus-manage output; the legitimate passwords neither."""
        forms = secret_forms(*secrets_, *self.passwords)
        places: list[tuple[str, bytes]] = []
        for path in [*self.logs, self.ironic.log]:
            if path.exists():
                places.append((str(path), path.read_bytes()))
        for suffix in ('', '-wal', '-journal'):
            path = self.tmp / f'hwbus.sqlite{suffix}'
            if path.exists():
                places.append((str(path), path.read_bytes()))
        for props, body in self.dead_letters:
            if body[:2] == b'\x1f\x8b':
                body = gzip.decompress(body)
            places.append(('a dead letter', body))
            places.append(('a dead letter\'s headers',
                           repr(props.headers).encode()))
        for body in self.read_notifications():
            places.append(('a notification', body))
        for output in self.outputs:
            places.append(('hwbus-manage output', output.encode()))
        for where, data in places:
            for form in forms:
                assert form not in data, f'a secret in clear in {where}'


@pytest.fixture(scope='module')
def module_stack(broker, ironic, tmp_path_factory):
    stack = Stack(broker, ironic, tmp_path_factory.mktemp('sealed'))
    stack.bootserver.start()
    yield stack
    stack.stop()
    stack.delete_all_nodes()


@pytest.fixture
def stack(module_stack):
    """No nodes, no dead letters; the consumer still alive after."""
    module_stack.delete_all_nodes()
    module_stack.read_dead()
    yield module_stack
    assert module_stack.consumer is None or \
        module_stack.consumer.proc.poll() is None, 'the consumer died'


def refused(stack: Stack, sends, expected: set[str], *secrets_) -> list:
    """Publish each of ``sends`` ((boot, callable): the credential the
    message goes out with, and how); every one is dead-lettered on its
    first delivery with a reason in ``expected``, no node's BMC fields
    changed, no secret in clear. Returns (reason, detail) pairs."""
    before = stack.bmc_view()
    for _, send in sends:
        send()
    dead: list[tuple] = []

    def applied() -> list[Boot]:
        return [boot for boot, _ in sends
                if stack.store.get(boot.boot_id).state == 'applied']

    wait_for(lambda: dead.extend(stack.read_dead()) or
             len(dead) >= len(sends) or applied(), 60,
             f'{len(sends)} dead letters')
    if applied():
        time.sleep(1)  # whatever else there is to come
        dead.extend(stack.read_dead())
    got = [(p.headers['x-hwbus-dead-reason'],
            p.headers.get('x-hwbus-dead-detail', '')) for p, _ in dead]
    written = {node: fields for node, fields in stack.bmc_view().items()
               if before.get(node) != fields}
    shown = {node: {k: '<set>' if k.endswith('password') else v
                    for k, v in fields.items()}
             for node, fields in written.items()}
    accepted = len(applied())
    assert accepted == 0, (f'ACCEPTED: {accepted} of {len(sends)} '
                           f'applied; BMC fields written: {shown}; '
                           f'dead letters: {got}')
    assert len(got) == len(sends), got
    assert {reason for reason, _ in got} <= expected, got
    assert not any((p.headers or {}).get('x-delivery-count')
                   for p, _ in dead), 'not refused on the first delivery'
    assert 'internal-error' not in stack.consumer.log.read_text()
    assert not written, f'an attack changed BMC fields: {shown}'
    stack.assert_nowhere_in_clear(*secrets_)
    return got


# -- 1. a blob of another boot ---------------------------------------------

def test_a_blob_sealed_for_another_boot_does_not_open(stack, figure):
    stack.use('enroll')
    victim = stack.issue(bmc='create')
    password = new_password()
    victims_blob = sealing.seal(stack.public, plaintext(password),
                                boot_id=victim.boot_id, purpose='bmc')
    started = time.monotonic()
    # The attacker's own create boot, correctly signed, the victim's
    # blob copied in (seen on the wire: plain AMQP, or a DLQ copy).
    attacker = stack.issue(bmc='create')
    doc = account_document(attacker.mac, bmc_address())
    got = refused(stack, [(attacker, lambda: attacker.publish(signed_body(
        attacker, doc, {'bmc': victims_blob})))], {'sealed-secret'},
        password, plaintext(password))
    assert not stack.driver_info(), 'a node was enrolled'
    # The victim's own message still opens and is applied: copying the
    # blob burnt nothing of the victim's.
    stack.publish_account(victim, password, address := bmc_address())
    assert stack.settled(victim) == 'applied'
    info = stack.driver_info()[stack.node_of(victim.mac)]['driver_info']
    assert (info['ipmi_password'], info['ipmi_address']) == (password,
                                                             address)
    stack.passwords.append(password)
    next_good = stack.good_boot(started)
    stack.assert_nowhere_in_clear()
    figure(attack='sealed: a blob of another boot, copied in', attempts=1,
           accepted=0, refused=got[0][0] + '; the victim then applied',
           next_good_s=next_good)


# -- 2. a key the consumer does not hold -----------------------------------

def test_a_blob_sealed_to_another_key_does_not_open(stack, figure):
    stack.use('enroll')
    other = sealing.public_bytes(sealing.new_private_key())
    sends, secrets_ = [], []
    for kid in ('its own', 'the consumer\'s'):
        boot = stack.issue(bmc='create')
        password = new_password()
        secrets_ += [password, plaintext(password)]
        blob = sealing.seal(other, plaintext(password),
                            boot_id=boot.boot_id, purpose='bmc')
        if kid != 'its own':
            blob['kid'] = sealing.key_id(stack.public)
        doc = account_document(boot.mac, bmc_address())
        body = signed_body(boot, doc, {'bmc': blob})
        sends.append((boot, lambda boot=boot, body=body: boot.publish(body)))
    started = time.monotonic()
    got = refused(stack, sends, {'sealed-secret'}, *secrets_)
    assert not stack.driver_info()
    next_good = stack.good_boot(started)
    figure(attack='sealed: to another key (its kid / the consumer\'s kid)',
           attempts=2, accepted=0,
           refused=', '.join(sorted({r for r, _ in got})),
           next_good_s=next_good)


# -- 3. blobs changed, cut, of another shape --------------------------------

def _flip(text: str, index: int) -> str:
    raw = bytearray(keys.b64decode(text))
    raw[index] ^= 0x01
    return keys.b64encode(bytes(raw))


def _cut(text: str, count: int) -> str:
    return keys.b64encode(keys.b64decode(text)[:-count])


BYTES = {'sealed-secret'}
SHAPE = {'sealed-secret', 'schema', 'malformed'}
# name: (change(blob, stack, boot) -> the message's ``sealed``, reasons)
MUTATIONS = {
    'ct: last byte (tag) flipped': (
        lambda b, s, o: {'bmc': b | {'ct': _flip(b['ct'], -1)}}, BYTES),
    'ct: first byte flipped': (
        lambda b, s, o: {'bmc': b | {'ct': _flip(b['ct'], 0)}}, BYTES),
    'ct: one byte cut': (
        lambda b, s, o: {'bmc': b | {'ct': _cut(b['ct'], 1)}}, BYTES),
    'ct: only the tag left': (
        lambda b, s, o: {'bmc': b | {'ct': keys.b64encode(
            keys.b64decode(b['ct'])[-16:])}}, BYTES),
    'ct: empty': (lambda b, s, o: {'bmc': b | {'ct': ''}}, SHAPE),
    'ct: not base64': (lambda b, s, o: {'bmc': b | {'ct': '%%%%'}}, SHAPE),
    'enc: one bit flipped': (
        lambda b, s, o: {'bmc': b | {'enc': _flip(b['enc'], 5)}}, BYTES),
    'enc: 31 bytes': (
        lambda b, s, o: {'bmc': b | {'enc': _cut(b['enc'], 1)}}, SHAPE),
    'enc: low-order point (zeros)': (
        lambda b, s, o: {'bmc': b | {'enc': keys.b64encode(bytes(32))}},
        BYTES),
    'kid: one bit flipped (kid is not in the AAD)': (
        lambda b, s, o: {'bmc': b | {'kid': _flip(b['kid'], 0)}}, BYTES),
    'kid: empty': (lambda b, s, o: {'bmc': b | {'kid': ''}}, SHAPE),
    'v: 2': (lambda b, s, o: {'bmc': b | {'v': 2}}, SHAPE),
    'v: true': (lambda b, s, o: {'bmc': b | {'v': True}}, SHAPE),
    'v: "1"': (lambda b, s, o: {'bmc': b | {'v': '1'}}, SHAPE),
    'an extra field in the blob': (
        lambda b, s, o: {'bmc': b | {'password': 'x'}}, SHAPE),
    'ct missing': (lambda b, s, o: {'bmc': {k: v for k, v in b.items()
                                            if k != 'ct'}}, SHAPE),
    'blob is text': (lambda b, s, o: {'bmc': b['ct']}, SHAPE),
    'blob is a list': (lambda b, s, o: {'bmc': [b]}, SHAPE),
    'blob is null': (lambda b, s, o: {'bmc': None}, SHAPE),
    'sealed is a list': (lambda b, s, o: [b], SHAPE),
    'sealed is text': (lambda b, s, o: 'bmc', SHAPE),
    'an unknown purpose beside bmc': (
        lambda b, s, o: {'bmc': b, 'ssh': b}, SHAPE),
    'the blob under an unknown purpose only': (
        lambda b, s, o: {'ipmi': b}, SHAPE),
    'sealed for purpose "ipmi", sent as bmc': (
        lambda b, s, o: {'bmc': seal_as_documented(
            s.public, plaintext(new_password()), boot_id=o.boot_id,
            purpose='ipmi')}, BYTES),
    'boot id right in the key, another in the AAD': (
        lambda b, s, o: {'bmc': seal_as_documented(
            s.public, plaintext(new_password()), boot_id=o.boot_id,
            aad_boot_id=secrets.token_hex(16))}, BYTES),
    'ct of 8,192 characters (the form\'s limit)': (
        lambda b, s, o: {'bmc': b | {'ct': keys.b64encode(
            secrets.token_bytes(6144))}}, BYTES | SHAPE),
    'ct of 900,000 characters': (
        lambda b, s, o: {'bmc': b | {'ct': keys.b64encode(
            secrets.token_bytes(675_000))}}, SHAPE),
    '1,000 purposes': (
        lambda b, s, o: {f'p{i}': b for i in range(1000)}, SHAPE),
}


@pytest.mark.parametrize('name', list(MUTATIONS))
def test_a_changed_cut_or_misshapen_blob_is_refused(stack, figure, name):
    stack.use('enroll')
    change, expected = MUTATIONS[name]
    boot = stack.issue(bmc='create')
    password = new_password()
    blob = sealing.seal(stack.public, plaintext(password),
                        boot_id=boot.boot_id, purpose='bmc')
    doc = account_document(boot.mac, bmc_address())
    body = signed_body(boot, doc, change(blob, stack, boot))
    started = time.monotonic()
    [(reason, _)] = refused(stack, [(boot, lambda: boot.publish(body))],
                                 expected, password, plaintext(password))
    assert not stack.driver_info(), 'a node was enrolled'
    # The construction written here, unchanged, opens: the changes above
    # are what was refused (a control for the variants built with it).
    control = stack.issue(bmc='create')
    control_password = new_password()
    stack.passwords.append(control_password)
    control_body = signed_body(
        control, account_document(control.mac, address := bmc_address()),
        {'bmc': seal_as_documented(stack.public,
                                   plaintext(control_password),
                                   boot_id=control.boot_id)})
    control.publish(control_body)
    assert stack.settled(control) == 'applied'
    info = stack.driver_info()[stack.node_of(control.mac)]['driver_info']
    assert (info['ipmi_password'], info['ipmi_address']) == (
        control_password, address)
    next_good = stack.good_boot(started)
    figure(attack=f'sealed: {name}', attempts=1, accepted=0,
           refused=reason, next_good_s=next_good)


def test_extra_top_level_fields_are_refused(stack, figure):
    stack.use('enroll')
    sends, secrets_ = [], []
    for field, value in (('bmc_password', 'x'), ('sealed_v2', {}),
                         ('Sealed', {})):
        boot = stack.issue(bmc='create')
        password = new_password()
        secrets_ += [password, plaintext(password)]
        blob = sealing.seal(stack.public, plaintext(password),
                            boot_id=boot.boot_id, purpose='bmc')
        body = signed_body(boot, account_document(boot.mac, bmc_address()),
                           {'bmc': blob}, **{field: value})
        sends.append((boot, lambda boot=boot, body=body: boot.publish(body)))
    started = time.monotonic()
    got = refused(stack, sends, {'malformed'}, *secrets_)
    assert not stack.driver_info()
    next_good = stack.good_boot(started)
    figure(attack='sealed: extra top-level fields beside it', attempts=3,
           accepted=0, refused=', '.join(sorted({r for r, _ in got})),
           next_good_s=next_good)


# -- 4. a boot not asked to make an account --------------------------------

@pytest.mark.parametrize('mode', [None, 'keep'])
def test_only_a_create_boot_may_send_an_account(stack, figure, mode):
    """Anyone has the public key (it is on every create boot's command
    line); a boot issued without hwbus.bmc=create seals to it anyway."""
    stack.use('enroll')
    boot = stack.issue(bmc=mode)
    assert boot.params.bmc == mode
    password = new_password()
    blob = sealing.seal(stack.public, plaintext(password),
                        boot_id=boot.boot_id, purpose='bmc')
    body = signed_body(boot, account_document(boot.mac, bmc_address()),
                       {'bmc': blob})
    started = time.monotonic()
    [(reason, _)] = refused(stack, [(boot, lambda: boot.publish(body))],
                            {'sealed-secret'}, password,
                            plaintext(password))
    assert not stack.driver_info()
    next_good = stack.good_boot(started)
    figure(attack=f'sealed account from a boot issued bmc={mode}',
           attempts=1, accepted=0, refused=reason, next_good_s=next_good)


def ipmi_node_in_inspect_wait(stack: Stack, mac: str,
                              **driver_info) -> str:
    """A node of the ipmi hardware type waiting for its inspection
    report (brought there as fake-hardware: no BMC answers here; Ironic
    must not power it off after inspecting it, which would hold its lock
    for the minute ipmitool retries)."""
    node = stack.ironic.enroll('inspect wait', ports=(mac,),
                               disable_power_off=True)['uuid']
    interfaces = {'raid': 'no-raid', 'power': 'ipmitool',
                  'management': 'ipmitool', 'boot': 'ipxe',
                  'deploy': 'direct'}
    stack.ironic.request('PATCH', f'/v1/nodes/{node}', [
        {'op': 'replace', 'path': '/driver', 'value': 'ipmi'},
        *[{'op': 'replace', 'path': f'/{k}_interface', 'value': v}
          for k, v in interfaces.items()],
        *[{'op': 'add', 'path': f'/driver_info/{k}', 'value': v}
          for k, v in driver_info.items()]]).raise_for_status()
    return node


def test_the_boot_server_gives_keep_for_a_node_with_credentials(stack,
                                                                 figure):
    """The attacker asks the real boot server for a victim's MAC (its
    node in inspect wait holds an operator's BMC password): the command
    line says keep, and an account sealed anyway is refused."""
    stack.use('enroll')
    mac = stack.mac()
    node = ipmi_node_in_inspect_wait(
        stack, mac, ipmi_address='127.0.0.1', ipmi_username='admin',
        ipmi_password='operator-pw-1234')
    boot = stack.ask_bootserver(mac)
    assert boot.params.bmc == 'keep'
    assert boot.params.seal == keys.b64encode(stack.public)
    password = new_password()
    blob = sealing.seal(keys.b64decode(boot.params.seal),
                        plaintext(password), boot_id=boot.boot_id,
                        purpose='bmc')
    body = signed_body(boot, account_document(mac, bmc_address()),
                       {'bmc': blob})
    started = time.monotonic()
    [(reason, _)] = refused(stack, [(boot, lambda: boot.publish(body))],
                            {'sealed-secret'}, password,
                            plaintext(password))
    info = stack.driver_info()[node]['driver_info']
    assert (info['ipmi_username'], info['ipmi_password']) == (
        'admin', 'operator-pw-1234')
    next_good = stack.good_boot(started)
    figure(attack='boot server for a node with credentials: keep; an '
           'account sealed anyway', attempts=1, accepted=0, refused=reason,
           next_good_s=next_good)


def test_an_operator_replay_of_sealed_secret_dead_letters_applies_none(
        stack, figure):
    """docs/bmc.md tells the operator to fix the key and run ``dead
    replay --reason sealed-secret``: the attackers' messages in that
    queue must be refused again, not applied."""
    stack.use('enroll')
    victim = stack.issue(bmc='create')
    victims_blob = sealing.seal(stack.public, plaintext(new_password()),
                                boot_id=victim.boot_id, purpose='bmc')
    no_create = stack.issue(bmc=None)
    copied = stack.issue(bmc='create')
    password = new_password()
    own_blob = sealing.seal(stack.public, plaintext(password),
                            boot_id=no_create.boot_id, purpose='bmc')
    before = stack.bmc_view()
    no_create.publish(signed_body(
        no_create, account_document(no_create.mac, bmc_address()),
        {'bmc': own_blob}))
    copied.publish(signed_body(
        copied, account_document(copied.mac, bmc_address()),
        {'bmc': victims_blob}))
    wait_for(lambda: boots.depth(stack.broker, DEAD) == 2, 60,
             'two dead letters')
    started = time.monotonic()
    replay = stack.manage('dead', 'replay', '--reason', 'sealed-secret')
    assert boots.depth(stack.broker, DEAD) == 2, replay.stdout
    assert stack.bmc_view() == before and not stack.driver_info()
    reasons = sorted(p.headers['x-hwbus-dead-reason']
                     for p, _ in stack.dead(2))
    assert reasons == ['sealed-secret', 'sealed-secret']
    stack.assert_nowhere_in_clear(password, plaintext(password))
    next_good = stack.good_boot(started)
    figure(attack='operator: dead replay --reason sealed-secret',
           attempts=2, accepted=0, refused=f'replayed, refused again '
           f'(exit {replay.returncode})', next_good_s=next_good)


# -- 5. a node that awaits discovery: its BMC address --------------------

def test_an_inspect_wait_nodes_address_never_moves(stack, figure):
    """A MAC-bound credential from the real boot server for a node in
    inspect wait without credentials (so: create), a valid account and
    another BMC address (inside [bmc] networks)."""
    stack.use('enroll')
    mac = stack.mac()
    node = ipmi_node_in_inspect_wait(stack, mac, ipmi_address='127.0.0.1')
    boot = stack.ask_bootserver(mac)
    assert boot.params.bmc == 'create'
    password = new_password()
    started = time.monotonic()
    stack.publish_account(boot, password, '10.20.250.1')
    outcome = stack.settled(boot)
    info = stack.driver_info()[node]['driver_info']
    assert info['ipmi_address'] == '127.0.0.1', 'the BMC address moved'
    stack.passwords.append(password)
    stack.assert_nowhere_in_clear()
    next_good = stack.good_boot(started)
    figure(attack='inspect-wait node, account + another BMC address',
           attempts=1, accepted=0, refused=f'{outcome}; ipmi_address kept'
           f'{", credentials set" if "ipmi_password" in info else ""}',
           next_good_s=next_good)


def test_a_discovered_nodes_address_never_moves(stack, figure):
    """A node the enroll applier created (still enroll, so it awaits
    discovery), then a create boot for its MAC reporting another
    address."""
    stack.use('enroll')
    mac, first = stack.mac(), bmc_address()
    boot = stack.issue(mac, bmc=None)
    boot.publish(signed_body(boot, account_document(mac, first, False)))
    assert stack.settled(boot) == 'applied'
    node = stack.node_of(mac)
    assert stack.driver_info()[node]['driver_info'].get(
        'ipmi_address') == first
    attacker = stack.issue(mac, bmc='create')
    password = new_password()
    started = time.monotonic()
    stack.publish_account(attacker, password, bmc_address())
    outcome = stack.settled(attacker)
    info = stack.driver_info()[node]['driver_info']
    assert info['ipmi_address'] == first, 'the BMC address moved'
    stack.passwords.append(password)
    stack.assert_nowhere_in_clear()
    next_good = stack.good_boot(started)
    figure(attack='discovered node in enroll, account + another address',
           attempts=1, accepted=0, refused=f'{outcome}; ipmi_address kept',
           next_good_s=next_good)


OUTSIDE = [
    ('bmc_address', '192.0.2.5'),
    ('bmc_address', '10.21.0.5'),
    ('bmc_address', '10.020.0.5'),  # inet_aton reads 020 as octal
    ('bmc_address', '10.20.0.5.example.org'),
    ('bmc_address', '3221225989'),  # 192.0.2.5 as one number
    ('bmc_address', '0xc0000205'),
    ('bmc_address', '10.20.0.5 192.0.2.5'),
    ('bmc_address', '192.0.2.5#10.20.0.5'),
    ('bmc_address', '::ffff:192.0.2.5'),
    ('bmc_address', 'http://10.20.0.5@192.0.2.5/'),
    ('bmc_v6address', '2001:db8::5'),
    ('bmc_v6address', '::ffff:192.0.2.5'),
]


@pytest.mark.parametrize('field, claimed', OUTSIDE)
def test_an_address_outside_the_bmc_networks_is_never_written(
        stack, figure, field, claimed):
    """A new machine (nothing to move), a valid account: whatever is
    written must be an address inside [bmc] networks, literally."""
    stack.use('enroll')
    boot = stack.issue(bmc='create')
    password = new_password()
    started = time.monotonic()
    stack.publish_account(boot, password, None, **{field: claimed})
    outcome = stack.settled(boot)
    stack.passwords.append(password)
    written = None
    if outcome == 'applied':
        info = stack.driver_info()[stack.node_of(boot.mac)]['driver_info']
        written = info.get('ipmi_address') or info.get('redfish_address')
    if written is not None:
        address = ipaddress.ip_address(written)  # a literal, strictly
        assert any(address in ipaddress.ip_network(n) for n in NETWORKS), \
            f'{claimed!r} written as {written!r}'
    stack.assert_nowhere_in_clear()
    next_good = stack.good_boot(started)
    figure(attack=f'{field} {claimed!r} (outside the networks)',
           attempts=1, accepted=0,
           refused=f'{outcome}; address {"not " if written is None else ""}'
                   f'written', next_good_s=next_good)


# -- 6. the rest of the contract --------------------------------------------

PLAINTEXTS = {
    'not JSON': lambda t: b'not-json-' + t.encode(),
    'a JSON list': lambda t: json.dumps([t, t]).encode(),
    'JSON text': lambda t: json.dumps(t).encode(),
    'no username': lambda t: envelope.canonical({'password': t}),
    'no password': lambda t: envelope.canonical({'username': 'hwbus',
                                                 'pw': t}),
    'an extra field': lambda t: envelope.canonical(
        {'password': t, 'username': 'hwbus', 'address': '10.20.9.9'}),
    'password a number': lambda t: b'{"password":%d,"username":"hwbus"}'
                                   % int.from_bytes(t.encode()[:8], 'big'),
    'empty password': lambda t: plaintext(''),
    'password with a newline': lambda t: plaintext(t[:10] + '\n' + t[10:]),
    'password with a NUL': lambda t: plaintext(t[:10] + '\0' + t[10:]),
    'password of 4,000 characters': lambda t: plaintext(t * 200),
    'username with a newline': lambda t: plaintext(t, 'hwbus\nadmin'),
    'username the vendor administrator': lambda t: plaintext(t, 'ADMIN'),
    'username of 300 characters': lambda t: plaintext(t, 'u' * 300),
    'not UTF-8': lambda t: b'{"password":"\xff\xfe' + t.encode() +
                           b'","username":"hwbus"}',
    'duplicate keys': lambda t: b'{"password":"' + t.encode() +
                                b'","password":"x","username":"hwbus"}',
    '6,000 bytes (over the 4,096 the sealer allows)': lambda t: plaintext(
        t + 'A' * 5950),
    'password of one character': lambda t: plaintext('x'),
    'password with punctuation and a space': lambda t: plaintext(
        t[:8] + ' $(;|"\'' + t[8:]),
    'password of 40 characters': lambda t: plaintext(t * 2),
    'JSON not canonical (spaces, keys unsorted)': lambda t: (
        b'{ "username": "hwbus", "password": "' + t.encode() + b'" }'),
}


@pytest.mark.parametrize('name', list(PLAINTEXTS))
def test_a_blob_that_opens_to_what_no_ramdisk_writes_is_refused(
        stack, figure, name):
    stack.use('enroll')
    boot = stack.issue(bmc='create')
    token = new_password()
    secret = PLAINTEXTS[name](token)
    blob = seal_as_documented(stack.public, secret, boot_id=boot.boot_id)
    body = signed_body(boot, account_document(boot.mac, bmc_address()),
                       {'bmc': blob})
    started = time.monotonic()
    [(reason, _)] = refused(stack, [(boot, lambda: boot.publish(body))],
                            {'sealed-secret'}, token, secret)
    assert not stack.driver_info(), 'a node was enrolled'
    next_good = stack.good_boot(started)
    figure(attack=f'sealed: opens to {name}', attempts=1, accepted=0,
           refused=reason, next_good_s=next_good)


def test_a_victims_whole_message_under_another_user(stack, figure):
    """The victim's message as it went over the wire (plain AMQP),
    republished with the attacker's credential before the victim's
    arrives: as it was (the victim's signature), and re-signed by the
    attacker with the victim's boot id left in the body."""
    stack.use('enroll')
    victim = stack.issue(bmc='create')
    password, address = new_password(), bmc_address()
    blob = sealing.seal(stack.public, plaintext(password),
                        boot_id=victim.boot_id, purpose='bmc')
    body = signed_body(victim, account_document(victim.mac, address),
                       {'bmc': blob})
    victims_props = boots.signed_properties(victim, body)
    attackers = [stack.issue(bmc='create'), stack.issue(bmc='create')]

    def as_it_was():
        props = copy.deepcopy(victims_props)
        props['user_id'] = attackers[0].params.user
        boots.publish_raw(attackers[0], body, props)

    def resigned():
        boots.publish_raw(attackers[1], body, boots.signed_properties(
            attackers[1], body))

    started = time.monotonic()
    got = refused(stack, [(attackers[0], as_it_was),
                         (attackers[1], resigned)], {
        'boot-mismatch', 'credential-mismatch', 'bad-signature'},
        password, plaintext(password))
    assert not stack.driver_info()
    # The victim's own message is then applied.
    victim.publish(body)
    assert stack.settled(victim) == 'applied'
    info = stack.driver_info()[stack.node_of(victim.mac)]['driver_info']
    assert (info['ipmi_password'], info['ipmi_address']) == (password,
                                                             address)
    stack.passwords.append(password)
    stack.assert_nowhere_in_clear()
    next_good = stack.good_boot(started)
    figure(attack='a victim\'s whole message under other users',
           attempts=2, accepted=0, refused=', '.join(r for r, _ in got) +
           '; the victim then applied', next_good_s=next_good)


def test_a_second_message_of_a_create_boot_changes_nothing(stack, figure):
    """One credential, two accounts published before the consumer
    revokes it: the node holds exactly one of them, the other is refused.
    Which one is the consumer's gate's choice (its workers may take both
    at once; the store transition admits one), not the order sent."""
    stack.use('enroll')
    boot = stack.issue(bmc='create')
    first, second = new_password(), new_password()
    address = bmc_address()
    bodies = [signed_body(boot, account_document(boot.mac, address),
                          {'bmc': sealing.seal(
                              stack.public, plaintext(p),
                              boot_id=boot.boot_id, purpose='bmc')})
              for p in (first, second)]
    started = time.monotonic()
    taken = boot.publish_all(bodies)
    wait_for(lambda: stack.store.get(boot.boot_id).state == 'applied', 60,
             'the first applied')
    reason = 'refused at the broker (user deleted)'
    if taken == 2:
        [(props, _)] = stack.dead(1)
        reason = props.headers['x-hwbus-dead-reason']
        assert reason in {'replayed-boot', 'revoked'}
    info = stack.driver_info()[stack.node_of(boot.mac)]['driver_info']
    assert info['ipmi_password'] in (first, second)
    stack.passwords += [first, second]
    stack.assert_nowhere_in_clear()
    next_good = stack.good_boot(started)
    figure(attack='two accounts from one create boot', attempts=1,
           accepted=0, refused=f'the second: {reason}',
           next_good_s=next_good)


def test_an_operators_password_when_the_issuer_could_not_ask_ironic(
        stack, figure):
    """docs/bmc.md: when the issuer cannot ask Ironic, the machine is
    taken as new (create). A node in inspect wait holding an operator's
    password then meets an attacker's create boot for its MAC: the
    address must stay; whether the password is replaced is recorded (the
    contract says it is, and the history says so)."""
    stack.use('enroll')
    mac = stack.mac()
    node = ipmi_node_in_inspect_wait(
        stack, mac, ipmi_address='127.0.0.1', ipmi_username='admin',
        ipmi_password='operator-pw-5678')
    boot = stack.issue(mac, bmc='create')  # as the boot server without
    password = new_password()             # an answer from Ironic
    started = time.monotonic()
    stack.publish_account(boot, password, '10.20.251.1')
    outcome = stack.settled(boot)
    info = stack.driver_info()[node]['driver_info']
    assert info['ipmi_address'] == '127.0.0.1', 'the BMC address moved'
    replaced = info.get('ipmi_password') == password
    if replaced:
        history = stack.manage('history', '--node', node).stdout
        assert 'replaced' in history, history
    stack.passwords.append(password)
    stack.assert_nowhere_in_clear()
    next_good = stack.good_boot(started)
    figure(attack='inspect-wait node with an operator\'s password, '
           'create boot (Ironic not asked)', attempts=1,
           accepted=int(replaced),
           refused=f'{outcome}; address kept; operator password '
                   f'{"REPLACED (history: replaced)" if replaced else "kept"}',
           next_good_s=next_good)


# -- the inspection applier -------------------------------------------------

def test_inspection_an_inspect_wait_nodes_address_never_moves(stack,
                                                              figure):
    """The inspection applier patches the node before
    continue_inspection: a create boot for its MAC reporting another
    address."""
    stack.use('inspection')
    mac = stack.mac()
    address = unresolvable()
    node = ipmi_node_in_inspect_wait(stack, mac, ipmi_address=address)
    boot = stack.issue(mac, bmc='create')
    password = new_password()
    started = time.monotonic()
    stack.publish_account(boot, password, '10.20.252.1')
    outcome = stack.settled(boot)
    info = stack.driver_info()[node]['driver_info']
    assert info['ipmi_address'] == address, 'the BMC address moved'
    stack.passwords.append(password)
    stack.assert_nowhere_in_clear()
    seconds = stack.good_inspection_boot(started)
    figure(attack='inspection: inspect-wait node, account + another '
           'address', attempts=1, accepted=0,
           refused=f'{outcome}; ipmi_address kept'
                   f'{", credentials set" if "ipmi_password" in info else ""}',
           next_good_s=seconds)


def test_inspection_refuses_a_copied_blob(stack, figure):
    stack.use('inspection')
    mac = stack.mac()
    node = ipmi_node_in_inspect_wait(stack, mac,
                                     ipmi_address=unresolvable())
    victim = stack.issue(bmc='create')
    password = new_password()
    blob = sealing.seal(stack.public, plaintext(password),
                        boot_id=victim.boot_id, purpose='bmc')
    boot = stack.issue(mac, bmc='create')
    body = signed_body(boot, account_document(mac, bmc_address()),
                       {'bmc': blob})
    started = time.monotonic()
    [(reason, _)] = refused(stack, [(boot, lambda: boot.publish(body))],
                            {'sealed-secret'}, password,
                            plaintext(password))
    assert stack.driver_info()[node]['provision_state'] == 'inspect wait'
    seconds = stack.good_inspection_boot(started)
    figure(attack='inspection: a blob of another boot, copied in',
           attempts=1, accepted=0, refused=reason, next_good_s=seconds)


def test_no_secret_anywhere_at_the_end(module_stack):
    """Every legitimate password of this module, everywhere, once more
    (the last dead letters and notifications included)."""
    module_stack.read_dead()
    module_stack.assert_nowhere_in_clear()
    assert 'sealed-secret' in ''.join(
        p.read_text(errors='replace') for p in module_stack.logs
        if p.exists())
