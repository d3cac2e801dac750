"""The batching revoker with a fake store and management API.

The real broker is in tests/functional/test_revoker.py; here each rule
(batches, retries, the backlog bound, pending work at start) runs in
milliseconds. Waits are for events, with generous timeouts, never for
durations.
"""

import threading
import types

import pytest

from hwbus.broker.management import Management, ManagementUnavailable
from hwbus.credentials import Credentials
from hwbus.credentials.revoker import RevocationsBehind, Revoker
from hwbus.store import State

PATIENCE = 30.0  # seconds before a test gives up on an event


class Store:
    """Records deletions; ``pending`` is what users_to_delete() returns."""

    def __init__(self, pending=()):
        self.pending = list(pending)
        self.marked: list[list[str]] = []
        self.changed = threading.Condition()

    def users_to_delete(self):
        return list(self.pending)

    def mark_users_deleted(self, boot_ids):
        with self.changed:
            self.marked.append(list(boot_ids))
            self.changed.notify_all()

    def marked_ids(self):
        return {boot_id for batch in self.marked for boot_id in batch}

    def wait_marked(self, boot_ids):
        with self.changed:
            assert self.changed.wait_for(
                lambda: set(boot_ids) <= self.marked_ids(), PATIENCE)


class Broker:
    """delete_users that records each call; ``gate`` holds calls back,
    ``failures`` fail the next calls."""

    def __init__(self, failures=0):
        self.calls: list[list[str]] = []
        self.failures = failures
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()

    def delete_users(self, names):
        self.entered.set()
        assert self.gate.wait(PATIENCE)
        if self.failures:
            self.failures -= 1
            raise ManagementUnavailable('management API down')
        self.calls.append(list(names))


@pytest.fixture
def started():
    revokers = []

    def start(store, broker, **kwargs):
        delays = []
        revoker = Revoker(store, broker, observe=delays.append,
                          max_backoff=0.01, **kwargs)
        revoker.delays = delays
        revoker.start()
        revokers.append(revoker)
        return revoker

    yield start
    for revoker in revokers:
        revoker.stop(timeout=PATIENCE)


def test_a_submitted_user_is_deleted_and_recorded(started):
    store, broker = Store(), Broker()
    revoker = started(store, broker)
    revoker.submit('boot1', 'boot-user1')
    store.wait_marked(['boot1'])
    assert broker.calls == [['boot-user1']]
    assert len(revoker.delays) == 1 and revoker.pending() == 0


def test_users_submitted_during_a_call_go_in_one_batch(started):
    store, broker = Store(), Broker()
    broker.gate.clear()
    revoker = started(store, broker, batch_size=3)
    revoker.submit('b0', 'u0')
    assert broker.entered.wait(PATIENCE)
    for i in range(1, 6):
        revoker.submit(f'b{i}', f'u{i}')
    broker.gate.set()
    store.wait_marked([f'b{i}' for i in range(6)])
    assert broker.calls == [['u0'], ['u1', 'u2', 'u3'], ['u4', 'u5']]
    assert store.marked == [['b0'], ['b1', 'b2', 'b3'], ['b4', 'b5']]


def test_a_user_submitted_twice_is_deleted_once(started):
    store, broker = Store(), Broker()
    broker.gate.clear()
    revoker = started(store, broker)
    revoker.submit('b0', 'u0')
    assert broker.entered.wait(PATIENCE)
    revoker.submit('b0', 'u0')  # a redelivery while it is being deleted
    revoker.submit('b1', 'u1')
    broker.gate.set()
    store.wait_marked(['b0', 'b1'])
    assert broker.calls == [['u0'], ['u1']]


def test_a_failed_call_is_retried_until_the_users_are_gone(started):
    store, broker = Store(), Broker(failures=3)
    revoker = started(store, broker)
    revoker.submit('b0', 'u0')
    store.wait_marked(['b0'])
    assert broker.calls == [['u0']]
    assert store.marked == [['b0']]


def test_pending_revocations_in_the_store_are_finished_at_start(started):
    store = Store(pending=[('b0', 'u0'), ('b1', 'u1')])
    broker = Broker()
    revoker = started(store, broker)
    store.wait_marked(['b0', 'b1'])
    assert broker.calls == [['u0', 'u1']]
    # Not counted as delays: nobody knows when they were received.
    assert revoker.delays == []


