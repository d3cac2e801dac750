"""Attacks on the real hwbus-bootserver process, with a real broker.

Each test starts ``hwbus-bootserver`` as an operator would (its config
written like the e2e site's) and attacks it over loopback. Clients take
different source addresses in 127.0.0.0/8 to be different machines.
The figures printed (run with -s) go into docs/security.md.
"""

from __future__ import annotations

import http.client
import os
import re
import select
import socket
import statistics
import time
import urllib.parse

import pytest
import requests

from hwbus.localstack.bootserver import BootServer
from hwbus.localstack.common import free_port
from hwbus.localstack.consumer import write_config
from hwbus.store import Store
from tests.functional.conftest import CONSUMER_PASSWORD, management_for

HEADER_TIMEOUT = 10
TIMEOUT = 10  # seconds any one legitimate request may take
SLOW_CLIENTS = 64
GRUB_SIZE = 4 * 2 ** 20


@pytest.fixture
def site(broker, ironic, tmp_path, request):
    """A boot server on its own store and the real Ironic, with the
    default limits; ``[bootserver]`` options of a test's own come as
    the fixture's parameter (``indirect=True``)."""
    port, tftp_port = free_port(), free_port()
    url = f'sqlite:///{tmp_path}/hwbus.sqlite'
    images = tmp_path / 'images'
    images.mkdir()
    (images / 'vmlinuz').write_bytes(b'kernel\n')
    with open(images / 'initramfs.zst', 'wb') as f:
        f.truncate(64 * 2 ** 20)  # larger than any socket buffer
    grub = tmp_path / 'grubx64.efi'  # /hwbus-x64.img: ~GRUB's size, and
    grub.write_bytes(os.urandom(GRUB_SIZE))  # random: no compression
    options = {'host': '127.0.0.1', 'port': port, 'image_dir': images,
               'header_timeout': HEADER_TIMEOUT, 'image_threads': 2,
               'send_timeout': 3, 'grub_x64': grub, 'shim_x64': '',
               'tftp_port': tftp_port, **getattr(request, 'param', {})}
    config = write_config(
        tmp_path / 'hwbus.conf', broker, url, ironic.url, CONSUMER_PASSWORD,
        extra='\n[bootserver]\n' + ''.join(f'{k} = {v}\n'
                                           for k, v in options.items()))
    server = BootServer(config, tmp_path / 'bootserver.log', port).start()
    server.tftp_port = tftp_port
    server.store = Store(url)
    server.broker = broker
    yield server
    server.stop()
    management = management_for(broker)  # leave the shared broker clean
    for credential in server.store.list(limit=100000):
        management.delete_user(credential.username)


def _request(site, method: str, path: str, source: str = '127.0.0.1',
             connection: http.client.HTTPConnection | None = None,
             body: bytes | None = None):
    """(status, headers, text) of one request from ``source``; header
    names lower-cased, as HTTP compares them (the server sends them in
    title case for GRUB's sake)."""
    conn = connection or http.client.HTTPConnection(
        '127.0.0.1', site.port, timeout=TIMEOUT, source_address=(source, 0))
    try:
        conn.request(method, path, body=body)
        response = conn.getresponse()
        return (response.status,
                {k.lower(): v for k, v in response.getheaders()},
                response.read().decode(errors='replace'))
    finally:
        if connection is None:
            conn.close()


def _credentials(site) -> tuple[int, int]:
    """Credentials in the store, per-boot users on the broker."""
    users = {u for u in site.broker.users() if u.startswith('boot-')}
    return len(site.store.list(limit=100000)), len(users)


def _assert_boot_script(status: int, text: str) -> None:
    assert status == 200, text
    assert 'hwbus.url=' in text and 'hwbus.key=' in text


