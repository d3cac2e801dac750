"""Per-boot credentials against a real RabbitMQ node.

Each test is one promise from docs/credentials.md, tried the way an
attacker holding one boot's kernel command line would try it.
"""

import datetime

import pika
import pika.exceptions as pe
import pytest

from hwbus import bootparams, envelope, keys
from hwbus.broker.management import ManagementError
from hwbus.credentials import BOOT_USER_RE
from hwbus.ramdisk import publisher
from hwbus.store import State
from hwbus.store.api import utcnow
from tests.functional import boots
from tests.functional.conftest import management_for

MAC = '52:54:00:aa:bb:01'


@pytest.fixture
def queue(broker):
    """The inventory queue, empty before and after the test."""
    def purge():
        broker.api('DELETE', '/api/queues/%2F/hwbus.inventory/contents')
    purge()
    yield broker
    purge()


def _connect(url):
    params = pika.URLParameters(url)
    params.connection_attempts = 1
    return pika.BlockingConnection(params)


def _seal(issued, **kwargs):
    args = dict(boot_id=issued.params.boot_id, user=issued.params.user,
                key=keys.private_key(issued.params.key),
                inventory={'cpu': {'count': 2}}, plugin_data={'errors': []})
    args.update(kwargs)
    return envelope.seal(**args)


def _raw_publish(issued, routing_key=None, properties=None,
                 exchange='hwbus.inventory'):
    sealed = _seal(issued)
    connection = _connect(issued.params.connection_urls()[0])
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(
            exchange, routing_key or sealed.routing_key, sealed.body,
            pika.BasicProperties(**{**sealed.properties,
                                    **(properties or {})}),
            mandatory=True)
    finally:
        if connection.is_open:
            connection.close()
    return sealed


def _get_all(server):
    return boots.get_all(server, 'hwbus.inventory')

def test_own_routing_key_is_accepted_and_confirmed(credentials, queue):
    issued = credentials.issue(mac=MAC)
    sealed = _seal(issued)
    result = publisher.publish(sealed, issued.params, deadline=10)
    assert result.attempts == 1
    [(props, body)] = _get_all(queue)
    assert props.user_id == issued.credential.username
    assert props.message_id == sealed.message_id
    opened = envelope.open(body, {
        'content_type': props.content_type,
        'content_encoding': props.content_encoding,
        'user_id': props.user_id, 'message_id': props.message_id,
        'headers': props.headers},
        lambda h: credentials.lookup(h.user_id).public_key)
    assert opened.inventory == {'cpu': {'count': 2}}


def test_foreign_routing_key_is_refused(credentials, queue):
    issued = credentials.issue(mac=MAC)
    other = credentials.issue(mac='52:54:00:aa:bb:02')
    for key in (f'inventory.{other.credential.username}', 'inventory.#',
                'inventory', 'other.key', f'inventory.{issued.params.user}.x'):
        with pytest.raises(pe.ChannelClosedByBroker) as info:
            _raw_publish(issued, routing_key=key)
        assert info.value.reply_code == 403, key
    assert _get_all(queue) == []


def test_user_id_of_another_user_is_refused(credentials, queue):
    issued = credentials.issue(mac=MAC)
    other = credentials.issue(mac='52:54:00:aa:bb:02')
    with pytest.raises(pe.ChannelClosedByBroker) as info:
        _raw_publish(issued,
                     properties={'user_id': other.credential.username})
    assert info.value.reply_code == 406  # PRECONDITION_FAILED
    assert _get_all(queue) == []


