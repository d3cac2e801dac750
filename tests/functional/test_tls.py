"""The ramdisk publishes over AMQPS and pins the broker's CA (hwbus.ca)."""

import dataclasses

import pytest

from hwbus import keys
from hwbus.broker import topology
from hwbus.ramdisk import publisher
from hwbus.store import Store
from tests.functional import boots
from tests.functional.conftest import (
    CONSUMER_PASSWORD,
    credentials_for,
    management_for,
)
from tests.servers.rabbitmq import RabbitMQServer
from tests.servers.tls import CA


@pytest.fixture(scope='module')
def tls_broker(tmp_path_factory):
    ca = CA()
    server = RabbitMQServer(tmp_path_factory.mktemp('tls-rabbitmq'),
                            tls_ca=ca).start()
    topology.setup(management_for(server), topology.Topology(),
                   CONSUMER_PASSWORD)
    server.ca = ca
    yield server
    server.stop()


@pytest.fixture
def tls_credentials(tls_broker, tmp_path):
    credentials = credentials_for(
        tls_broker, Store(f'sqlite:///{tmp_path}/hwbus.sqlite'),
        ca=keys.b64encode(tls_broker.ca.der))
    credentials.public_urls = [
        f'amqps://127.0.0.1:{tls_broker.amqps_port}/%2F']
    return credentials


def _sealed(issued):
    from hwbus.ramdisk import main as ramdisk

    return ramdisk.seal(boots.document('qemu-guest', issued.credential.mac),
                        None, issued.params)


def test_publish_over_amqps_with_the_pinned_ca(tls_broker, tls_credentials):
    boots.get_all(tls_broker, 'hwbus.inventory')
    issued = tls_credentials.issue(mac=boots.mac_for(1))
    assert issued.params.ca and issued.cmdline.count('hwbus.ca=') == 1
    assert len(issued.cmdline) < 2048
    result = publisher.publish(_sealed(issued), issued.params, deadline=30)
    assert result.url.startswith('amqps://')
    assert len(boots.get_all(tls_broker, 'hwbus.inventory')) == 1


def test_a_broker_with_another_ca_is_refused(tls_broker, tls_credentials):
    boots.get_all(tls_broker, 'hwbus.inventory')
    issued = tls_credentials.issue(mac=boots.mac_for(2))
    impostor = CA('impostor CA')
    params = dataclasses.replace(issued.params,
                                 ca=keys.b64encode(impostor.der))
    with pytest.raises(publisher.DeadlineExceeded,
                       match=r'CERTIFICATE_VERIFY_FAILED|certificate'):
        publisher.publish(_sealed(issued), params, deadline=3)
    assert boots.get_all(tls_broker, 'hwbus.inventory') == []


def test_the_ca_may_be_a_pem_file_in_the_image(tls_broker, tls_credentials,
                                               tmp_path):
    boots.get_all(tls_broker, 'hwbus.inventory')
    issued = tls_credentials.issue(mac=boots.mac_for(3))
    pem = tls_broker.ca.write(tmp_path / 'ca.pem')
    params = dataclasses.replace(issued.params, ca=str(pem))
    publisher.publish(_sealed(issued), params, deadline=30)
    assert len(boots.get_all(tls_broker, 'hwbus.inventory')) == 1