def test_slow_clients_cannot_starve_the_boot_server(site):
    """64 clients send a header line every 2 s and never finish their
    request head: health checks and a real boot are answered meanwhile,
    and the server closes every slow connection at header_timeout."""
    opened = time.monotonic()
    slow = []
    for i in range(SLOW_CLIENTS):
        sock = socket.create_connection(('127.0.0.1', site.port),
                                        timeout=TIMEOUT)
        sock.sendall(f'GET /boot.ipxe?mac=52:54:00:ee:00:{i:02x} HTTP/1.1'
                     f'\r\nHost: 127.0.0.1\r\n'.encode())
        slow.append(sock)
    closed_after: dict[int, float] = {}

    def drip() -> None:
        """One more header line on every open slow connection; note the
        ones the server closed."""
        for n, sock in enumerate(slow):
            if n in closed_after:
                continue
            readable, _, _ = select.select([sock], [], [], 0)
            try:
                if readable and sock.recv(4096) == b'':
                    raise ConnectionResetError
                sock.sendall(b'X-Slow: 1\r\n')
            except OSError:
                closed_after[n] = time.monotonic() - opened

    health = []
    last_drip = time.monotonic()
    for _ in range(8):
        started = time.monotonic()
        status, _, text = _request(site, 'GET', '/healthz')
        health.append(time.monotonic() - started)
        assert (status, text) == (200, 'ok\n')
        time.sleep(0.25)
        if time.monotonic() - last_drip >= 2:
            drip()
            last_drip = time.monotonic()
    started = time.monotonic()
    status, _, text = _request(site, 'GET',
                               '/boot.ipxe?mac=52:54:00:aa:bb:01',
                               source='127.0.0.2')
    boot = time.monotonic() - started
    _assert_boot_script(status, text)
    still_open = SLOW_CLIENTS - len(closed_after)
    assert still_open == SLOW_CLIENTS  # the answers came while all waited

    deadline = time.monotonic() + 6 * HEADER_TIMEOUT  # bounded, not a bar
    while len(closed_after) < SLOW_CLIENTS and time.monotonic() < deadline:
        time.sleep(max(0.0, 2 - (time.monotonic() - last_drip)))
        drip()
        last_drip = time.monotonic()
    for sock in slow:
        sock.close()
    print(f'\n{SLOW_CLIENTS} slow clients: 8/8 health checks answered, '
          f'median {statistics.median(health) * 1000:.1f} ms, max '
          f'{max(health) * 1000:.1f} ms; a real boot (credential issued) '
          f'in {boot * 1000:.0f} ms; slow connections closed by the server '
          f'after {min(closed_after.values(), default=0):.1f}-'
          f'{max(closed_after.values(), default=0):.1f} s '
          f'(header_timeout {HEADER_TIMEOUT} s, a line every 2 s)')
    assert len(closed_after) == SLOW_CLIENTS, 'slow connections left open'


