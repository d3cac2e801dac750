"""The store on SQLite and on a real PostgreSQL, with racing writers."""

import concurrent.futures
import datetime
import threading

import pytest
import sqlalchemy as sa

from hwbus.store import Credential, State, Store
from hwbus.store.api import StoreNotReady, utcnow


@pytest.fixture(params=['sqlite', 'postgresql'])
def store(request, tmp_path):
    if request.param == 'sqlite':
        yield Store(f'sqlite:///{tmp_path}/hwbus.sqlite')
        return
    server = request.getfixturevalue('postgres')
    engine = sa.create_engine(server.url)
    with engine.begin() as connection:
        connection.execute(sa.text('DROP TABLE IF EXISTS credentials'))
        connection.execute(sa.text('DROP TABLE IF EXISTS inventories'))
        connection.execute(sa.text('DROP TABLE IF EXISTS alembic_version'))
    engine.dispose()
    yield Store(server.url)


def _credential(n, **kwargs):
    now = utcnow()
    values = dict(boot_id=f'boot{n:04d}', username=f'boot-{n:020x}',
                  public_key=bytes(32), mac=f'52:54:00:00:00:{n % 256:02x}',
                  node=None, state='issued', created_at=now, changed_at=now,
                  expires_at=now + datetime.timedelta(hours=1),
                  issued_by='test')
    values.update(kwargs)
    return Credential(**values)


def _head() -> str:
    from alembic import script

    return script.ScriptDirectory.from_config(
        Store._alembic(None)).get_current_head()


def test_schema_is_at_head_and_upgrade_is_idempotent(store):
    assert store.revision() == _head()
    store.upgrade()
    store.check_schema()
    assert store.revision() == _head()


def test_records_round_trip(store):
    store.add(_credential(1, node='node-a'))
    got = store.by_username(f'boot-{1:020x}')
    assert got.boot_id == 'boot0001' and got.node == 'node-a'
    assert got.public_key == bytes(32)
    assert [c.boot_id for c in store.list(mac='52:54:00:00:00:01')] == [
        'boot0001']
    assert store.count([State.ISSUED]) == 1


def test_exactly_one_of_many_racing_consumers_wins(store):
    store.add(_credential(2))
    barrier = threading.Barrier(8)

    def race(i):
        barrier.wait()
        return store.transition('boot0002', State.RECEIVED, [State.ISSUED],
                                message_id=f'message-{i}')

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(race, range(8)))
    assert results.count(True) == 1
    winner = results.index(True)
    assert store.get('boot0002').message_id == f'message-{winner}'


def test_expired_lists_only_issued_past_expiry(store):
    past = utcnow() - datetime.timedelta(seconds=1)
    store.add(_credential(3, expires_at=past))
    store.add(_credential(4))
    store.add(_credential(5, expires_at=past, state='received'))
    assert [c.boot_id for c in store.expired()] == ['boot0003']


def test_only_the_first_message_after_expiry_is_recorded(store):
    """Its dead letter keeps the body (for "dead replay --reason
    expired"), whether the sweeper or the consumer expired the
    credential; later messages, and copies, are noise."""
    store.add(_credential(5))
    assert not store.first_after_expiry('boot0005', 'm1')  # still issued
    assert store.transition('boot0005', State.EXPIRED, [State.ISSUED])
    assert store.first_after_expiry('boot0005', 'm1')
    assert not store.first_after_expiry('boot0005', 'm2')
    assert not store.first_after_expiry('boot0005', 'm1')  # a copy
    assert store.first_after_expiry('boot0005', 'm1', again=True)
    assert not store.first_after_expiry('boot0005', 'm2', again=True)
    assert store.get('boot0005').message_id == 'm1'


def test_old_schema_is_refused_without_auto_upgrade(tmp_path):
    url = f'sqlite:///{tmp_path}/empty.sqlite'
    with pytest.raises(StoreNotReady, match='hwbus-manage db upgrade'):
        Store(url, auto_upgrade=False)
