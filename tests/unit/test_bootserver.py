"""The boot server's answers, with a fake issuer (the real one is in e2e)."""

import types

import pytest

from hwbus.bootserver.app import create_app
from hwbus.bootserver.ratelimit import Limiter
from hwbus.credentials import TooManyOutstanding


class FakeCredentials:
    def __init__(self, fail=None):
        self.issued = []
        self.fail = fail

    def issue(self, mac, ttl, after, issued_by, lldp):
        if self.fail:
            raise self.fail
        self.issued.append(mac)
        credential = types.SimpleNamespace(boot_id=f'boot{len(self.issued)}',
                                           expires_at='later')
        return types.SimpleNamespace(
            credential=credential,
            cmdline=f'hwbus.url=amqp://u:SECRET@h/ hwbus.boot=boot'
                    f'{len(self.issued)} hwbus.key=KEY')


def _conf(tmp_path, **bootserver):
    group = dict(image_dir=str(tmp_path), kernel_url=None, initrd_url=None,
                 public_url=None, kernel_args='console=ttyS0',
                 per_mac_interval=30.0, global_rate=20.0, global_burst=100)
    group.update(bootserver)
    return types.SimpleNamespace(
        bootserver=types.SimpleNamespace(**group),
        credentials=types.SimpleNamespace(ttl=600),
        ramdisk=types.SimpleNamespace(after='poweroff', lldp_timeout=0.0))


def _client(tmp_path, credentials=None, limiter=None, **bootserver):
    app = create_app(credentials or FakeCredentials(),
                     _conf(tmp_path, **bootserver), limiter)
    return app.test_client()


def test_a_boot_gets_the_ramdisk_with_its_parameters(tmp_path):
    creds = FakeCredentials()
    client = _client(tmp_path, creds)
    response = client.get('/boot.ipxe?mac=52-54-00-AB-CD-EF')
    text = response.get_data(as_text=True)
    assert response.status_code == 200 and text.startswith('#!ipxe\n')
    assert creds.issued == ['52:54:00:ab:cd:ef']
    assert 'kernel http://localhost/images/vmlinuz initrd=initramfs.zst ' \
           'console=ttyS0 hwbus.url=' in text
    assert 'BOOTIF=01-${net0/mac:hexhyp}' in text
    assert 'initrd http://localhost/images/initramfs.zst' in text
    assert text.rstrip().endswith('boot')


def test_without_a_mac_ipxe_is_asked_to_come_back_with_it(tmp_path):
    text = _client(tmp_path).get('/boot.ipxe').get_data(as_text=True)
    assert 'chain http://localhost/boot.ipxe?mac=${net0/mac}' in text


@pytest.mark.parametrize('mac', ['nonsense', '01:00:5e:00:00:01',
                                 '52:54:00:ab:cd', 'x' * 500])
def test_malformed_macs_are_refused_without_issuing(tmp_path, mac):
    creds = FakeCredentials()
    response = _client(tmp_path, creds).get(f'/boot.ipxe?mac={mac}')
    assert response.status_code == 400
    assert 'exit 1' in response.get_data(as_text=True)
    assert creds.issued == []


def test_one_mac_cannot_mint_credentials_in_a_loop(tmp_path):
    creds = FakeCredentials()
    client = _client(tmp_path, creds)
    codes = [client.get('/boot.ipxe?mac=52:54:00:00:00:01').status_code
             for _ in range(5)]
    assert codes == [200, 429, 429, 429, 429]
    assert len(creds.issued) == 1


def test_a_flood_from_many_macs_meets_the_global_bucket(tmp_path):
    now = [0.0]
    limiter = Limiter(per_mac_interval=30, rate=1.0, burst=10,
                      clock=lambda: now[0])
    creds = FakeCredentials()
    client = _client(tmp_path, creds, limiter)
    codes = [client.get(f'/boot.ipxe?mac=52:54:00:00:01:{i:02x}').status_code
             for i in range(50)]
    assert codes.count(200) == 10 and codes.count(429) == 40
    now[0] += 5  # five more tokens
    codes = [client.get(f'/boot.ipxe?mac=52:54:00:00:02:{i:02x}').status_code
             for i in range(10)]
    assert codes.count(200) == 5


def test_outstanding_cap_answers_503_and_says_why(tmp_path):
    creds = FakeCredentials(fail=TooManyOutstanding('1000 outstanding'))
    response = _client(tmp_path, creds).get(
        '/boot.ipxe?mac=52:54:00:00:00:01')
    assert response.status_code == 503
    assert 'too-many-outstanding' in response.get_data(as_text=True)


def test_images_are_served_and_nothing_else(tmp_path):
    (tmp_path / 'vmlinuz').write_bytes(b'kernel')
    (tmp_path / 'secret').write_text('no')
    client = _client(tmp_path)
    assert client.get('/images/vmlinuz').data == b'kernel'
    assert client.get('/images/secret').status_code == 404
    assert client.get('/images/..%2Fsecret').status_code == 404
    assert client.get('/images/initramfs.zst').status_code == 404


def test_external_image_urls(tmp_path):
    text = _client(tmp_path, kernel_url='http://img/k',
                   initrd_url='http://img/i').get(
        '/boot.ipxe?mac=52:54:00:00:00:09').get_data(as_text=True)
    assert 'kernel http://img/k ' in text and 'initrd http://img/i' in text