def test_head_and_other_methods_issue_nothing(site):
    before = _credentials(site)
    mac = '/boot.ipxe?mac=52:54:00:aa:bb:02'
    for method in ('HEAD', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS'):
        status, headers, text = _request(site, method, mac, '127.0.0.3')
        assert status == 405 and headers['allow'] == 'GET', method
    status, _, text = _request(site, 'POST', mac, '127.0.0.3',
                               body=b'x' * 100)
    assert status == 413  # refused before the body is read
    assert _credentials(site) == before
    # the same machine's GET is answered: the counting above works
    status, _, text = _request(site, 'GET', mac, '127.0.0.3')
    _assert_boot_script(status, text)
    assert _credentials(site) == (before[0] + 1, before[1] + 1)
    # HEAD on an image stays
    status, headers, _ = _request(site, 'HEAD', '/images/vmlinuz')
    assert status == 200 and headers['content-length'] == '7'
    print(f'\nHEAD/POST/PUT/DELETE/OPTIONS on /boot.ipxe: 405, credentials '
          f'{before[0]} before and after, per-boot broker users '
          f'{before[1]} before and after')


def test_one_client_flooding_many_macs_is_limited_per_client(site):
    flooder, machine = '127.0.0.10', '127.0.0.11'
    before = _credentials(site)
    conn = http.client.HTTPConnection('127.0.0.1', site.port,
                                      timeout=TIMEOUT,
                                      source_address=(flooder, 0))
    codes: dict[int, int] = {}
    started = time.monotonic()
    for i in range(500):
        status, _, text = _request(site, 'GET', f'/boot.ipxe?mac=52:54:00:'
                                   f'cc:{i >> 8:02x}:{i & 255:02x}',
                                   connection=conn)
        codes[status] = codes.get(status, 0) + 1
        if status == 429:
            assert text.startswith('#!ipxe\n') and 'exit 1' in text
    flood = time.monotonic() - started
    conn.close()
    assert codes == {200: 10, 429: 490}  # per_client_burst in 60 s
    status, _, text = _request(site, 'GET',
                               '/boot.ipxe?mac=52:54:00:aa:bb:03',
                               source=machine)
    _assert_boot_script(status, text)
    assert _credentials(site) == (before[0] + 11, before[1] + 11)
    log = site.log.read_text()
    refusals = re.findall(r'boot request from (\S+) refused \(429\)', log)
    assert len(refusals) == 490 and set(refusals) == {flooder}
    print(f'\none client, 500 boot requests for 500 MACs in {flood:.1f} s '
          f'({500 / flood:.0f}/s): {codes.get(200)} credentials, '
          f'{codes.get(429)} refused 429; another machine then got its '
          f'credential; {_credentials(site)[0]} credentials outstanding')


def test_clients_that_stop_reading_images_do_not_delay_boot_scripts(site):
    """More stalled image downloads than image threads: boot scripts and
    health checks are still answered, and the stalled connections are
    cut after send_timeout (3 s here), freeing the image threads: reset,
    so the server keeps none of their unsent data; their address waits
    download_grace for a new download, others do not."""
    stalled = []
    for _ in range(4):  # image_threads = 2
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect(('127.0.0.1', site.port))
        sock.sendall(b'GET /images/initramfs.zst HTTP/1.1\r\n'
                     b'Host: 127.0.0.1\r\n\r\n')
        stalled.append(sock)
    time.sleep(0.5)
    started = time.monotonic()
    status, _, text = _request(site, 'GET',
                               '/boot.ipxe?mac=52:54:00:aa:bb:04',
                               source='127.0.0.4')
    boot = time.monotonic() - started
    _assert_boot_script(status, text)
    assert _request(site, 'GET', '/healthz')[0] == 200

    def abandoned() -> int:
        return site.log.read_text().count(
            'cut: the client accepted nothing for 3 s (send_timeout)')

    deadline = time.monotonic() + 30
    while abandoned() < 4 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert abandoned() == 4
    time.sleep(0.5)
    ports = {sock.getsockname()[1] for sock in stalled}
    assert _server_side(site.port, ports) == []  # reset: nothing queued
    status, _, text = _request(site, 'GET', '/images/vmlinuz')
    assert status == 429 and 'too slow' in text  # download_grace (20 s)
    status, _, text = _request(site, 'GET', '/images/vmlinuz',
                               source='127.0.0.5')
    assert (status, text) == (200, 'kernel\n')
    for sock in stalled:
        sock.close()
    print(f'\n4 stalled image downloads (2 image threads): a real boot in '
          f'{boot * 1000:.0f} ms; all 4 cut after send_timeout')


def _rss(site) -> int:
    """The boot server process's resident memory, in bytes."""
    status = open(f'/proc/{site.proc.pid}/status').read()
    return int(re.search(r'VmRSS:\s+(\d+) kB', status).group(1)) * 1024


def _stall(site, path: str, source: str) -> socket.socket:
    """A download that is asked for and never read."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.bind((source, 0))
    sock.connect(('127.0.0.1', site.port))
    sock.sendall(f'GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'
                 .encode())
    return sock


def test_stalled_boot_image_downloads_cost_no_copy_each(site):
    """/hwbus-x64.img (shim, GRUB and its config: megabytes) asked for
    from 120 addresses that never read: the boot server's memory grows
    by a bounded amount, not a copy of the image per connection; one
    address gets only its share of concurrent downloads; meanwhile a
    real machine downloads the image whole and gets its boot script."""
    status, _, _ = _request(site, 'GET', '/hwbus-x64.img')  # built, cached
    assert status == 200
    before = _rss(site)
    stalled = [_stall(site, '/hwbus-x64.img', f'127.0.1.{n}')
               for n in range(1, 121)]
    time.sleep(1.5)  # every response under way (send_timeout is 3 s)
    grown = _rss(site) - before
    assert grown < 64 * 2 ** 20, f'+{grown / 2 ** 20:.0f} MiB'
    conn = http.client.HTTPConnection('127.0.0.1', site.port,
                                      timeout=TIMEOUT,
                                      source_address=('127.0.0.2', 0))
    conn.request('GET', '/hwbus-x64.img')
    response = conn.getresponse()
    whole = response.read()
    conn.close()
    assert response.status == 200 and len(whole) > GRUB_SIZE
    assert len(whole) == int(response.getheader('content-length'))
    status, _, text = _request(site, 'GET',
                               '/boot.ipxe?mac=52:54:00:aa:bb:07',
                               source='127.0.0.7')
    _assert_boot_script(status, text)
    # One address: its first downloads_per_client (4) go, the rest are
    # told to come back later.
    mine = [_stall(site, '/hwbus-x64.img', '127.0.2.1') for _ in range(8)]
    time.sleep(1)
    answers = []
    for sock in mine:
        sock.setblocking(False)
        try:
            answers.append(sock.recv(64))
        except BlockingIOError:
            answers.append(b'')
    for sock in stalled + mine:
        sock.close()
    limited = [a for a in answers if a.startswith(b'HTTP/1.1 429')]
    assert len(limited) == 4, answers
    print(f'\n120 stalled /hwbus-x64.img downloads '
          f'({len(whole) / 2 ** 20:.1f} MiB each): boot server memory '
          f'+{grown / 2 ** 20:.1f} MiB; a real download and boot meanwhile '
          f'answered; one address: 4 of 8 downloads, 4 answered 429')


def test_streamed_downloads_answer_what_firmware_asks(site):
    """What the loaders send, through the streaming front: a whole file,
    HEAD (UEFI HTTP boot asks the size first), a byte range (GRUB seeks
    with Range), If-None-Match (304, no body) and a range past the end
    (416); the bytes are the file's."""
    image = site.config.parent / 'images' / 'initramfs.zst'
    with open(image, 'r+b') as f:
        f.seek(5 * 2 ** 20)
        f.write(b'marker')
    response = site.get('/images/initramfs.zst')
    assert response.status_code == 200
    assert len(response.content) == 64 * 2 ** 20
    assert response.content[5 * 2 ** 20:][:6] == b'marker'
    head = requests.head(site.url + '/images/initramfs.zst', timeout=10)
    assert head.status_code == 200 and not head.content
    assert head.headers['content-length'] == str(64 * 2 ** 20)
    part = site.get('/images/initramfs.zst',
                    headers={'Range': f'bytes={5 * 2 ** 20}-'
                                      f'{5 * 2 ** 20 + 9}'})
    assert part.status_code == 206 and part.content == b'marker\0\0\0\0'
    tail = site.get('/images/initramfs.zst',
                    headers={'Range': f'bytes={64 * 2 ** 20 - 3}-'})
    assert tail.status_code == 206 and tail.content == b'\0\0\0'
    same = site.get('/images/initramfs.zst',
                    headers={'If-None-Match': response.headers['etag']})
    assert same.status_code == 304 and not same.content
    past = site.get('/images/initramfs.zst',
                    headers={'Range': f'bytes={65 * 2 ** 20}-'})
    assert past.status_code == 416
    img = site.get('/hwbus-x64.img')
    assert img.status_code == 200
    assert img.headers['content-type'] == 'application/vnd.efi-img'
    assert len(img.content) == int(img.headers['content-length'])
    assert 'x-hwbus-file' not in {k.lower() for k in img.headers}
    assert site.get('/images/nothing').status_code == 404
    assert site.get('/images/vmlinuz').content == b'kernel\n'


def _io(site) -> dict[str, int]:
    text = open(f'/proc/{site.proc.pid}/io').read()
    return {k: int(v) for k, v in (line.split(': ') for line in
                                   text.splitlines())}


def test_head_and_host_headers_cost_no_reading_or_building(site):
    """HEAD on a 64 MiB image reads none of it; twenty Host headers
    build no more boot images than one (the image names the address the
    request came in on, not its Host)."""
    before = _io(site)['rchar']
    for _ in range(10):
        status, headers, _ = _request(site, 'HEAD', '/images/initramfs.zst')
        assert status == 200
        assert headers['content-length'] == str(64 * 2 ** 20)
    read = _io(site)['rchar'] - before
    assert read < 2 ** 20, read
    _request(site, 'GET', '/hwbus-x64.img')
    before = _io(site)['wchar']
    for n in range(20):
        conn = http.client.HTTPConnection('127.0.0.1', site.port,
                                          timeout=TIMEOUT)
        conn.request('GET', '/hwbus-x64.img',
                     headers={'Host': f'attacker-{n}.example:80'})
        response = conn.getresponse()
        assert response.status == 200
        response.read()
        conn.close()
    written = _io(site)['wchar'] - before
    assert written < GRUB_SIZE, written  # no image built again
    print(f'\n10 HEADs of a 64 MiB image: {read} bytes read; 20 Host '
          f'headers on /hwbus-x64.img: {written} bytes written')


def test_refusals_log_no_secret_and_races_leak_nothing(site):
    """A refusal quoting a client's raw value logs it masked and escaped,
    once (no exception text appended); eight concurrent requests for
    one MAC from one address get scripts or 429, never an internal
    error, and leave as many broker users as credentials."""
    import concurrent.futures

    status, _, _ = _request(site, 'GET', '/boot.ipxe?mac=password=hunter2',
                            source='127.0.0.70')
    assert status == 400
    assert 'hunter2' not in site.log.read_text()
    mac = '52:54:00:ee:03:01'
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(
            lambda _: _request(site, 'GET', f'/boot.ipxe?mac={mac}',
                               source='127.0.0.71')[0], range(8)))
    assert set(answers) <= {200, 429}, answers
    stored = {c.username for c in site.store.list(mac=mac)
              if c.state == 'issued'}  # replaced ones are revoked
    users = {u for u in site.broker.users() if u in stored}
    assert stored == users and 1 <= len(stored) <= 2, (stored, users)


