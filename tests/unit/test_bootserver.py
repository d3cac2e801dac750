"""The boot server's answers, with a fake issuer (the real one is in e2e
and tests/functional/test_bootserver_attacks.py)."""

import asyncio
import logging
import struct
import types

import pytest

from hwbus.bootserver import pacing, server
from hwbus.bootserver.app import create_app, printable
from hwbus.bootserver.ratelimit import Limiter
from hwbus.credentials import TooManyForMac


class FakeCredentials:
    def __init__(self, fail=None):
        self.issued = []
        self.ttls = []
        self.bmc = []
        self.fail = fail

    def issue(self, mac, ttl, after, issued_by, lldp, per_mac=0,
              client=None, bmc=None):
        if self.fail:
            raise self.fail
        self.issued.append(mac)
        self.ttls.append(ttl)
        self.bmc.append(bmc)
        credential = types.SimpleNamespace(boot_id=f'boot{len(self.issued)}',
                                           expires_at='later')
        return types.SimpleNamespace(
            credential=credential,
            cmdline=f'hwbus.url=amqp://u:SECRET@h/ hwbus.boot=boot'
                    f'{len(self.issued)} hwbus.key=KEY')


@pytest.fixture
def clock(monkeypatch):
    """A fake clock for the limits: ``clock[0]`` is the time. limits'
    memory storage reads time.time() of its own module, replaced here."""
    import limits.storage.memory

    now = [1000.0]
    monkeypatch.setattr(limits.storage.memory, 'time',
                        types.SimpleNamespace(time=lambda: now[0]))
    return now


def _conf(tmp_path, images=True, **bootserver):
    for name in ('vmlinuz', 'initramfs.zst') if images else ():
        if not (tmp_path / name).exists():
            (tmp_path / name).write_bytes(b'image')
    group = dict(image_dir=str(tmp_path), kernel_url=None, initrd_url=None,
                 public_url=None, kernel_args='console=ttyS0',
                 credential_ttl=900, per_client_burst=10,
                 per_client_interval=60, per_mac_burst=2,
                 per_mac_interval=10, global_rate=20.0, global_burst=100,
                 trusted_proxies=[], per_mac_outstanding=2,
                 arm64_kernel_args=None, shim_x64=None, grub_x64=None,
                 shim_aa64=None, grub_aa64=None, grub_http_x64=None,
                 grub_http_aa64=None)
    group.update(bootserver)
    return types.SimpleNamespace(
        bootserver=types.SimpleNamespace(**group),
        credentials=types.SimpleNamespace(ttl=3600),
        ramdisk=types.SimpleNamespace(after='poweroff', lldp_timeout=0.0))


def test_no_credential_is_issued_when_the_images_are_missing(tmp_path):
    creds = FakeCredentials()
    client = create_app(creds, _conf(tmp_path, images=False)).test_client()
    response = client.get('/boot.ipxe?mac=52:54:00:ab:cd:ef')
    assert response.status_code == 503 and creds.issued == []
    assert 'vmlinuz, initramfs.zst missing in [bootserver] image_dir' in \
        response.get_data(as_text=True)


def test_a_mac_ironic_says_is_in_use_gets_no_credential(tmp_path, caplog):
    """Refused, told only that it is not to be inspected now; the
    binding rule's reason (the node, its state) is logged, not sent."""
    caplog.set_level(logging.INFO, logger='hwbus.bootserver')
    creds = FakeCredentials()
    in_use = '52:54:00:ab:cd:ef'
    app = create_app(creds, _conf(tmp_path), refusal_for=lambda mac: (
        f'{mac} is a port of node n1 (provision state "active")'
        if mac == in_use else None))
    client = app.test_client()
    for path in ('/boot.ipxe', '/boot.grub'):
        refused = client.get(f'{path}?mac={in_use}')
        assert refused.status_code == 403
        text = refused.get_data(as_text=True)
        assert f'{in_use}: this machine is not to be inspected now' in text
        assert 'n1' not in text and 'active' not in text
    assert caplog.text.count('port of node n1 (provision state "active")'
                             ) == 2
    assert client.get('/boot.ipxe?mac=52:54:00:ab:cd:01').status_code == 200
    assert creds.issued == ['52:54:00:ab:cd:01']


def _client(tmp_path, credentials=None, limiter=None, **bootserver):
    app = create_app(credentials or FakeCredentials(),
                     _conf(tmp_path, **bootserver), limiter)
    return app.test_client()


def _boot(client, mac, address='127.0.0.1', **kwargs):
    return client.get(f'/boot.ipxe?mac={mac}',
                      environ_base={'REMOTE_ADDR': address}, **kwargs)


def test_a_boot_gets_the_ramdisk_with_its_parameters(tmp_path):
    creds = FakeCredentials()
    client = _client(tmp_path, creds)
    response = client.get('/boot.ipxe?mac=52-54-00-AB-CD-EF')
    text = response.get_data(as_text=True)
    assert response.status_code == 200 and text.startswith('#!ipxe\n')
    assert creds.issued == ['52:54:00:ab:cd:ef']
    assert creds.ttls == [900]  # [bootserver] credential_ttl, not 3600
    assert 'kernel http://localhost/images/vmlinuz initrd=initramfs.zst ' \
           'console=ttyS0 hwbus.url=' in text
    assert 'BOOTIF=01-${net0/mac:hexhyp}' in text
    assert 'initrd http://localhost/images/initramfs.zst' in text
    assert text.rstrip().endswith('boot')


