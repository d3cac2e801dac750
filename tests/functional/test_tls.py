"""The ramdisk publishes over AMQPS and pins the broker's CA (hwbus.ca)."""

import dataclasses

import pytest

from hwbus import keys
from hwbus.broker import topology
from hwbus.localstack.rabbitmq import RabbitMQServer
from hwbus.localstack.tls import CA
from hwbus.ramdisk import publisher
from hwbus.store import Store
from tests.functional import boots
from tests.functional.conftest import (
    CONSUMER_PASSWORD,
    credentials_for,
    management_for,
)


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


# -- TLS everywhere: broker TLS only, HTTPS Ironic, HTTPS boot server ------
@pytest.fixture(scope='module')
def tls_site(tmp_path_factory):
    """One CA; a broker with no plain listener (AMQPS, management on
    HTTPS), an Ironic API on HTTPS only, and a config that points every
    hwbus command at them through that CA."""
    from hwbus.localstack.ironic import IronicServer

    tmp = tmp_path_factory.mktemp('tls-site')
    ca = CA('hwbus site CA')
    broker = RabbitMQServer(tmp / 'rabbitmq', tls_ca=ca, tls_only=True)
    ironic = IronicServer(tmp / 'ironic', tls_ca=ca)
    try:
        broker.start()
        ironic.start()
        topology.setup(management_for(broker),
                       topology.Topology(), CONSUMER_PASSWORD)
        yield broker, ironic, ca, tmp
    finally:
        ironic.stop()
        broker.stop()


def _site_config(tls_site, name: str, ca_file=None):
    from hwbus.localstack.common import free_port
    from hwbus.localstack.consumer import write_config

    broker, ironic, ca, tmp = tls_site
    port = free_port()
    cert, key = ca.issue(tmp, f'bootserver-{name}')
    images = tmp / 'images'  # it issues nothing while they are missing
    images.mkdir(exist_ok=True)
    for image in ('vmlinuz', 'initramfs.zst'):
        (images / image).write_bytes(b'image')
    config = write_config(
        tmp / f'{name}.conf', broker, f'sqlite:///{tmp}/{name}.sqlite',
        ironic.url, CONSUMER_PASSWORD,
        extra=f'\n[ironic]\ncafile = {ca_file or broker.ca_file}\n'
              f'\n[bootserver]\nhost = 127.0.0.1\nport = {port}\n'
              f'cert_file = {cert}\nkey_file = {key}\n'
              f'image_dir = {images}\n'
              f'public_url = https://localhost:{port}\n')
    if ca_file:
        text = config.read_text().replace(f'ca_file = {broker.ca_file}',
                                          f'ca_file = {ca_file}')
        config.write_text(text)
    return config, port


def test_tls_everywhere_a_boot_from_the_https_boot_server_reaches_ironic(
        tls_site):
    """Every hop verified against the site CA: HTTPS boot server, AMQPS
    ramdisk and consumer, consumer to HTTPS Ironic."""
    import re

    import requests

    from hwbus import bootparams
    from hwbus.localstack.bootserver import BootServer
    from hwbus.localstack.common import wait_for
    from hwbus.localstack.consumer import ConsumerProcess
    from hwbus.ramdisk import main as ramdisk

    broker, ironic, _ca, tmp = tls_site
    listeners = {(item['protocol'], item['port']) for item in
                 broker.api('GET', '/api/overview').json()['listeners']}
    assert {proto for proto, _ in listeners} <= {'amqp/ssl', 'https',
                                                 'clustering'}
    config, port = _site_config(tls_site, 'site')
    consumer = ConsumerProcess(config, tmp / 'consumer.log').start()
    bootserver = BootServer(config, tmp / 'bootserver.log', port,
                            ca_file=broker.ca_file).start()
    try:
        with pytest.raises(requests.exceptions.SSLError):
            bootserver.get('/healthz', verify=True)  # not a public CA
        mac = boots.mac_for(7001)
        script = bootserver.get(f'/boot.ipxe?mac={mac}').text
        kernel = next(line for line in script.splitlines()
                      if line.startswith('kernel '))
        params = bootparams.parse(kernel)
        assert all(u.startswith('amqps://') for u in params.urls)
        assert params.ca and 'kernel https://localhost' in script
        sealed = ramdisk.seal(boots.document('qemu-guest', mac), None,
                              params)
        publisher.publish(sealed, params, deadline=60)

        def applied():
            return any(p['address'] == mac for p in ironic.ports())

        wait_for(applied, 120, 'the node in the HTTPS Ironic')
        assert not re.search(r'^' + params.user + r'$',
                             '\n'.join(broker.users()), re.M)
        assert 'amqps://' in consumer.log.read_text()
    finally:
        bootserver.stop()
        consumer.stop()


def test_a_consumer_that_trusts_another_ca_does_not_connect(tls_site,
                                                            tmp_path):
    import subprocess

    from hwbus.localstack.common import wait_for
    from hwbus.localstack.consumer import BIN

    impostor = CA('impostor CA').write(tmp_path / 'impostor.pem')
    config, _ = _site_config(tls_site, 'wrong-ca', ca_file=impostor)
    log = tmp_path / 'consumer.log'
    proc = subprocess.Popen(
        [str(BIN / 'hwbus-consumer'), '--config-file', str(config)],
        stdout=subprocess.DEVNULL, stderr=log.open('a'))
    try:
        wait_for(lambda: 'CERTIFICATE_VERIFY_FAILED' in log.read_text(),
                 60, 'the consumer refusing the broker')
        assert 'consuming' not in log.read_text()
        assert CONSUMER_PASSWORD not in log.read_text()
    finally:
        proc.terminate()
        proc.wait(30)