def test_macs_of_nodes_in_use_get_no_credential(site, clean_ironic):
    """The boot server asks Ironic: a MAC of a node that does not await
    discovery is refused; inspection and unknown MACs still boot."""
    in_use, inspected, unknown = ('52:54:00:ee:00:01', '52:54:00:ee:00:02',
                                  '52:54:00:ee:00:03')
    clean_ironic.enroll('available', ports=(in_use,))
    clean_ironic.enroll('inspect wait', ports=(inspected,))
    before = _credentials(site)
    status, _, text = _request(site, 'GET', f'/boot.ipxe?mac={in_use}')
    assert status == 403 and 'not to be inspected now' in text
    assert _credentials(site) == before
    for mac in (inspected, unknown):
        status, _, text = _request(site, 'GET', f'/boot.ipxe?mac={mac}')
        _assert_boot_script(status, text)


def test_requests_for_a_victims_mac_cannot_cancel_its_boot(site):
    """The victim asks first; requests for its MAC from other addresses
    get their own credentials up to the per-MAC limit, then 429; the
    victim's credential stays valid, and its own next request (a PXE
    loop) replaces only its own."""
    mac = '52:54:00:ee:00:10'
    status, _, text = _request(site, 'GET', f'/boot.ipxe?mac={mac}',
                               source='127.0.0.30')
    _assert_boot_script(status, text)
    victim = site.store.list(mac=mac)[0].boot_id
    codes = [_request(site, 'GET', f'/boot.ipxe?mac={mac}', source=source)[0]
             for source in ('127.0.0.21', '127.0.0.22', '127.0.0.23')]
    assert codes == [200, 200, 429]
    assert site.store.get(victim).state == 'issued'
    status, _, text = _request(site, 'GET', f'/boot.ipxe?mac={mac}',
                               source='127.0.0.30')
    _assert_boot_script(status, text)
    assert site.store.get(victim).state == 'revoked'  # replaced by its own
    assert sorted(c.state for c in site.store.list(mac=mac)) == [
        'issued', 'issued', 'issued', 'revoked']


