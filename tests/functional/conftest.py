"""Real servers for the functional tests, one of each per session."""

import pytest

from hwbus.broker import topology
from hwbus.broker.management import Management
from hwbus.credentials import Credentials
from hwbus.localstack.consumer import ConsumerProcess
from hwbus.localstack.ironic import IronicServer
from hwbus.localstack.postgres import PostgresServer
from hwbus.localstack.rabbitmq import RabbitMQServer
from hwbus.store import Store
from tests.functional import boots

CONSUMER_PASSWORD = 'consumer-secret-for-tests'
QUEUE, DEAD = 'hwbus.inventory', 'hwbus.inventory.dead'


@pytest.fixture(scope='session')
def ironic(tmp_path_factory):
    server = IronicServer(tmp_path_factory.mktemp('ironic')).start()
    yield server
    server.stop()


@pytest.fixture
def clean_ironic(ironic):
    """The shared Ironic with no nodes, before and after the test."""
    ironic.delete_all_nodes()
    yield ironic
    ironic.delete_all_nodes()


@pytest.fixture(scope='session')
def rabbitmq(tmp_path_factory):
    server = RabbitMQServer(tmp_path_factory.mktemp('rabbitmq')).start()
    yield server
    server.stop()


@pytest.fixture(scope='session')
def postgres(tmp_path_factory):
    server = PostgresServer(tmp_path_factory.mktemp('postgres')).start()
    yield server
    server.stop()


def management_for(server) -> Management:
    """The management API of a RabbitMQServer or RabbitMQCluster."""
    verify = str(server.ca_file) if getattr(server, 'tls_only', False) \
        else True
    return Management(server.management_urls, server.admin_user,
                      server.admin_password, verify=verify)


@pytest.fixture(scope='session')
def broker(rabbitmq):
    """The shared node with hwbus's topology declared, as an operator would."""
    topology.setup(management_for(rabbitmq), topology.Topology(),
                   CONSUMER_PASSWORD)
    return rabbitmq


def credentials_for(server, store: Store, **kwargs) -> Credentials:
    return Credentials(store, management_for(server), topology.Topology(),
                       server.client_urls, **kwargs)


@pytest.fixture
def store(tmp_path):
    return Store(f'sqlite:///{tmp_path}/hwbus.sqlite')


@pytest.fixture
def credentials(broker, store):
    return credentials_for(broker, store)


class Consumers:
    """The hwbus-consumer processes of one test."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.processes: list[ConsumerProcess] = []

    def __call__(self, config, name='consumer') -> ConsumerProcess:
        """A consumer of ``config`` logging to tmp_path/NAME.log, not
        started yet; it is stopped after the test."""
        return self.append(ConsumerProcess(config,
                                           self.tmp_path / f'{name}.log'))

    def append(self, process: ConsumerProcess) -> ConsumerProcess:
        """Stop ``process``, made some other way, after the test too."""
        self.processes.append(process)
        return process

    def stop(self) -> None:
        for process in self.processes:
            process.stop()


@pytest.fixture
def consumers(broker, tmp_path):
    """Consumers for one test, on empty queues: after the test every
    consumer is stopped first, so that the messages it held go back to
    their queue, and then both queues are emptied again."""
    boots.get_all(broker, QUEUE)
    boots.get_all(broker, DEAD)
    made = Consumers(tmp_path)
    yield made
    made.stop()
    boots.get_all(broker, QUEUE)
    boots.get_all(broker, DEAD)
