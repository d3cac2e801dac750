"""hwbus-manage setup-broker: exchanges, queues and the consumer user."""

from __future__ import annotations

import json
from typing import Any

from hwbus.broker import topology as broker_topology
from hwbus.cmd import wiring
from hwbus.conf import CONF


def add_parser(subparsers: Any) -> None:
    setup = subparsers.add_parser(
        'setup-broker', help='declare exchanges, queues and the consumer '
                             'user (idempotent)')
    setup.add_argument('--print-definitions', action='store_true',
                       help='print a RabbitMQ definitions file instead')
    setup.set_defaults(func=do_setup_broker)


def do_setup_broker() -> int:
    topology = wiring.topology()
    password = CONF.broker.consumer_password
    if CONF.command.print_definitions:
        print(json.dumps(broker_topology.definitions(topology, password),
                         indent=2))
        return 0
    for line in broker_topology.setup(wiring.management(), topology, password):
        print(f'declared {line}')
    print(f'broker configuration needed (rabbitmq.conf on every node): '
          f'{topology.broker_config()}')
    return 0