def test_boot_grub_refuses_hostile_text_and_issues_like_boot_ipxe(
        site, clean_ironic):
    """GRUB's path on the real server: hostile MACs and architectures
    get a refusal whose one echo is a single quoted word and no
    credential; a node in use is refused as on /boot.ipxe; a real MAC
    gets a real credential (store and broker user) and a GRUB script;
    the MAC's budget is shared with /boot.ipxe."""
    from tests.unit.test_bootserver import HOSTILE, grub_words

    in_use = '52:54:00:ee:01:01'
    clean_ironic.enroll('available', ports=(in_use,))
    before = _credentials(site)
    hostile = [f'/boot.grub?mac={urllib.parse.quote(mac, safe="")}'
               for mac in HOSTILE]
    hostile += [f'/boot.grub?mac=52:54:00:ee:01:02&arch={arch}'
                for arch in ("x86_64'%3breboot%3b'", 'riscv64', '%24grub_cpu')]
    for path in hostile:
        status, _, text = _request(site, 'GET', path, source='127.0.0.40')
        assert status == 400, (path, text)
        echo, _, leave = text.splitlines()
        assert len(grub_words(echo)) == 2 and leave == 'exit 1', path
    status, _, text = _request(site, 'GET', f'/boot.grub?mac={in_use}')
    assert status == 403 and 'not to be inspected now' in text
    assert grub_words(text.splitlines()[0])[0] == 'echo'
    assert _credentials(site) == before
    mac = '52:54:00:ee:01:03'
    status, _, text = _request(site, 'GET', f'/boot.grub?mac={mac}'
                               '&arch=x86_64', source='127.0.0.41')
    assert status == 200, text
    linux = grub_words(text.splitlines()[1])
    assert linux[1] == f'(http,127.0.0.1:{site.port})/images/vmlinuz'
    assert any(w.startswith('hwbus.key=') for w in linux)
    assert f'BOOTIF=01-{mac.replace(":", "-")}' in linux
    [credential] = site.store.list(mac=mac)
    assert credential.username in site.broker.users()
    assert _credentials(site) == (before[0] + 1, before[1] + 1)
    status, _, _ = _request(site, 'GET', f'/boot.ipxe?mac={mac}',
                            source='127.0.0.41')
    assert status == 200
    status, _, text = _request(site, 'GET', f'/boot.grub?mac={mac}',
                               source='127.0.0.41')
    assert status == 429 and 'exit 1' in text  # per_mac_burst 2, shared
    log = site.log.read_text()
    assert f'for {mac} (x86_64, boot.grub) to 127.0.0.41' in log
    assert not any(c in log for c in '\x1b\xe9')