def test_without_a_mac_ipxe_is_asked_to_come_back_with_it(tmp_path):
    text = _client(tmp_path).get('/boot.ipxe').get_data(as_text=True)
    assert 'chain http://localhost/boot.ipxe?mac=${net0/mac}' in text
    text = _client(tmp_path, public_url='https://boot.example/').get(
        '/boot.ipxe').get_data(as_text=True)
    assert 'chain https://boot.example/boot.ipxe?mac=${net0/mac}' in text


@pytest.mark.parametrize('mac', ['nonsense', '01:00:5e:00:00:01',
                                 'ff:ff:ff:ff:ff:ff', '00:00:00:00:00:00',
                                 '000000000000', '52:54:00:ab:cd', 'x' * 500])
def test_malformed_macs_are_refused_without_issuing(tmp_path, mac):
    creds = FakeCredentials()
    response = _client(tmp_path, creds).get(f'/boot.ipxe?mac={mac}')
    assert response.status_code == 400
    assert 'exit 1' in response.get_data(as_text=True)
    assert creds.issued == []


def test_client_text_reaches_the_log_and_the_script_escaped(tmp_path,
                                                           caplog):
    caplog.set_level(logging.INFO, logger='hwbus.bootserver')
    creds = FakeCredentials()
    response = _client(tmp_path, creds).get(
        '/boot.ipxe?mac=52:54%0d%0aFORGED%20line%1b[31m%c3%a9')
    assert response.status_code == 400 and creds.issued == []
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and 'from 127.0.0.1 refused (400)' in lines[0]
    for text in (lines[0], response.get_data(as_text=True).splitlines()[1]):
        assert not any(c in text for c in '\r\n\x1b\xe9')
        assert '\\r\\nFORGED line\\x1b[31m' in text
    assert printable('a\x00\u2028' + 'x' * 300) == \
        'a\\x00\\u2028' + 'x' * 197 + '...'


@pytest.mark.parametrize('method', ['HEAD', 'POST', 'PUT', 'DELETE',
                                    'PATCH', 'OPTIONS'])
def test_only_get_issues_a_credential(tmp_path, method):
    creds = FakeCredentials()
    client = _client(tmp_path, creds)
    response = client.open('/boot.ipxe?mac=52:54:00:00:00:01',
                           method=method)
    assert response.status_code == 405
    assert response.headers['Allow'] == 'GET'
    assert creds.issued == []
    # and it spent nothing: the machine's own GETs still get their burst
    codes = [_boot(client, '52:54:00:00:00:01').status_code
             for _ in range(2)]
    assert codes == [200, 200] and len(creds.issued) == 2


def test_head_on_an_image_is_still_answered(tmp_path):
    (tmp_path / 'vmlinuz').write_bytes(b'kernel')
    response = _client(tmp_path).head('/images/vmlinuz')
    assert response.status_code == 200 and response.data == b''
    assert response.headers['Content-Length'] == '6'


def test_one_mac_cannot_mint_credentials_in_a_loop(tmp_path):
    creds = FakeCredentials()
    client = _client(tmp_path, creds)
    codes = [_boot(client, '52:54:00:00:00:01').status_code
             for _ in range(5)]
    assert codes == [200, 200, 429, 429, 429]
    assert len(creds.issued) == 2
    assert 'retry in' in _boot(client, '52:54:00:00:00:01').get_data(
        as_text=True)


def test_a_spent_mac_budget_locks_a_machine_out_for_the_interval_at_most(
        tmp_path, clock):
    creds = FakeCredentials()
    client = _client(tmp_path, creds, per_mac_interval=10, per_mac_burst=2)
    mac = '52:54:00:00:00:07'
    assert [_boot(client, mac).status_code for _ in range(3)] == \
        [200, 200, 429]
    clock[0] += 9.9
    assert _boot(client, mac).status_code == 429
    clock[0] += 0.2  # 10.1 s after the budget was spent
    assert _boot(client, mac).status_code == 200
    assert len(creds.issued) == 3


def test_another_address_cannot_spend_a_machines_budget(tmp_path, clock):
    creds = FakeCredentials()
    client = _client(tmp_path, creds)
    victim = '52:54:00:00:00:08'
    codes = [_boot(client, victim, '10.0.0.66').status_code
             for _ in range(6)]
    assert codes.count(200) == 2
    assert _boot(client, victim, '10.0.0.8').status_code == 200