def test_declaring_or_reading_a_queue_is_refused(credentials, queue):
    issued = credentials.issue(mac=MAC)
    url = issued.params.connection_urls()[0]
    attempts = {
        'declare a queue': lambda ch: ch.queue_declare('stolen'),
        'declare an exchange': lambda ch: ch.exchange_declare('x', 'topic'),
        'read the inventory queue': lambda ch: ch.basic_get(
            'hwbus.inventory'),
        'consume the inventory queue': lambda ch: ch.basic_consume(
            'hwbus.inventory', lambda *a: None),
        'read the dead letters': lambda ch: ch.basic_get(
            'hwbus.inventory.dead'),
        'bind the queue elsewhere': lambda ch: ch.queue_bind(
            'hwbus.inventory', 'hwbus.dead', '#'),
        'publish to the dead letters': lambda ch: ch.basic_publish(
            'hwbus.dead', 'x', b'{}'),
        'publish to the default exchange': lambda ch: ch.basic_publish(
            '', 'hwbus.inventory', b'{}'),
    }
    for what, attempt in attempts.items():
        connection = _connect(url)
        channel = connection.channel()
        channel.confirm_delivery()
        with pytest.raises(pe.ChannelClosedByBroker) as info:
            attempt(channel)
            channel.basic_qos(prefetch_count=1)  # flush a lazy failure
        assert info.value.reply_code == 403, what
        connection.close()
    # What the design notes: a passive declare passes and shows the depth.
    connection = _connect(url)
    assert connection.channel().queue_declare(
        'hwbus.inventory', passive=True).method.message_count == 0
    connection.close()
    assert _get_all(queue) == []


def test_revocation_closes_a_live_connection_and_the_password_stops_working(
        credentials, broker):
    issued = credentials.issue(mac=MAC)
    url = issued.params.connection_urls()[0]
    connection = _connect(url)
    channel = connection.channel()
    record = credentials.revoke(issued.credential.boot_id)
    assert record.state == State.REVOKED.value
    assert record.user_deleted_at is not None
    with pytest.raises((pe.ConnectionClosedByBroker, pe.StreamLostError,
                        pe.ChannelWrongStateError)):
        for _ in range(50):
            connection.process_data_events(time_limit=0.1)
            channel.basic_qos(prefetch_count=1)
    with pytest.raises(pe.ProbableAuthenticationError):
        _connect(url)
    assert issued.credential.username not in broker.users()


def test_an_expired_credential_is_swept(credentials, broker):
    issued = credentials.issue(mac=MAC, ttl=60)
    assert issued.credential.username in broker.users()
    result = credentials.sweep(now=utcnow() + datetime.timedelta(seconds=61))
    assert issued.credential.boot_id in result.expired
    assert issued.credential.username not in broker.users()
    record = credentials.store.get(issued.credential.boot_id)
    assert record.state == State.EXPIRED.value
    with pytest.raises(pe.ProbableAuthenticationError):
        _connect(issued.params.connection_urls()[0])


def test_the_sweeper_never_deletes_the_consumer_or_a_live_credential(
        credentials, broker):
    live = credentials.issue(mac=MAC, ttl=3600)
    gone = credentials.issue(mac='52:54:00:aa:bb:02', ttl=60)
    management = management_for(broker)
    # Users the sweeper must leave alone although nothing in the store
    # knows them: not of the per-boot form.
    for name in ('boot-operator', 'hwbus-boot-0123456789abcdef0123',
                 'boot-0123456789abcdef012'):
        management.put_user(name, 'x')
    # And one of the per-boot form that the store does not know: an
    # orphan from a crash, which must go.
    orphan = 'boot-00000000000000000001'
    management.put_user(orphan, 'x')
    credentials.sweep(now=utcnow() + datetime.timedelta(seconds=120))
    users = broker.users()
    assert {'hwbus-consumer', broker.admin_user, live.credential.username,
            'boot-operator', 'hwbus-boot-0123456789abcdef0123',
            'boot-0123456789abcdef012'} <= users
    assert gone.credential.username not in users
    assert orphan not in users
    assert credentials.store.get(live.credential.boot_id).state == 'issued'
    assert BOOT_USER_RE.match(live.credential.username)


