"""One fault at a time, in the middle of a burst of boots.

Each test publishes a burst as ramdisks would, strikes once the burst or
its application is under way, undoes the fault, and waits until every
published inventory is a node in Ironic or a dead letter. The figure:
published, applied, dead, lost (must be 0), applied twice (must be 0),
and recovery (seconds from the end of the fault to the next inventory
applied).
"""

from __future__ import annotations

import random
import subprocess
import time

import pytest

from hwbus.localstack.common import wait_for
from tests.chaos import tally
from tests.chaos.stack import Stack, drain, empty_postgres_store

BOOTS = 200


@pytest.fixture
def sqlite_stack(broker, clean_ironic, tmp_path):
    drain(broker)
    stack = Stack(tmp_path, broker, clean_ironic,
                  f'sqlite:///{tmp_path}/hwbus.sqlite')
    yield stack
    stack.stop()
    drain(broker)


def _settle(stack, burst, figure, fault: str, recovered_from: float,
            progress: tally.Progress, timeout: float = 900, **extra):
    burst.join()
    counts = tally.wait_settled(stack.ironic, stack.broker, burst.macs,
                                burst.published, timeout)
    progress.stop()
    recovery = extra.pop('recovery_s', None)
    if recovery is None:
        recovery = progress.recovery(recovered_from)
    result = figure(fault=fault, **counts, recovery_s=recovery,
                    drained_s=progress.drained(recovered_from,
                                               counts['applied']),
                    total_s=round(time.monotonic() - burst.started, 1),
                    **extra)
    assert burst.failed == [], burst.failed[:5]
    assert counts['lost'] == 0 and counts['twice'] == 0, result
    assert counts['dead'] == 0, result
    assert counts['applied'] == len(burst.macs)
    return result


def test_broker_restart_mid_burst(sqlite_stack, figure):
    stack = sqlite_stack.start()
    progress = tally.Progress(stack.applied)
    burst = tally.Burst(stack.credentials, 30000, BOOTS)
    burst.wait_published(BOOTS // 2)
    stack.broker.restart(down_for=5)
    back = time.monotonic()
    _settle(stack, burst, figure, 'broker restart (5 s down) mid-burst',
            back, progress)
    assert stack.consumers[0].proc.poll() is None
    assert 'broker connection lost' in stack.consumers[0].log.read_text()


def test_consumer_sigkill_mid_message_20_times(sqlite_stack, figure):
    """SIGKILL at random points while messages are in flight; a new
    consumer at once. Recovery is the worst wait, over the 20 kills, from
    a restart to the next inventory applied."""
    stack = sqlite_stack
    consumer = stack.consumers[0].start()
    progress = tally.Progress(stack.applied)
    burst = tally.Burst(stack.credentials, 31000, 300)
    rng = random.Random(20)  # reproducible kill points
    waits = []
    wait_for(lambda: stack.applied() > 0, 120, 'the first apply')
    for _ in range(20):
        time.sleep(rng.uniform(0.2, 3.0))
        consumer.kill()
        consumer.start()
        restarted = time.monotonic()
        before = stack.applied()
        if before < len(burst.macs):
            wait_for(lambda b=before: stack.applied() > b, 120,
                     'an apply after the restart')
            waits.append(time.monotonic() - restarted)
    _settle(stack, burst, figure, 'consumer SIGKILL x20 at random points',
            restarted, progress, kills=20,
            recovery_s=round(max(waits), 1),
            median_recovery_s=round(sorted(waits)[len(waits) // 2], 1))
    # A kill between a message's receipt and its user's deletion leaves
    # the deletion pending in the store: the next start finishes it.
    wait_for(lambda: not stack.store.users_to_delete(), 60,
             'every used credential\'s broker user deleted')
    assert not {user for user in stack.broker.users()
                if user.startswith('boot-')} & {
        c.username for c in stack.store.list(limit=10 ** 6)
        if c.state != 'issued'}


def ironic_limit(consumer) -> float | None:
    """The consumer's adaptive limit on applies in flight to Ironic."""
    return consumer.gauge('hwbus_ironic_concurrency_limit')


def test_ironic_down_for_minutes_during_a_burst(sqlite_stack, figure):
    """The limit on applies in flight falls to one while Ironic is down
    (it answers nothing); once it is back every boot is applied, none
    lost or applied twice. The limit climbs again from 1 against the
    restarted Ironic's own speed (the baseline is forgotten at the
    floor; tests/unit/test_limit.py); how far it gets before the last
    boot depends on that speed, so it is not asserted here."""
    stack = sqlite_stack.start()
    consumer = stack.consumers[0]
    progress = tally.Progress(stack.applied)
    burst = tally.Burst(stack.credentials, 32000, BOOTS)
    wait_for(lambda: stack.applied() >= BOOTS // 5, 300, 'a fifth applied')
    stack.ironic.stop()
    wait_for(lambda: ironic_limit(consumer) == 1, 60,
             'the limit at 1 while Ironic is down')
    time.sleep(120)
    stack.ironic.start()
    back = time.monotonic()
    _settle(stack, burst, figure, 'Ironic down 120 s during a burst',
            back, progress, down_s=120)


def test_store_unreachable_during_a_burst(broker, clean_ironic, postgres,
                                          tmp_path, figure):
    drain(broker)
    empty_postgres_store(postgres)
    stack = Stack(tmp_path, broker, clean_ironic, postgres.url).start()
    try:
        progress = tally.Progress(stack.applied)
        burst = tally.Burst(stack.credentials, 33000, BOOTS)
        wait_for(lambda: stack.applied() >= BOOTS // 5, 300,
                 'a fifth applied')
        postgres.stop()
        time.sleep(60)
        postgres.start()
        back = time.monotonic()
        _settle(stack, burst, figure, 'PostgreSQL store down 60 s', back,
                progress, down_s=60)
        log = stack.consumers[0].log.read_text()
        assert 'store-unavailable' in log or 'store is unavailable' in log
        assert postgres.password not in log
    finally:
        stack.stop()


def test_store_disk_full(broker, clean_ironic, tmp_path, figure):
    """The SQLite store on a small tmpfs that a filler file fills up.

    The tmpfs is well above SQLite's WAL size (up to 1,000 pages, 4 MiB,
    before a checkpoint): on a disk the WAL itself fills, nothing but
    more space can bring the store back."""
    drain(broker)
    disk = tmp_path / 'disk'
    disk.mkdir()
    subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=64m', 'hwbus-chaos',
                    str(disk)], check=True)
    stack = None
    try:
        stack = Stack(tmp_path, broker, clean_ironic,
                      f'sqlite:///{disk}/hwbus.sqlite')
        progress = tally.Progress(stack.applied)
        burst = tally.Burst(stack.credentials, 34000, 100, threads=4)
        burst.join()  # all published while the disk still had room
        filler = disk / 'filler'
        with open(filler, 'wb') as f:
            try:
                while True:
                    f.write(b'\0' * 65536)
                    f.flush()
            except OSError:
                pass
        stack.start()
        wait_for(lambda: 'full' in stack.consumers[0].log.read_text(), 120,
                 'the consumer meeting a full disk')
        time.sleep(10)
        applied_while_full = stack.applied()
        filler.unlink()
        freed = time.monotonic()
        _settle(stack, burst, figure, 'store disk full, then freed', freed,
                progress, applied_while_full=applied_while_full)
        with stack.store.engine.connect() as connection:
            assert connection.exec_driver_sql(
                'PRAGMA integrity_check').scalar() == 'ok'
    finally:
        if stack is not None:
            stack.stop()
        subprocess.run(['umount', '-l', str(disk)], check=False)