def test_one_client_is_limited_and_others_are_not(tmp_path, clock):
    creds = FakeCredentials()
    client = _client(tmp_path, creds, per_client_burst=10,
                     per_client_interval=60)
    codes = [_boot(client, f'52:54:00:00:01:{i:02x}', '10.0.0.66')
             .status_code for i in range(40)]
    assert codes == [200] * 10 + [429] * 30
    refused = _boot(client, '52:54:00:00:02:01', '10.0.0.66')
    assert 'too many boot requests from 10.0.0.66' in refused.get_data(
        as_text=True)
    # a real machine elsewhere is not affected
    assert _boot(client, '52:54:00:00:03:01', '10.0.0.9').status_code == 200
    clock[0] += 60.1  # the flooder's window has passed
    assert _boot(client, '52:54:00:00:02:02', '10.0.0.66').status_code == 200
    assert len(creds.issued) == 12


def test_a_flood_from_many_addresses_meets_the_global_limit(tmp_path,
                                                            clock):
    limiter = Limiter(global_rate=1.0, global_burst=10)  # 10 in any 10 s
    creds = FakeCredentials()
    client = _client(tmp_path, creds, limiter)
    codes = [_boot(client, f'52:54:00:00:01:{i:02x}', f'10.0.1.{i}')
             .status_code for i in range(50)]
    assert codes.count(200) == 10 and codes.count(429) == 40
    clock[0] += 5
    assert _boot(client, '52:54:00:00:02:01', '10.0.2.1').status_code == 429
    clock[0] += 5.1
    codes = [_boot(client, f'52:54:00:00:02:{i:02x}', f'10.0.2.{i}')
             .status_code for i in range(20)]
    assert codes.count(200) == 10


def test_a_refusal_spends_nothing(tmp_path, clock):
    """A real machine refused by the global limit keeps its own budget."""
    limiter = Limiter(global_rate=1.0, global_burst=10, per_mac_burst=2,
                      per_mac_interval=30)
    client = _client(tmp_path, FakeCredentials(), limiter)
    for i in range(10):
        _boot(client, f'52:54:00:00:01:{i:02x}', f'10.0.1.{i}')
    mac = '52:54:00:00:00:09'
    assert [_boot(client, mac, '10.0.0.9').status_code
            for _ in range(3)] == [429] * 3
    clock[0] += 10.1  # the global window passed, the MAC's 30 s did not
    assert [_boot(client, mac, '10.0.0.9').status_code
            for _ in range(3)] == [200, 200, 429]


def test_a_trusted_proxy_forwards_the_client_address(tmp_path, clock):
    client = _client(tmp_path, trusted_proxies=['192.0.2.0/30'],
                     per_client_burst=2)
    headers = {'X-Forwarded-For': '10.0.0.1, 10.0.0.7'}  # first is forged
    codes = [_boot(client, f'52:54:00:00:01:{i:02x}', '192.0.2.1',
                   headers=headers).status_code for i in range(3)]
    assert codes == [200, 200, 429]
    refused = _boot(client, '52:54:00:00:02:00', '192.0.2.1', headers=headers)
    assert 'from 10.0.0.7' in refused.get_data(as_text=True)
    # another machine behind the same proxy has its own budget
    assert _boot(client, '52:54:00:00:03:00', '192.0.2.1',
                 headers={'X-Forwarded-For': '10.0.0.8'}).status_code == 200
    # from anyone else the header is the client's word and is ignored
    codes = [_boot(client, f'52:54:00:00:04:{i:02x}', '10.0.0.66',
                   headers={'X-Forwarded-For': f'10.9.9.{i}'}).status_code
             for i in range(3)]
    assert codes == [200, 200, 429]


def test_a_mac_with_too_many_unused_credentials_answers_429_and_why(
        tmp_path):
    creds = FakeCredentials(fail=TooManyForMac('3 unused credentials'))
    response = _client(tmp_path, creds).get(
        '/boot.ipxe?mac=52:54:00:00:00:01')
    assert response.status_code == 429
    assert 'too-many-for-mac' in response.get_data(as_text=True)


def test_images_are_served_and_nothing_else(tmp_path):
    (tmp_path / 'vmlinuz').write_bytes(b'kernel')
    (tmp_path / 'secret').write_text('no')
    client = _client(tmp_path)
    assert client.get('/images/vmlinuz').data == b'kernel'
    assert client.get('/images/secret').status_code == 404
    assert client.get('/images/..%2Fsecret').status_code == 404
    (tmp_path / 'initramfs.zst').unlink()
    assert client.get('/images/initramfs.zst').status_code == 404


def test_external_image_urls(tmp_path):
    text = _client(tmp_path, kernel_url='http://img/k',
                   initrd_url='http://img/i').get(
        '/boot.ipxe?mac=52:54:00:00:00:09').get_data(as_text=True)
    assert 'kernel http://img/k ' in text and 'initrd http://img/i' in text


# -- the server in front (hwbus.bootserver.server) -------------------------
def _server_group(**kwargs):
    group = dict(host='127.0.0.1', port=8086, header_timeout=10.0,
                 max_header_size=8192, cert_file=None, key_file=None)
    group.update(kwargs)
    return types.SimpleNamespace(**group)


