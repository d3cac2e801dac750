"""The ramdisk publishes to a broker given as a bracketed IPv6 address.

The test node listens on ::1 as well as 127.0.0.1 (hwbus.localstack
.rabbitmq); its AMQPS certificate names ::1 as an IP subjectAltName, which
the ramdisk verifies the way it verifies a host name.
"""

import pytest

from hwbus import bootparams, keys
from hwbus.broker import topology
from hwbus.localstack.rabbitmq import RabbitMQServer
from hwbus.localstack.tls import CA
from hwbus.ramdisk import main as ramdisk
from hwbus.ramdisk import publisher
from hwbus.store import Store
from tests.functional import boots
from tests.functional.conftest import (
    CONSUMER_PASSWORD,
    credentials_for,
    management_for,
)
from tests.functional.test_ramdisk_publish import ramdisk as run_ramdisk


def test_the_ramdisk_publishes_to_a_bracketed_ipv6_broker(broker, tmp_path):
    assert broker.ipv6_host == '::1'
    boots.get_all(broker, 'hwbus.inventory')
    credentials = credentials_for(
        broker, Store(f'sqlite:///{tmp_path}/hwbus.sqlite'))
    credentials.public_urls = [f'amqp://[::1]:{broker.amqp_port}/%2F']
    issued = credentials.issue(mac=boots.mac_for(6001), after='none')
    [url] = issued.params.urls
    assert url.startswith(f'amqp://{issued.credential.username}:')
    assert url.endswith(f'@[::1]:{broker.amqp_port}/%2F')
    assert bootparams.parse(issued.cmdline).urls == [url]
    result = run_ramdisk(issued.cmdline)
    assert result.returncode == 0, result.stderr
    password = url.split('@')[0].rsplit(':', 1)[1]
    assert password not in result.stdout + result.stderr
    assert (f'{issued.credential.username}:***@[::1]:{broker.amqp_port}'
            in result.stderr)
    assert 'confirmed message' in result.stderr
    [(properties, _)] = boots.get_all(broker, 'hwbus.inventory')
    assert properties.user_id == issued.credential.username


@pytest.fixture(scope='module')
def tls_broker(tmp_path_factory):
    ca = CA()
    server = RabbitMQServer(tmp_path_factory.mktemp('tls6-rabbitmq'),
                            tls_ca=ca).start()
    topology.setup(management_for(server), topology.Topology(),
                   CONSUMER_PASSWORD)
    server.ca = ca
    yield server
    server.stop()


def _issue(server, tmp_path, ca_der):
    credentials = credentials_for(
        server, Store(f'sqlite:///{tmp_path}/hwbus.sqlite'),
        ca=keys.b64encode(ca_der))
    credentials.public_urls = [f'amqps://[::1]:{server.amqps_port}/%2F']
    return credentials.issue(mac=boots.mac_for(6002))


def test_amqps_to_an_ipv6_literal_verifies_it_against_the_certificate(
        tls_broker, tmp_path):
    boots.get_all(tls_broker, 'hwbus.inventory')
    issued = _issue(tls_broker, tmp_path, tls_broker.ca.der)
    sealed = ramdisk.seal(boots.document('qemu-guest', issued.credential.mac),
                          None, issued.params)
    result = publisher.publish(sealed, issued.params, deadline=30)
    assert result.url.endswith(f':***@[::1]:{tls_broker.amqps_port}/%2F')
    assert len(boots.get_all(tls_broker, 'hwbus.inventory')) == 1


def test_amqps_to_an_ipv6_literal_the_certificate_does_not_name_fails(
        tmp_path):
    """The same kind of broker, its certificate naming only localhost and
    127.0.0.1: over [::1] the ramdisk refuses it (the name, not the chain:
    over 127.0.0.1 the same credential is confirmed)."""
    ca = CA()
    server = RabbitMQServer(tmp_path / 'rabbitmq', tls_ca=ca,
                            cert_hosts=('localhost', '127.0.0.1')).start()
    try:
        topology.setup(management_for(server), topology.Topology(),
                       CONSUMER_PASSWORD)
        issued = _issue(server, tmp_path, ca.der)
        sealed = ramdisk.seal(
            boots.document('qemu-guest', issued.credential.mac), None,
            issued.params)
        with pytest.raises(publisher.DeadlineExceeded,
                           match='IP address mismatch'):
            publisher.publish(sealed, issued.params, deadline=3)
        issued.params.urls = [issued.params.urls[0].replace(
            '[::1]', '127.0.0.1')]
        assert publisher.publish(sealed, issued.params, deadline=30)
    finally:
        server.stop()