def test_callers_wait_while_the_backlog_is_older_than_the_bound(started):
    store, broker = Store(), Broker()
    broker.gate.clear()
    revoker = started(store, broker, max_delay=0.01, submit_wait=0.05)
    revoker.submit('b0', 'u0')
    assert broker.entered.wait(PATIENCE)
    with pytest.raises(RevocationsBehind):
        while True:  # until the first user is older than max_delay
            revoker.submit('b1', 'u1')
    # Queued all the same, and deleted once the broker answers.
    broker.gate.set()
    store.wait_marked(['b0', 'b1'])
    revoker.submit('b2', 'u2')  # no backlog: returns at once
    store.wait_marked(['b2'])


def test_stop_leaves_what_could_not_be_deleted_pending():
    store, broker = Store(), Broker(failures=10 ** 6)
    revoker = Revoker(store, broker, max_backoff=0.01)
    revoker.start()
    revoker.submit('b0', 'u0')
    assert broker.entered.wait(PATIENCE)
    revoker.stop(timeout=PATIENCE)
    assert not revoker._thread.is_alive()
    assert store.marked == []  # the next start finds it in the store


def test_stop_deletes_what_is_queued_first():
    store, broker = Store(), Broker()
    broker.gate.clear()
    revoker = Revoker(store, broker)
    revoker.start()
    revoker.submit('b0', 'u0')
    assert broker.entered.wait(PATIENCE)
    revoker.submit('b1', 'u1')
    broker.gate.set()
    revoker.stop(timeout=PATIENCE)
    assert store.marked_ids() == {'b0', 'b1'}


class _Response:
    def __init__(self, status_code):
        self.status_code = status_code


def test_bulk_delete_falls_back_to_one_call_per_user(monkeypatch):
    """RabbitMQ's bulk delete stops at the first missing user (400)."""
    management = Management('http://127.0.0.1:9', 'admin', 'secret')
    sent = []

    def send(method, path, body=None, ok_status=(404,)):
        sent.append((method, path, body))
        if path.endswith('bulk-delete'):
            return _Response(400)
        return _Response(404 if path.endswith('/gone') else 204)

    monkeypatch.setattr(management, 'send', send)
    management.delete_users(['a', 'gone', 'b'])
    assert sent == [('POST', '/api/users/bulk-delete',
                     {'users': ['a', 'gone', 'b']}),
                    ('DELETE', '/api/users/a', None),
                    ('DELETE', '/api/users/gone', None),
                    ('DELETE', '/api/users/b', None)]
    sent.clear()
    monkeypatch.setattr(management, 'send', lambda *a, **k: (
        sent.append(a[:2]), _Response(204))[1])
    management.delete_users(['a', 'b'])
    assert sent == [('POST', '/api/users/bulk-delete')]


def test_receive_gates_in_the_store_and_leaves_the_user_to_the_revoker():
    """The received transition refuses a second message at once; the
    user is not deleted inline."""
    record = types.SimpleNamespace(boot_id='b0', username='u0',
                                   message_id=None, user_deleted_at=None,
                                   state='issued')
    submitted = []

    class FakeStore:
        def transition(self, boot_id, to, allowed_from, message_id=None):
            assert to == State.RECEIVED
            if record.message_id is not None:
                return False
            record.message_id = message_id
            record.state = 'received'
            return True

        def get(self, boot_id):
            return record

    class NoManagement:
        def delete_user(self, name):
            raise AssertionError('deleted inline')

    credentials = Credentials.__new__(Credentials)
    credentials.store = FakeStore()
    credentials.management = NoManagement()
    credentials.revoker = types.SimpleNamespace(
        submit=lambda boot_id, user: submitted.append((boot_id, user)))
    assert credentials.receive(record, 'm1')
    assert not credentials.receive(record, 'm2')   # refused at once
    assert not credentials.receive(record, 'm1')   # a second publish of it
    assert credentials.receive(record, 'm1', again=True)  # its redelivery
    assert submitted == [('b0', 'u0'), ('b0', 'u0')]
    record.user_deleted_at = 'then'
    assert credentials.receive(record, 'm1', again=True)
    assert len(submitted) == 2  # gone already: nothing to revoke