def test_hypercorn_gets_the_limits():
    config = server.make_config(_server_group(host='::', port=8443,
                                              header_timeout=7.0,
                                              cert_file='c', key_file='k'))
    assert config.bind == ['[::]:8443']
    assert config.keep_alive_timeout == 7.0  # until a complete head
    assert config.ssl_handshake_timeout == 7.0
    assert config.h11_max_incomplete_size == 8192
    assert config.alpn_protocols == ['http/1.1']
    assert 'DHE+AES' in config.ciphers and not config.include_server_header
    plain = server.make_config(_server_group())
    assert plain.bind == ['127.0.0.1:8086'] and not plain.ssl_enabled


def _asgi(front, method='GET', path='/healthz', headers=()):
    sent = []

    async def receive():
        raise AssertionError('nothing may read a request body')

    async def send(message):
        sent.append(message)

    scope = {'type': 'http', 'method': method, 'path': path,
             'raw_path': path.encode(), 'query_string': b'',
             'root_path': '', 'scheme': 'http', 'http_version': '1.1',
             'headers': list(headers), 'client': ('10.0.0.5', 4711),
             'server': ('127.0.0.1', 8086)}
    asyncio.run(front(scope, receive, send))
    return sent


@pytest.mark.parametrize('headers', [[(b'content-length', b'5')],
                                     [(b'transfer-encoding', b'chunked')]])
def test_a_request_body_is_refused_before_anything_reads_it(headers):
    called = []
    front = server.Front(lambda env, start: called.append(env), 1, 1)
    sent = _asgi(front, 'POST', '/boot.ipxe', headers)
    assert sent[0]['status'] == 413 and called == []


def test_a_head_over_the_size_limit_is_refused_however_it_arrived():
    called = []
    front = server.Front(lambda env, start: called.append(env), 1, 1,
                         max_header_size=8192)
    headers = [(f'x-h{i}'.encode(), b'v' * 8) for i in range(2000)]
    sent = _asgi(front, 'GET', '/boot.ipxe', headers)
    assert sent[0]['status'] == 431 and called == []


def test_the_front_hands_bodiless_requests_to_the_app():
    def app(environ, start_response):
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [environ['REMOTE_ADDR'].encode()]

    sent = _asgi(server.Front(app, 1, 1), headers=[(b'content-length',
                                                    b'0')])
    assert sent[0]['status'] == 200
    assert b''.join(m.get('body', b'') for m in sent[1:]) == b'10.0.0.5'


def test_a_client_that_stops_reading_is_abandoned():
    async def scenario():
        writes = []

        async def stuck_send(message):
            writes.append(message)
            if len(writes) == 2:
                await asyncio.sleep(3600)  # the client's window is shut

        send = pacing.SendDeadline(stuck_send, 0.05, '10.0.0.5')
        for _ in range(5):
            await send({'type': 'http.response.body', 'body': b'x'})
        return send.abandoned, len(writes)

    assert asyncio.run(scenario()) == (True, 2)


def test_the_bmc_mode_is_asked_per_mac(tmp_path):
    creds = FakeCredentials()
    asked = []

    def bmc_mode_for(mac):
        asked.append(mac)
        return 'keep' if mac.endswith('01') else 'create'

    app = create_app(creds, _conf(tmp_path), bmc_mode_for=bmc_mode_for)
    client = app.test_client()
    for mac in ('52:54:00:00:00:01', '52:54:00:00:00:02'):
        assert client.get(f'/boot.ipxe?mac={mac}').status_code == 200
    assert asked == ['52:54:00:00:00:01', '52:54:00:00:00:02']
    assert creds.bmc == ['keep', 'create']


# -- /boot.grub: the same issuing path, in GRUB's language ----------------
def grub_words(line):
    """The words GRUB's lexer makes of one script line: single quotes are
    literal, backslash escapes one character outside them, and anything
    unquoted that GRUB would expand or split on ($, ;, |, &, <, >, {, })
    is reported as such, so a test can insist there is none."""
    words, word, i, quoted = [], '', 0, False
    while i < len(line):
        c = line[i]
        if c == "'":
            end = line.index("'", i + 1)
            word, quoted, i = word + line[i + 1:end], True, end + 1
            continue
        if c == '\\':
            word, quoted, i = word + line[i + 1], True, i + 2
            continue
        if c in ' \t':
            if word or quoted:
                words.append(word)
            word, quoted, i = '', False, i + 1
            continue
        if c in '$;|&<>{}"#':
            raise AssertionError(f'unquoted {c!r} in {line!r}')
        word, i = word + c, i + 1
    if word or quoted:
        words.append(word)
    return words


def _grub(client, mac, address='127.0.0.1', arch=None, **kwargs):
    query = f'/boot.grub?mac={mac}' + (f'&arch={arch}' if arch else '')
    return client.get(query, environ_base={'REMOTE_ADDR': address},
                      **kwargs)


