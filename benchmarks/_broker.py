"""A throwaway RabbitMQ node with hwbus's topology, for the benchmarks."""

from __future__ import annotations

import pathlib
import sys
import tempfile

TOP = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TOP))

from hwbus.broker import topology  # noqa: E402
from hwbus.broker.management import Management  # noqa: E402
from hwbus.credentials import Credentials  # noqa: E402
from hwbus.localstack.rabbitmq import RabbitMQServer  # noqa: E402
from hwbus.store import Store  # noqa: E402


def start() -> tuple[RabbitMQServer, Credentials]:
    work = pathlib.Path(tempfile.mkdtemp(prefix='hwbus-bench-'))
    server = RabbitMQServer(work / 'rabbitmq').start()
    management = Management(server.management_url, server.admin_user,
                            server.admin_password)
    topology.setup(management, topology.Topology(), 'bench-consumer')
    store = Store(f'sqlite:///{work}/hwbus.sqlite')
    credentials = Credentials(
        store, management, topology.Topology(),
        [f'amqp://127.0.0.1:{server.amqp_port}/%2F'],
        max_outstanding=10 ** 6)
    return server, credentials
