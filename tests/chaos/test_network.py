"""The network between the consumer and the broker, cut and restored.

The consumer runs in a network namespace this test creates; the broker
and Ironic listen on the host end of its veth. The cut is silent (the
namespace's end of the veth goes down: no reset, no FIN), so only AMQP
heartbeats can tell the consumer its connection is dead.
"""

from __future__ import annotations

import os
import time

import pytest

from hwbus.broker import topology
from hwbus.localstack.consumer import ConsumerProcess
from hwbus.localstack.ironic import IronicServer
from hwbus.localstack.rabbitmq import RabbitMQServer
from tests.chaos import tally
from tests.chaos.netns import Namespace
from tests.chaos.stack import Stack
from tests.functional.conftest import CONSUMER_PASSWORD, management_for

CUT = 60


@pytest.fixture
def netns():
    if os.geteuid() != 0:
        pytest.fail('network namespaces need root (CI runs as root)')
    namespace = Namespace().create()
    yield namespace
    namespace.destroy()


def test_network_cut_between_consumer_and_broker(netns, tmp_path, figure):
    broker = RabbitMQServer(tmp_path / 'rabbitmq', host=netns.host_ip)
    ironic = IronicServer(tmp_path / 'ironic', host=netns.host_ip)
    stack = None
    try:
        broker.start()
        ironic.start()
        topology.setup(management_for(broker), topology.Topology(),
                       CONSUMER_PASSWORD)
        stack = Stack(tmp_path, broker, ironic,
                      f'sqlite:///{tmp_path}/hwbus.sqlite',
                      extra='\n[consumer]\nheartbeat = 10\n')
        stack.consumers = [ConsumerProcess(stack.configs[0],
                                           tmp_path / 'c0.log',
                                           wrapper=netns.wrap())]
        stack.start()
        progress = tally.Progress(stack.applied)
        burst = tally.Burst(stack.credentials, 35000, 150)
        burst.wait_published(50)
        netns.cut()
        time.sleep(CUT)
        netns.restore()
        back = time.monotonic()
        burst.join()
        counts = tally.wait_settled(ironic, broker, burst.macs,
                                    burst.published, timeout=900)
        progress.stop()
        result = figure(fault=f'consumer-broker network cut {CUT} s',
                        **counts, recovery_s=progress.recovery(back),
                        drained_s=progress.drained(back, counts['applied']),
                        total_s=round(time.monotonic() - burst.started, 1))
        assert burst.failed == []
        assert counts['lost'] == 0 and counts['twice'] == 0, result
        assert counts['dead'] == 0 and counts['applied'] == 150, result
        assert 'broker connection lost' in \
            stack.consumers[0].log.read_text()
    finally:
        if stack is not None:
            stack.stop()
        ironic.stop()
        broker.stop()