def test_grub_gets_the_ramdisk_with_the_boots_parameters(tmp_path):
    creds = FakeCredentials()
    response = _grub(_client(tmp_path, creds, public_url=None),
                     '52:54:00:AB:CD:EF', arch='x86_64')
    text = response.get_data(as_text=True)
    assert response.status_code == 200 and creds.issued == [
        '52:54:00:ab:cd:ef']
    echo, linux, initrd, boot = text.splitlines()
    assert grub_words(echo) == ['echo', 'hwbus: discovery boot boot1 for '
                                        '52:54:00:ab:cd:ef']
    assert grub_words(linux) == [
        'linux', '(http,localhost)/images/vmlinuz', 'console=ttyS0',
        'hwbus.url=amqp://u:SECRET@h/', 'hwbus.boot=boot1', 'hwbus.key=KEY',
        'BOOTIF=01-52-54-00-ab-cd-ef']
    assert grub_words(initrd) == ['initrd',
                                  '(http,localhost)/images/initramfs.zst']
    assert boot == 'boot'


@pytest.mark.parametrize('mac', ['52:54:00:ab:cd:ef', '52-54-00-AB-CD-EF',
                                 '52:54:00:AB:CD:EF', '525400abcdef'])
def test_grub_macs_in_any_form_are_the_one_normalised_mac(tmp_path, mac):
    creds = FakeCredentials()
    assert _grub(_client(tmp_path, creds), mac).status_code == 200
    assert creds.issued == ['52:54:00:ab:cd:ef']


def test_the_mac_budget_is_one_for_both_loaders(tmp_path):
    """A machine cannot double its credentials by asking in both
    languages: /boot.ipxe and /boot.grub spend the same budget."""
    creds = FakeCredentials()
    client = _client(tmp_path, creds)
    mac = '52:54:00:00:00:11'
    assert _boot(client, mac).status_code == 200
    assert _grub(client, mac).status_code == 200
    assert _grub(client, mac).status_code == 429
    assert _boot(client, mac).status_code == 429
    assert len(creds.issued) == 2


HOSTILE = ["52:54:00:00:00:01' ; reboot ; echo '", '52:54:00:00:00:01";reboot',
           '$(reboot)', '${prefix}', '52:54%0a%0dlinux (http,evil)/x',
           "'\\''", '\\', 'x' * 500, '%00%1b[2J%c3%a9']


@pytest.mark.parametrize('mac', HOSTILE)
def test_hostile_macs_get_a_grub_refusal_that_only_echoes(tmp_path, mac):
    creds = FakeCredentials()
    response = _grub(_client(tmp_path, creds), mac)
    assert response.status_code == 400 and creds.issued == []
    echo, sleep, leave = response.get_data(as_text=True).splitlines()
    words = grub_words(echo)
    assert words[0] == 'echo' and len(words) == 2
    assert words[1].startswith('hwbus: boot refused: ')
    assert not any(c in words[1] for c in '\r\n\x00\x1b\xe9')
    assert (sleep, leave) == ('sleep 10', 'exit 1')


@pytest.mark.parametrize('arch', ["x86_64' ; reboot ; '", 'i686', 'arm',
                                  'X86_64', '../arm64', 'arm64/..', '%0a'])
def test_an_unknown_architecture_is_refused_without_issuing(tmp_path, arch):
    creds = FakeCredentials()
    response = _grub(_client(tmp_path, creds), '52:54:00:00:00:01',
                     arch=arch)
    assert response.status_code == 400 and creds.issued == []
    words = grub_words(response.get_data(as_text=True).splitlines()[0])
    assert len(words) == 2 and 'is not one of x86_64, arm64' in words[1]


def test_arm64_boots_its_own_images_and_console(tmp_path):
    creds = FakeCredentials()
    client = _client(tmp_path, creds, arm64_kernel_args='console=ttyAMA0',
                     public_url='http://192.0.2.1:8086')
    refused = _grub(client, '52:54:00:00:00:01', arch='arm64')
    assert refused.status_code == 503 and creds.issued == []
    assert 'vmlinuz, initramfs.zst missing in [bootserver] image_dir' in \
        refused.get_data(as_text=True)
    (tmp_path / 'arm64').mkdir()
    for name in ('vmlinuz', 'initramfs.zst'):
        (tmp_path / 'arm64' / name).write_bytes(b'arm64 ' + name.encode())
    text = _grub(client, '52:54:00:00:00:01', arch='arm64').get_data(
        as_text=True)
    linux = grub_words(text.splitlines()[1])
    assert linux[1] == '(http,192.0.2.1:8086)/images/arm64/vmlinuz'
    assert linux[2] == 'console=ttyAMA0' and 'console=ttyS0' not in linux
    assert grub_words(text.splitlines()[2])[1] == \
        '(http,192.0.2.1:8086)/images/arm64/initramfs.zst'
    assert client.get('/images/arm64/vmlinuz').data == b'arm64 vmlinuz'
    assert client.get('/images/vmlinuz').data == b'image'
    for path in ('/images/x86_64/vmlinuz', '/images/arm64/secret',
                 '/images/arm64/..%2Fvmlinuz', '/images/../vmlinuz'):
        assert client.get(path).status_code == 404, path
    # iPXE asks with ${buildarch}, and gets the same images
    text = _boot(client, '52:54:00:00:00:02&arch=arm64').get_data(
        as_text=True)
    assert 'kernel http://192.0.2.1:8086/images/arm64/vmlinuz ' in text


