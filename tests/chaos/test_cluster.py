"""Scale-out: a three-node RabbitMQ cluster, two consumers, one store.

The inventory queue is a quorum queue on all three nodes. In the middle
of a 1,000-boot burst the node that leads the queue (and that every
client reached first) is stopped, and brought back a little later.
"""

from __future__ import annotations

import os
import time

import pytest

from hwbus.broker import topology
from hwbus.localstack.rabbitmq import RabbitMQCluster
from tests.chaos import tally
from tests.chaos.stack import Stack, drain, empty_postgres_store
from tests.functional.conftest import CONSUMER_PASSWORD, management_for

BOOTS = int(os.environ.get('HWBUS_CLUSTER_BOOTS', '1000'))


@pytest.fixture(scope='module')
def cluster(tmp_path_factory):
    cluster = RabbitMQCluster(tmp_path_factory.mktemp('cluster'))
    try:
        cluster.start()
        topology.setup(management_for(cluster), topology.Topology(),
                       CONSUMER_PASSWORD)
        yield cluster
    finally:
        cluster.stop()


def test_the_queue_is_replicated_on_every_node(cluster):
    queue = cluster.api('GET', '/api/queues/%2F/hwbus.inventory').json()
    assert queue['type'] == 'quorum'
    assert sorted(queue['members']) == sorted(n.node for n in cluster.nodes)


def test_a_node_stopped_mid_burst_loses_nothing(cluster, clean_ironic,
                                                postgres, tmp_path, figure):
    drain(cluster)
    empty_postgres_store(postgres)
    stack = Stack(tmp_path, cluster, clean_ironic, postgres.url,
                  consumers=2).start()
    victim = cluster.nodes[0]
    leader = cluster.api('GET', '/api/queues/%2F/hwbus.inventory').json()
    progress = tally.Progress(stack.applied)
    try:
        burst = tally.Burst(stack.credentials, 20000, BOOTS)
        burst.wait_published(BOOTS // 2)
        stopped_at = time.monotonic()
        victim.stop()
        time.sleep(10)
        victim.start()
        back_at = time.monotonic()
        burst.join()
        assert burst.failed == []
        counts = tally.wait_settled(clean_ironic, cluster, burst.macs,
                                    burst.published, timeout=1800)
        total = time.monotonic() - burst.started
    finally:
        progress.stop()
        stack.stop()
    figure(fault=f'cluster: leader node down 10 s in a {BOOTS}-boot '
                 f'burst', **counts,
           recovery_s=progress.recovery(stopped_at),
           drained_s=progress.drained(back_at, counts['applied']),
           rejoined_s=round(back_at - stopped_at, 1),
           total_s=round(total, 1), leader=leader.get('leader'),
           stopped=victim.node)
    assert counts['lost'] == 0 and counts['twice'] == 0
    assert counts['dead'] == 0 and counts['applied'] == BOOTS
    assert len(clean_ironic.nodes()) == BOOTS
    assert stack.applied() == BOOTS
    assert sorted(cluster.running_nodes()) == sorted(
        n.node for n in cluster.nodes)
    logs = [c.log.read_text() for c in stack.consumers]
    assert all('applied message' in log for log in logs)  # both worked
    assert any('broker connection lost' in log for log in logs)
