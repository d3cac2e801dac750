"""The consumer's batching revoker against the real broker and store.

The store's ``received`` transition is the gate, the broker user's
deletion follows off the message's path: these tests hold the deletion
back (the consumer's management API URL points at a closed port) to
show the gate alone refuses a second message, that a consumer killed
with deletions pending finishes them when it starts again, and, with
the API reachable, that users go within the configured bound.
"""

import pytest

from hwbus.localstack.common import free_port, wait_for
from hwbus.localstack.consumer import write_config
from hwbus.store import State, Store
from tests.functional import boots
from tests.functional.conftest import (
    CONSUMER_PASSWORD,
    DEAD,
    credentials_for,
)

# [consumer] revoke_max_delay of these consumers, seconds.
MAX_DELAY = 5.0


@pytest.fixture
def stack(broker, consumers, tmp_path):
    """Empty queues, a fresh store, and two configs for a null-applier
    consumer: one whose management API is reachable, one whose is not."""
    url = f'sqlite:///{tmp_path}/hwbus.sqlite'

    class Stack:
        pass

    s = Stack()
    s.broker, s.store = broker, Store(url)
    s.credentials = credentials_for(broker, s.store)
    s.config = write_config(
        tmp_path / 'hwbus.conf', broker, url, None, CONSUMER_PASSWORD,
        appliers='null',
        extra=f'\n[consumer]\nrevoke_max_delay = {MAX_DELAY}\n')
    text = s.config.read_text()
    s.cut_off = tmp_path / 'no-management.conf'
    s.cut_off.write_text(text.replace(
        f'management_urls = {",".join(broker.management_urls)}',
        f'management_urls = http://127.0.0.1:{free_port()}/'))
    assert s.cut_off.read_text() != text
    s.consumer = lambda config: consumers(config).start()
    return s


def _applied(store, boot_id):
    return store.get(boot_id).state == State.APPLIED.value


def test_a_second_message_is_refused_while_the_user_still_exists_and_a_restart_finishes_the_revocation(  # noqa: E501
        stack):
    consumer = stack.consumer(stack.cut_off)
    issued, _ = boots.boot(stack.credentials, 700)
    boot_id, user = issued.credential.boot_id, issued.credential.username
    wait_for(lambda: _applied(stack.store, boot_id), 60, 'applied')
    wait_for(lambda: 'could not delete' in consumer.log.read_text(), 60,
             'a failed deletion')
    # The revoker cannot reach the management API: the user lives on,
    # and the store does not claim otherwise.
    assert user in stack.broker.users()
    assert stack.store.get(boot_id).user_deleted_at is None

    # (a) The same credential publishes again: the store's gate refuses
    # it at once, although the broker still takes its messages.
    boots.publish(issued, 700)
    dead = []
    wait_for(lambda: dead.extend(boots.get_all(stack.broker, DEAD)) or dead,
             60, 'the second message dead-lettered')
    assert [p.headers['x-hwbus-dead-reason'] for p, _ in dead] == \
        ['replayed-boot']
    assert user in stack.broker.users()
    assert consumer.counter('applied') == 1

    # (c) Killed with the deletion pending; started with the API
    # reachable: the revocation the store says is pending is finished.
    consumer.kill()
    assert user in stack.broker.users()
    restarted = stack.consumer(stack.config)
    wait_for(lambda: user not in stack.broker.users(), MAX_DELAY + 30,
             'the pending revocation finished')
    wait_for(lambda: stack.store.get(boot_id).user_deleted_at is not None,
             30, 'the deletion recorded')
    assert 'finishing 1 revocations left pending' in \
        restarted.log.read_text()
    assert stack.store.get(boot_id).state == State.APPLIED.value


def test_users_are_deleted_within_the_bound(stack):
    """(b) Each user is gone within revoke_max_delay of its message's
    receipt, by the consumer's own measure, and the store records it."""
    consumer = stack.consumer(stack.config)
    issued = [boots.boot(stack.credentials, 710 + i)[0] for i in range(20)]
    users = {one.credential.username for one in issued}
    wait_for(lambda: not users & stack.broker.users(), MAX_DELAY + 60,
             'every used user deleted')
    for one in issued:
        record = stack.store.get(one.credential.boot_id)
        assert record.state == State.APPLIED.value
        assert record.user_deleted_at is not None
    text = consumer.metrics()
    count = _sample(text, 'hwbus_revoke_delay_seconds_count')
    assert count == 20
    assert _sample(text, 'hwbus_revoke_delay_seconds_bucket{le="5.0"}') == \
        count
    assert _sample(text, 'hwbus_revoke_pending') == 0


def _sample(text, name):
    for line in text.splitlines():
        if line.startswith(name + ' '):
            return float(line.split()[-1])
    raise AssertionError(f'{name} not in the metrics')