def test_ipxe_is_asked_to_come_back_with_its_architecture(tmp_path):
    text = _client(tmp_path).get('/boot.ipxe').get_data(as_text=True)
    assert 'chain http://localhost/boot.ipxe?mac=${net0/mac}' \
           '&arch=${buildarch}' in text


def test_grub_cannot_fetch_https_so_nothing_is_issued(tmp_path):
    creds = FakeCredentials()
    client = _client(tmp_path, creds, public_url='https://boot.example',
                     **_loaders(tmp_path))
    response = _grub(client, '52:54:00:00:00:01')
    assert response.status_code == 503 and creds.issued == []
    assert 'GRUB fetches over plain http only' in response.get_data(
        as_text=True)
    assert client.get('/hwbus-x64.img').status_code == 404
    # iPXE speaks https: its path is not affected
    assert _boot(client, '52:54:00:00:00:01').status_code == 200


def _loaders(tmp_path):
    paths = {}
    for option in ('shim_x64', 'grub_x64', 'grub_aa64'):
        path = tmp_path / f'{option}.signed'
        path.write_bytes(f'<{option} program>'.encode())
        paths[option] = str(path)
    return paths


def test_http_boot_gets_a_disk_image_with_shim_grub_and_grubs_config(
        tmp_path):
    client = _client(tmp_path, public_url='http://10.0.2.2:8086/',
                     **_loaders(tmp_path))
    response = client.get('/hwbus-x64.img')
    assert response.status_code == 200
    assert response.mimetype == 'application/vnd.efi-img'
    image = response.data
    assert image[510:512] == b'\x55\xaa' and image[54:62] == b'FAT16   '
    for content in (b'<shim_x64 program>', b'<grub_x64 program>',
                    b'BOOTX64 EFI', b'GRUBX64 EFI', b'GRUB    CFG'):
        assert content in image
    cfg = image[image.index(b'# hwbus'):].split(b'\0')[0].decode()
    assert 'net_bootp\n' in cfg
    assert 'source "(http,10.0.2.2:8086)/boot.grub?mac=${hwbus_mac}' \
           '&arch=${grub_cpu}"' in cfg
    assert 'if [ -n "${net_efinet0_dhcp_boot_file}" ]; then set ' \
           'hwbus_mac="${net_efinet0_dhcp_mac}"' in cfg
    # arm64 without a shim: GRUB is the default file itself
    image = client.get('/hwbus-aa64.img').data
    assert image.count(b'<grub_aa64 program>') == 2
    assert b'BOOTAA64EFI' in image and b'<shim' not in image
    for path in ('/hwbus.img', '/hwbus-x64.img/x', '/x.img'):
        assert client.get(path).status_code == 404, path


@pytest.mark.parametrize('host', ['evil" ; reboot ; "', 'a$(b)', 'a;b',
                                  'a}b', "a'b", 'a\\b'])
def test_a_hostile_host_header_never_reaches_a_grub_script(tmp_path, host):
    creds = FakeCredentials()
    client = _client(tmp_path, creds, **_loaders(tmp_path))
    headers = {'Host': host}
    # the boot image names the address the request came in on, never Host
    image = client.get('/hwbus-x64.img', headers=headers)
    assert image.status_code == 200
    assert host.encode() not in image.data
    assert client.get('/hwbus-x64.img').data == image.data
    response = client.get('/boot.grub?mac=52:54:00:00:00:01',
                          headers=headers)
    assert response.status_code == 503 and creds.issued == []
    words = grub_words(response.get_data(as_text=True).splitlines()[0])
    assert len(words) == 2


def test_the_fat_image_is_laid_out_as_fat16_says():
    from hwbus.bootserver import fatimage

    image = fatimage.build({'EFI': {'BOOT': {'A.EFI': b'x' * 1500}},
                            'E': b''})
    (sector, per_cluster, reserved, fats, roots, total16, _, per_fat) = \
        struct.unpack('<HBHBHHBH', image[11:24])
    assert (sector, per_cluster, reserved, fats, roots) == (512, 1, 1, 2,
                                                            512)
    assert total16 * 512 == len(image) and image[510:512] == b'\x55\xaa'
    fat = image[512:512 + per_fat * 512]
    assert fat == image[512 + per_fat * 512:512 + 2 * per_fat * 512]
    clusters = (total16 - 1 - 2 * per_fat - 32)
    assert clusters >= 4085  # FAT16, not FAT12
    data = 512 + 2 * per_fat * 512 + 32 * 512

    def entry(directory, name):
        for at in range(0, 512 * 32, 32):
            if directory[at:at + 11] == name:
                cluster, size = struct.unpack('<HL',
                                              directory[at + 26:at + 32])
                return cluster, size, directory[at + 11]
        raise AssertionError(name)

    def chain(cluster):
        out = [cluster]
        while struct.unpack('<H', fat[2 * out[-1]:2 * out[-1] + 2])[0] \
                < 0xFFF8:
            out.append(struct.unpack('<H', fat[2 * out[-1]:
                                               2 * out[-1] + 2])[0])
        return out

    def read(cluster):
        return image[data + (cluster - 2) * 512:data + (cluster - 1) * 512]

    root = image[data - 32 * 512:data]
    efi, _, attr = entry(root, b'EFI        ')
    assert attr == 0x10
    assert entry(root, b'E          ') == (0, 0, 0x20)
    boot, _, _ = entry(read(efi), b'BOOT       ')
    assert entry(read(efi), b'..         ')[0] == 0
    cluster, size, _ = entry(read(boot), b'A       EFI')
    assert size == 1500 and len(chain(cluster)) == 3
    assert b''.join(read(c) for c in chain(cluster))[:size] == b'x' * 1500
    with pytest.raises(ValueError):
        fatimage.build({'long-name.efi': b''})