def test_a_credential_for_one_mac_cannot_serve_a_second_boot(
        credentials, queue):
    issued = credentials.issue(mac=MAC)
    sealed = _seal(issued)
    publisher.publish(sealed, issued.params, deadline=10)
    record = credentials.lookup(issued.params.user)
    assert credentials.receive(record, sealed.message_id)
    # The same kernel command line, booted a second time:
    again = _seal(issued)
    with pytest.raises(publisher.Refused):
        publisher.publish(again, issued.params, deadline=10)
    # and even a message that got through some other way is not the
    # boot's first any more.
    assert not credentials.receive(record, again.message_id)
    assert not credentials.receive(record, sealed.message_id)  # a copy
    assert credentials.receive(record, sealed.message_id, again=True)
    # Its message dead-lettered: only an operator's replay reopens it.
    assert credentials.store.transition(record.boot_id, State.REFUSED,
                                        [State.RECEIVED])
    assert not credentials.receive(record, sealed.message_id, again=True)
    assert credentials.receive(record, sealed.message_id, replay=True)
    assert len(_get_all(queue)) == 1


def test_max_connections_limit_is_set(credentials, broker):
    issued = credentials.issue(mac=MAC)
    limits = broker.api('GET', f'/api/user-limits/'
                               f'{issued.credential.username}').json()
    assert limits[0]['value'] == {'max-connections': 2}


def test_issue_rolls_back_when_the_broker_refuses(broker, store):
    from tests.functional.conftest import credentials_for

    credentials = credentials_for(broker, store)
    credentials.management.vhost = 'no-such-vhost'
    before = broker.users()
    with pytest.raises(ManagementError):
        credentials.issue(mac=MAC)
    assert store.list() == []
    assert broker.users() == before


def test_at_the_cap_the_oldest_unused_credential_makes_room(broker, store):
    """A flood churns boot-server credentials while it lasts and locks
    nobody out when it stops; an operator's are never counted."""
    from tests.functional.conftest import credentials_for

    credentials = credentials_for(broker, store, max_outstanding=3)
    operators = credentials.issue(mac='52:54:00:aa:cc:98')
    flood = [credentials.issue(mac=f'52:54:00:aa:cc:{i:02x}',
                               issued_by='bootserver') for i in range(5)]
    states = [store.get(i.credential.boot_id).state for i in flood]
    assert states == ['revoked', 'revoked', 'issued', 'issued', 'issued']
    assert flood[0].credential.username not in broker.users()
    assert store.get(operators.credential.boot_id).state == 'issued'
    assert store.count([State.ISSUED], issued_by='bootserver') == 3


def test_requests_for_a_mac_from_elsewhere_never_cancel_its_boot(broker,
                                                                 store):
    from hwbus.credentials import TooManyForMac
    from tests.functional.conftest import credentials_for

    credentials = credentials_for(broker, store)
    mac = '52:54:00:aa:dd:01'

    def ask(client):
        return credentials.issue(mac=mac, issued_by='bootserver', per_mac=3,
                                 client=client)

    victim = ask('10.0.0.5')
    spoofs = [ask('10.0.0.66'), ask('10.0.0.67')]
    with pytest.raises(TooManyForMac):
        ask('10.0.0.68')
    assert store.get(victim.credential.boot_id).state == 'issued'
    # The victim looping in PXE replaces only its own.
    again = ask('10.0.0.5')
    assert store.get(victim.credential.boot_id).state == 'revoked'
    assert store.get(again.credential.boot_id).state == 'issued'
    assert [store.get(s.credential.boot_id).state for s in spoofs] == [
        'issued', 'issued']


def test_bootparams_round_trip_through_the_cmdline(credentials):
    issued = credentials.issue(mac=MAC, node='node-1')
    text = issued.cmdline
    assert len(text) < 600
    parsed = bootparams.parse(f'BOOT_IMAGE=/vmlinuz ro {text} quiet')
    assert parsed == issued.params
    assert parsed.user == issued.credential.username