# -- slow readers (min_download_rate) ----------------------------------------
SLOW_ADDRESSES = [f'127.0.5.{n}' for n in range(1, 9)]
SLOW_PLACES = 4 * len(SLOW_ADDRESSES)  # downloads_per_client (4) each
SLOW_READ, SLOW_EVERY = 4096, 0.25  # 16 KiB/s per connection
# a receive window of a few reads: a window under loopback's MSS (64 KiB)
# makes TCP's silly-window avoidance stall the sender for a minute
SLOW_WINDOW = 64 * 1024
# send_timeout as by default: 16 KiB/s never waits that long for room
SLOW_SITE = {'max_downloads': SLOW_PLACES, 'min_download_rate': 65536,
             'download_grace': 8, 'send_timeout': 60}
INITRAMFS = 64 * 2 ** 20


class _SlowReaders:
    """Every download place, taken by connections that ask for the
    64 MiB initramfs and read it at 16 KiB/s; a connection that ends is
    opened again from its address while ``reconnect`` is set (an
    attacker keeps its places). A connection that got its 200 and ended
    short of the whole file was cut: its socket is kept open (as the
    attacker would) and its port noted."""

    def __init__(self, site) -> None:
        import threading

        self.site = site
        self.open: list[dict] = []
        self.cut: list[dict] = []  # 200, then the server ended it short
        self.refused = 0  # 429 or 503 on a reconnect
        self.reconnect = True
        self.stop = threading.Event()
        for source in SLOW_ADDRESSES:
            for _ in range(4):
                self._connect(source)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _connect(self, source: str) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SLOW_WINDOW)
        sock.bind((source, 0))
        sock.connect(('127.0.0.1', self.site.port))
        sock.sendall(b'GET /images/initramfs.zst HTTP/1.1\r\n'
                     b'Host: 127.0.0.1\r\n\r\n')
        sock.setblocking(False)
        self.open.append({'sock': sock, 'source': source, 'head': b'',
                          'read': 0, 'port': sock.getsockname()[1]})

    def _run(self) -> None:
        while not self.stop.is_set():
            for conn in list(self.open):
                try:
                    data = conn['sock'].recv(SLOW_READ)
                except BlockingIOError:
                    continue
                except OSError:  # reset: the server aborted it
                    data = b''
                if data:
                    conn['read'] += len(data)
                    conn['head'] = (conn['head'] + data)[:16]
                    continue
                self.open.remove(conn)
                if conn['head'].startswith(b'HTTP/1.1 200'):
                    self.cut.append(conn)  # the socket stays open
                else:
                    self.refused += 1
                    conn['sock'].close()
                if self.reconnect:
                    self._connect(conn['source'])
            time.sleep(SLOW_EVERY)

    def serving(self) -> int:
        return sum(c['head'].startswith(b'HTTP/1.1 200') for c in self.open)

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        for conn in self.open + self.cut:
            conn['sock'].close()