@pytest.mark.parametrize('method', ['HEAD', 'POST', 'PUT', 'DELETE',
                                    'OPTIONS'])
def test_only_get_on_boot_grub_issues_a_credential(tmp_path, method):
    creds = FakeCredentials()
    response = _client(tmp_path, creds).open(
        '/boot.grub?mac=52:54:00:00:00:01', method=method)
    assert response.status_code == 405 and response.headers['Allow'] == 'GET'
    assert creds.issued == []


def test_loaders_are_served_from_their_options_and_nothing_else(tmp_path):
    shim, grub = tmp_path / 'shim.signed', tmp_path / 'grub.signed'
    shim.write_bytes(b'shim')
    grub.write_bytes(b'grub')
    client = _client(tmp_path, shim_x64=str(shim), grub_x64=str(grub),
                     grub_aa64=str(tmp_path / 'absent'))
    assert client.get('/shimx64.efi').data == b'shim'
    assert client.get('/grubx64.efi').data == b'grub'
    for path in ('/grubnetaa64.efi', '/grubaa64.efi', '/shimaa64.efi',
                 '/vmlinuz', '/shim.signed', '/..%2Fshim.signed',
                 '/grubx64.efi/x'):
        assert client.get(path).status_code == 404, path


def test_one_boot_server_serves_http_boot_and_secure_boot_grubs(tmp_path):
    """grub_http_<arch> is what HTTP boot gets (the image, grubnetaa64.efi
    and grubhttp<arch>.efi) while grub_<arch> stays what shim loads over
    TFTP; unset, grub_<arch> serves both, as before."""
    paths = {}
    for option in ('shim_aa64', 'grub_aa64', 'grub_http_aa64', 'grub_x64',
                   'grub_http_x64'):
        paths[option] = tmp_path / f'{option}.efi'
        paths[option].write_bytes(f'<{option} program>'.encode())
    client = _client(tmp_path, public_url='http://10.0.2.2:8086/',
                     **{o: str(p) for o, p in paths.items()})
    assert client.get('/grubaa64.efi').data == b'<grub_aa64 program>'
    assert client.get('/grubx64.efi').data == b'<grub_x64 program>'
    for path in ('/grubnetaa64.efi', '/grubhttpaa64.efi'):
        assert client.get(path).data == b'<grub_http_aa64 program>', path
    assert client.get('/grubhttpx64.efi').data == b'<grub_http_x64 program>'
    image = client.get('/hwbus-aa64.img').data
    assert b'<grub_http_aa64 program>' in image
    assert b'<grub_aa64 program>' not in image
    assert b'<grub_http_x64 program>' in client.get('/hwbus-x64.img').data
    # Without the HTTP-boot option, the one GRUB serves both paths.
    paths['grub_http_aa64'].unlink()
    client = _client(tmp_path,
                     public_url='http://10.0.2.2:8086/',
                     shim_aa64=str(paths['shim_aa64']),
                     grub_aa64=str(paths['grub_aa64']))
    assert client.get('/grubnetaa64.efi').data == b'<grub_aa64 program>'
    assert client.get('/grubhttpaa64.efi').data == b'<grub_aa64 program>'
    assert b'<grub_aa64 program>' in client.get('/hwbus-aa64.img').data


def test_downloads_take_the_image_threads():
    from hwbus.bootserver.app import is_download

    assert is_download('/images/vmlinuz') and is_download('/shimx64.efi')
    assert is_download('/grubnetaa64.efi')
    assert is_download('/grubhttpaa64.efi')
    assert is_download('/hwbus-x64.img')
    assert not any(is_download(p) for p in (
        '/boot.grub', '/boot.ipxe', '/healthz'))


def test_response_header_names_go_out_title_cased_for_grub():
    """GRUB 2.06 looks for "Content-Length: " case-sensitively; ASGI
    names are lower case, so the front writes them title-cased."""
    def app(environ, start_response):
        start_response('200 OK', [('Content-Type', 'text/plain'),
                                  ('Content-Length', '3')])
        return [b'ok\n']

    sent = _asgi(server.Front(app, 1, 1), path='/boot.grub')
    names = [k for k, _ in sent[0]['headers']]
    assert b'Content-Length' in names and b'Content-Type' in names
    assert not any(k.islower() for k in names)


def test_grubs_host_header_without_a_port_gets_the_servers_port(tmp_path):
    response = _client(tmp_path).get(
        '/boot.grub?mac=52:54:00:00:00:01', headers={'Host': '10.0.2.2'},
        environ_overrides={'SERVER_PORT': '8086'})
    linux = grub_words(response.get_data(as_text=True).splitlines()[1])
    assert linux[1] == '(http,10.0.2.2:8086)/images/vmlinuz'


def test_bios_ipxe_says_i386_and_gets_the_x86_64_image(tmp_path):
    """BIOS iPXE is a 32-bit build: ${buildarch} is i386 on every x86-64
    machine, which must boot as before."""
    creds = FakeCredentials()
    text = _boot(_client(tmp_path, creds), '52:54:00:00:00:01&arch=i386'
                 ).get_data(as_text=True)
    assert 'kernel http://localhost/images/vmlinuz ' in text
    assert creds.issued == ['52:54:00:00:00:01']


# -- minimum download rate (min_download_rate, download_grace) -------------
def test_a_download_must_deliver_the_rate_after_the_grace():
    pace = pacing.Pace(1000, 2.0)
    assert pace.behind(0, 100.0) is None  # starts the clock
    assert pace.behind(0, 102.0) is None  # the grace
    assert pace.behind(999, 103.0) is not None  # 1,000 due by now
    assert pace.behind(1000, 103.0) is None
    # a fast start earns a stall later, never more than its bytes' worth
    assert pace.behind(10000, 111.9) is None
    assert 'min_download_rate 1000' in pace.behind(10000, 112.1)
    assert pacing.Pace(0, 2.0).behind(0, 1e9) is None  # 0: no minimum


def test_a_slow_reader_is_cut_once_and_the_rest_dropped(caplog):
    """A client that accepts each part, but slower than the minimum: cut
    (one log line), everything after it dropped."""
    async def scenario():
        writes = []

        async def trickle(message):
            writes.append(message)
            await asyncio.sleep(0.05)  # 100 bytes each: 2,000 B/s

        send = pacing.SendDeadline(trickle, 10.0, '10.0.0.5',
                                    'GET /images/x')
        send.pace = pacing.Pace(10000, 0.1)
        for _ in range(40):
            await send({'type': 'http.response.body', 'body': b'x' * 100,
                        'more_body': True})
        return send.abandoned, len(writes)

    caplog.set_level(logging.WARNING, logger='hwbus.bootserver')
    abandoned, writes = asyncio.run(scenario())
    assert abandoned and writes < 10
    assert caplog.text.count('GET /images/x to 10.0.0.5 cut: ') == 1
    assert 'under min_download_rate 10000 B/s' in caplog.text


def test_a_cut_address_waits_for_its_next_download(caplog):
    """After a cut for slowness its address is answered 429 for
    download_grace (it cannot take the freed place back at once); other
    addresses are served; the cut is logged once and counted."""
    served = []

    def app(environ, start_response):
        served.append(environ['REMOTE_ADDR'])
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [b'image']

    caplog.set_level(logging.WARNING, logger='hwbus.bootserver')
    front = server.Front(app, 1, 1, min_download_rate=1000,
                         download_grace=30.0)

    async def cut():
        async def send(message):
            pass

        deadline = pacing.SendDeadline(send, 1.0, '10.0.0.5',
                                        'GET /images/vmlinuz', front._cut)
        deadline.pace = pacing.Pace(1000, 30.0)
        deadline.cut('too slow')
        deadline.cut('too slow again')

    asyncio.run(cut())
    assert caplog.text.count('cut: too slow') == 1
    assert '(1 cut since the start)' in caplog.text
    refused = _asgi(front, path='/images/vmlinuz')  # from 10.0.0.5
    assert refused[0]['status'] == 429 and served == []
    assert b'too slow' in refused[1]['body']
    assert _asgi(front, path='/healthz')[0]['status'] == 200  # no download
    front.cut_until['10.0.0.5'] -= 31  # download_grace later
    assert _asgi(front, path='/images/vmlinuz')[0]['status'] == 200


def test_the_connection_is_found_behind_hypercorns_send():
    """The StreamWriter behind the bound methods Hypercorn passes down
    (stream -> protocol -> TCP server); None for any other send."""
    async def scenario():
        reader = asyncio.StreamReader()
        protocol = asyncio.StreamReaderProtocol(reader)
        transport = types.SimpleNamespace(
            is_closing=lambda: False, get_extra_info=lambda *a: None)
        writer = asyncio.StreamWriter(transport, protocol, reader,
                                      asyncio.get_running_loop())

        class Tcp:
            def __init__(self):
                self.writer = writer

            async def protocol_send(self, event): ...

        class Protocol:
            def __init__(self, send):
                self.send = send

            async def stream_send(self, event): ...

        class Stream(Protocol):
            async def app_send(self, message): ...

        protocol_ = Protocol(Tcp().protocol_send)
        stream = Stream(protocol_.stream_send)
        found = pacing.Connection.of(stream.app_send)
        return found.writer is writer, pacing.Connection.of(print)

    assert asyncio.run(scenario()) == (True, None)