def _server_side(port: int, peers: set[int]) -> list[int]:
    """Send queues (bytes) of the boot server's sockets connected to
    these client ports, from /proc/net/tcp."""
    queues = []
    for line in open('/proc/net/tcp').read().splitlines()[1:]:
        fields = line.split()
        local, remote = fields[1], fields[2]
        if (int(local.split(':')[1], 16) == port
                and int(remote.split(':')[1], 16) in peers):
            queues.append(int(fields[4].split(':')[0], 16))
    return queues


def _download(site, path: str, source: str, deadline: float
              ) -> tuple[bytes, int]:
    """``path`` whole, asked again (as firmware retries a boot) while
    the answer is 429 or 503; (the bytes, how many refusals)."""
    refused = 0
    while True:
        conn = http.client.HTTPConnection('127.0.0.1', site.port,
                                          timeout=TIMEOUT,
                                          source_address=(source, 0))
        try:
            conn.request('GET', path)
            response = conn.getresponse()
            body = response.read()
        finally:
            conn.close()
        if response.status not in (429, 503):
            assert response.status == 200, (response.status, body[:200])
            return body, refused
        refused += 1
        assert time.monotonic() < deadline, f'refused {refused} times'
        time.sleep(0.5)


@pytest.mark.parametrize('site', [SLOW_SITE], indirect=True)
def test_slow_readers_are_cut_and_a_real_machine_downloads(site):
    """Slow readers (16 KiB/s each, under min_download_rate) take every
    download place and take each place again as soon as they lose it.
    A real machine still gets its boot script at once and, retrying as
    firmware does, the whole image; every slow connection is cut, each
    cut logged once, and a cut connection's unsent data is dropped
    (reset), not left queued on the server while the attacker keeps its
    socket open."""
    readers = _SlowReaders(site)
    try:
        deadline = time.monotonic() + 30
        while readers.serving() < SLOW_PLACES:
            assert time.monotonic() < deadline, readers.serving()
            time.sleep(0.1)
        started = time.monotonic()
        # every place is taken: a download from elsewhere waits
        status, _, _ = _request(site, 'GET', '/images/vmlinuz',
                                source='127.0.0.2')
        assert status == 503
        status, _, text = _request(site, 'GET',
                                   '/boot.ipxe?mac=52:54:00:aa:bb:50',
                                   source='127.0.0.2')
        _assert_boot_script(status, text)
        image, refused = _download(site, '/images/initramfs.zst',
                                   '127.0.0.2', time.monotonic() + 120)
        waited = time.monotonic() - started
        assert len(image) == INITRAMFS
        # the attackers take their places back once their addresses may
        # (429 meanwhile), and lose them again: a second round of cuts,
        # and another machine downloads while they keep at it
        deadline = time.monotonic() + 120
        while len(readers.cut) < 2 * SLOW_PLACES:
            assert time.monotonic() < deadline, len(readers.cut)
            time.sleep(0.5)
        assert readers.refused > 0
        image, refused_again = _download(site, '/images/initramfs.zst',
                                         '127.0.0.3', time.monotonic() + 120)
        assert len(image) == INITRAMFS
        readers.reconnect = False
        deadline = time.monotonic() + 120
        while readers.open:  # the ones that got a place again
            assert time.monotonic() < deadline, len(readers.open)
            time.sleep(0.5)
        assert all(c['read'] < INITRAMFS for c in readers.cut)
        # the attacker still holds its sockets: the server's side is gone
        time.sleep(1)
        queued = _server_side(site.port, {c['port'] for c in readers.cut})
        assert sum(queued) == 0, queued
        log = site.log.read_text()
        cuts = re.findall(r'GET /images/initramfs\.zst to (127\.0\.5\.\d+) '
                          r'cut: ', log)
        assert len(cuts) == len(readers.cut), (len(cuts), len(readers.cut))
        assert set(cuts) == set(SLOW_ADDRESSES)
        read = [c['read'] for c in readers.cut]
    finally:
        readers.close()
    print(f'\n{SLOW_PLACES} downloads at 16 KiB/s holding every place '
          f'(max_downloads {SLOW_PLACES}), reconnecting when cut: a boot '
          f'script at once; the real machine\'s 64 MiB download after '
          f'{refused} refusals, {waited:.1f} s from the attack, another '
          f'after {refused_again} refusals while they kept at it; '
          f'{len(readers.cut)} slow connections cut after '
          f'{min(read) / 1024:.0f}-{max(read) / 1024:.0f} KiB, '
          f'{readers.refused} reconnects refused; server-side send queues '
          f'of cut connections: {sum(queued)} bytes')


def test_a_refusal_names_no_node_nor_state(site, clean_ironic):
    """Asking for the MAC of a node in use tells the asker that this
    machine is not to be inspected now, and nothing about the node
    behind the MAC (its UUID, its provision state), over iPXE's, GRUB's
    and GRUB's TFTP path; the boot server's log has the detail."""
    from tests import tftp

    mac = '52:54:00:ee:05:01'
    node = clean_ironic.enroll('available', ports=(mac,))
    before = _credentials(site)
    answers = []  # from three addresses: per_mac_burst is 2 per address
    for path, source in ((f'/boot.ipxe?mac={mac}', '127.0.0.80'),
                         (f'/boot.grub?mac={mac}', '127.0.0.81')):
        status, _, text = _request(site, 'GET', path, source=source)
        assert status == 403, text
        answers.append(text)
    answers.append(tftp.Client(site.tftp_port, source='127.0.0.82').get(
        f'boot.grub?mac={mac}&arch=x86_64').decode())
    for text in answers:
        assert 'not to be inspected now' in text, text
        assert 'exit 1' in text
        for secret in (node['uuid'], node['uuid'][:8], 'available',
                       'provision', 'node'):
            assert secret not in text.lower(), (secret, text)
    assert _credentials(site) == before
    log = site.log.read_text()
    assert f'port of node {node["uuid"]} (provision state "available")' in log
