"""The boot server's TFTP front, attacked on the real process.

TFTP is UDP: a source address is cheap to forge and nothing shakes
hands, so the rules are: a request names a file as printable ASCII or
gets "not found"; only reads; a credential is issued through the same
path as over HTTP (its limits, its refusals); a transfer answers only
its client's address and port, retransmits a bounded number of times
and then frees its place; one address has a bounded number of
transfers; a repeated request does not issue twice. After each attack
the chain a Secure Boot machine runs (grub.cfg, boot.grub, kernel) still
works.
"""

from __future__ import annotations

import os
import socket
import struct
import time
import urllib.parse

from tests import tftp
from tests.attack.test_bootserver import (
    GRUB_SIZE,
    _credentials,
    _request,
    site,
)
from tests.unit.test_bootserver import HOSTILE, grub_words

__all__ = ['site']  # the fixture, shared with test_bootserver

MAC = '52:54:00:ee:02:01'


def _boot_chain(site, mac: str, source: str) -> list[str]:
    """What GRUB does after UEFI PXE: its config, the per-boot script,
    the kernel it names. Returns the script's ``linux`` words."""
    client = tftp.Client(site.tftp_port, source=source)
    config = client.get('grub/grub.cfg').decode()
    assert ('source "/boot.grub?mac=${net_default_mac}&arch=${grub_cpu}"'
            in config)
    script = client.get(f'/boot.grub?mac={mac}&arch=x86_64').decode()
    linux = grub_words(script.splitlines()[1])
    assert linux[:2] == ['linux', '/images/vmlinuz'], script
    assert client.get(linux[1]) == b'kernel\n'
    return linux


def test_a_secure_boot_machine_gets_its_chain_over_tftp(site):
    """The loaders, GRUB's config, the per-boot script (a real credential
    in the store and on the broker) and the images, over TFTP; the MAC's
    budget is the one HTTP uses."""
    before = _credentials(site)
    client = tftp.Client(site.tftp_port, source='127.0.0.60')
    grub = (site.config.parent / 'grubx64.efi').read_bytes()
    assert client.get('grubx64.efi', blksize=1468) == grub  # 2,857 blocks
    assert client.get('/grubx64.efi', blksize=None, tsize=False) == grub
    linux = _boot_chain(site, MAC, '127.0.0.60')
    assert any(w.startswith('hwbus.key=') for w in linux)
    assert f'BOOTIF=01-{MAC.replace(":", "-")}' in linux
    [credential] = site.store.list(mac=MAC)
    assert credential.issued_by == 'bootserver'
    assert credential.username in site.broker.users()
    assert _credentials(site) == (before[0] + 1, before[1] + 1)
    # per_mac_burst is 2 per address: one over TFTP, one over HTTP, and
    # the third, over TFTP, is refused with a script that says why
    status, _, _ = _request(site, 'GET', f'/boot.grub?mac={MAC}',
                            source='127.0.0.60')
    assert status == 200
    refused = client.get(f'boot.grub?mac={MAC}&arch=x86_64').decode()
    assert grub_words(refused.splitlines()[0])[0] == 'echo'
    assert 'exit 1' in refused
    log = site.log.read_text()
    assert f'for {MAC} (x86_64, boot.grub) to 127.0.0.60' in log
    assert 'TFTP: sent grubx64.efi' in log


def _no_answer(sock: socket.socket, wait: float = 1.5) -> bool:
    sock.settimeout(wait)
    try:
        sock.recvfrom(70000)
    except TimeoutError:
        return True
    return False


def test_hostile_requests_get_an_error_and_nothing_else(site):
    """Writes, other modes, paths out of the tree, control characters,
    non-ASCII, long names, malformed packets: one error packet, no
    file, no credential; errors and ACKs sent to the server's port are
    never answered (no ping-pong between two servers); hostile MACs
    get GRUB's refusal script and no credential."""
    before = _credentials(site)
    client = tftp.Client(site.tftp_port, source='127.0.0.61')
    sock = client.socket()
    server = ('127.0.0.1', site.tftp_port)

    def error_for(packet: bytes) -> int:
        sock.sendto(packet, server)
        answer, _ = sock.recvfrom(1000)
        opcode, code = struct.unpack('!HH', answer[:4])
        assert opcode == tftp.ERROR, answer
        return code

    write = struct.pack('!H', tftp.WRQ) + b'grubx64.efi\0octet\0'
    assert error_for(write) == 2
    assert error_for(tftp.rrq('grubx64.efi', mode=b'netascii')) == 4
    assert error_for(tftp.rrq('grubx64.efi', mode=b'mail')) == 4
    names = [b'../../../../etc/passwd', b'/etc/passwd',
             b'images/../../../../etc/passwd', b'images/..%2f..%2fhwbus.conf',
             b'images\\..\\..\\hwbus.conf', b'grub\x1b[31m.cfg',
             b'grub/grub.cfg\xff', b'x' * 600, b'hwbus.conf',
             b'images/vmlinuz\0hidden', b'bootserver.log', b'images/']
    for name in names:
        code = error_for(tftp.rrq(name))
        assert code in (1, 4), name  # not found, or malformed (the NUL)
    for packet in (b'\0', b'\0\x01', b'\0\x01abc', b'\0\x01a\0octet\0x\0',
                   b'\0\x09whatever\0octet\0', b'\xff' * 600):
        assert error_for(packet) == 4, packet
    for packet in (struct.pack('!HH', tftp.ERROR, 0) + b'x\0',
                   tftp.ack(1), tftp.ack(0)):
        sock.sendto(packet, server)
        assert _no_answer(sock), packet
    sock.close()
    hostile = [f'boot.grub?mac={urllib.parse.quote(mac, safe="")}'
               for mac in HOSTILE if mac.isascii() and mac.isprintable()]
    hostile += [f'boot.grub?mac=52:54:00:ee:02:02&arch={a}'
                for a in ("x86_64'%3breboot%3b'", 'riscv64')]
    for name in hostile:
        if ' ' in name or len(name) > 500:
            continue
        script = client.get(name).decode()
        assert len(script) == 8192  # every script has one size over TFTP
        echo, _, leave = [line for line in script.splitlines()
                          if line and not line.startswith('#')]
        assert len(grub_words(echo)) == 2 and leave == 'exit 1', name
    assert _credentials(site) == before
    log = site.log.read_text()
    assert not any(c in log for c in '\x1b\xff')
    _boot_chain(site, '52:54:00:ee:02:03', '127.0.0.62')  # still boots


def test_transfers_are_bounded_and_answer_only_their_client(site):
    """A client that never acknowledges gets a bounded number of
    retransmissions; one address has at most downloads_per_client (4)
    transfers; a request repeated from one port issues one credential;
    packets from elsewhere to a transfer's port are ignored and do not
    disturb it. Then the address boots normally."""
    server = ('127.0.0.1', site.tftp_port)
    silent = tftp.Client(site.tftp_port, source='127.0.0.63').socket()
    silent.sendto(tftp.rrq('grubx64.efi', options={'blksize': '1024'}),
                  server)
    received = []
    silent.settimeout(4)  # the server waits 1 s between tries
    try:
        while len(received) < 20:
            received.append(silent.recvfrom(2000)[0])
    except TimeoutError:
        pass
    # an unconfirmed first packet: sent 1 + UNCONFIRMED_RETRIES (2) times
    assert 1 <= len(received) <= 3, len(received)
    assert all(p[:2] == struct.pack('!H', tftp.OACK) for p in received)
    silent.close()

    # four transfers under way from one address: the fifth is refused
    holders = [tftp.Client(site.tftp_port, source='127.0.0.64').socket()
               for _ in range(6)]
    answers = []
    for sock in holders:
        sock.sendto(tftp.rrq('grubx64.efi', options={'blksize': '1024'}),
                    server)
        answers.append(sock.recvfrom(2000)[0][:2])
    assert answers.count(struct.pack('!H', tftp.OACK)) == 4, answers
    assert answers.count(struct.pack('!H', tftp.ERROR)) == 2, answers

    # a third party at a transfer's port: ignored, and the transfer goes on
    sock = holders[0]
    sock.settimeout(5)
    sock.sendto(tftp.ack(0), server)  # to the main port: no answer
    oack, peer = None, None
    intruder = tftp.Client(site.tftp_port, source='127.0.0.65').socket()
    # the holder's OACK came from the transfer's port: find it again
    sock.sendto(tftp.rrq('grubx64.efi', options={'blksize': '1024'}),
                server)  # a repeat of a transfer under way: dropped
    oack, peer = sock.recvfrom(2000)  # the transfer's retransmission
    assert oack[:2] == struct.pack('!H', tftp.OACK)
    intruder.sendto(tftp.ack(0), peer)
    intruder.sendto(struct.pack('!HH', tftp.ERROR, 0) + b'stop\0', peer)
    assert _no_answer(intruder, 1)
    sock.sendto(tftp.ack(0), peer)
    data, _ = sock.recvfrom(2000)
    if data[:2] == struct.pack('!H', tftp.OACK):
        # A retransmission sent before our ACK arrived (a loaded machine):
        # the data follows it.
        data, _ = sock.recvfrom(2000)
    assert data[:4] == struct.pack('!HH', tftp.DATA, 1)
    for holder in holders:
        holder.close()
    intruder.close()

    # one request repeated three times from one port: one credential,
    # issued once the client acknowledged the OACK
    before = _credentials(site)
    repeat = tftp.Client(site.tftp_port, source='127.0.0.66').socket()
    for _ in range(3):
        repeat.sendto(tftp.rrq('boot.grub?mac=52:54:00:ee:02:04&arch=x86_64',
                               options={'blksize': '1024', 'tsize': '0'}),
                      server)
    oack, peer = repeat.recvfrom(2000)
    assert oack[:2] == struct.pack('!H', tftp.OACK)
    time.sleep(0.5)
    assert _credentials(site) == before  # nothing before the ACK
    repeat.sendto(tftp.ack(0), peer)
    data, _ = repeat.recvfrom(2000)
    assert data[:4] == struct.pack('!HH', tftp.DATA, 1)
    assert _credentials(site)[0] == before[0] + 1
    repeat.close()

    time.sleep(4)  # the unconfirmed transfers give up (3 tries, 1 s each)
    client = tftp.Client(site.tftp_port, source='127.0.0.64')
    assert len(client.get('grubx64.efi')) == GRUB_SIZE
    _boot_chain(site, '52:54:00:ee:02:05', '127.0.0.64')


def test_forged_sources_get_no_credential_and_block_nobody(site):
    """A datagram's source address is free to forge. Requests for a
    victim's boot script from three addresses that never answer (as
    forged ones cannot), and one without options (no OACK to answer):
    nothing is issued, so the victim's own boot, over TFTP, gets its
    credential; a flood of unacknowledged image requests from 130
    addresses holds neither the transfer places nor file descriptors,
    and a real machine's reads go through meanwhile."""
    victim = '52:54:00:ee:02:10'
    server = ('127.0.0.1', site.tftp_port)
    before = _credentials(site)
    forged = []
    for n in range(3):
        sock = tftp.Client(site.tftp_port, source=f'127.0.3.{n + 1}').socket()
        sock.sendto(tftp.rrq(f'boot.grub?mac={victim}&arch=x86_64',
                             options={'blksize': '1024', 'tsize': '0'}),
                    server)
        forged.append(sock)
    bare = tftp.Client(site.tftp_port, source='127.0.3.9').socket()
    bare.sendto(tftp.rrq(f'boot.grub?mac={victim}&arch=x86_64'), server)
    answer, _ = bare.recvfrom(1000)
    assert struct.unpack('!HH', answer[:4]) == (tftp.ERROR, 8)
    time.sleep(4)  # every forged transfer has given up
    assert _credentials(site) == before
    _boot_chain(site, victim, '127.0.3.20')
    assert len(site.store.list(mac=victim)) == 1

    fds = len(os.listdir(f'/proc/{site.proc.pid}/fd'))
    flood = []
    for n in range(130):
        sock = tftp.Client(site.tftp_port, source=f'127.0.4.{n + 1}').socket()
        for _ in range(4):
            sock.sendto(tftp.rrq('images/initramfs.zst', options={
                'blksize': '1468', 'timeout': '255'}), server)
        flood.append(sock)
    client = tftp.Client(site.tftp_port, source='127.0.3.21')
    assert len(client.get('grubx64.efi')) == GRUB_SIZE
    grown = len(os.listdir(f'/proc/{site.proc.pid}/fd')) - fds
    for sock in [*forged, bare, *flood]:
        sock.close()
    # MAX_UNCONFIRMED (64) transfers, each a socket and an open file
    assert grown <= 2 * 64 + 16, grown
    print(f'\nTFTP: 3 forged requests for a victim\'s script and one '
          f'without options: 0 credentials, the victim then booted; 520 '
          f'unacknowledged image requests from 130 addresses: +{grown} '
          f'file descriptors, a real read answered meanwhile')


def test_block_sizes_a_loader_may_ask(site):
    """Any block size RFC 2348 allows is served (capped at 1468, one
    Ethernet frame), also a file of whole blocks (it ends with an empty
    one); the bytes are the file's."""
    kernel = site.config.parent / 'images' / 'vmlinuz'
    client = tftp.Client(site.tftp_port, source='127.0.0.67')
    for size in (40000, 1468 * 20, 0):
        kernel.write_bytes(os.urandom(size))
        for blksize in (8, 512, 1024, 1468, 65464, None):
            assert client.get('images/vmlinuz', blksize=blksize) == \
                kernel.read_bytes(), (size, blksize)


def _packets(sock: socket.socket, wait: float) -> list[bytes]:
    """Every datagram arriving at ``sock`` within ``wait`` seconds."""
    got, deadline = [], time.monotonic() + wait
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            got.append(sock.recvfrom(70000)[0])
        except TimeoutError:
            break
    return got


def test_a_request_without_options_sends_one_packet_per_request(site):
    """A read request without options (no OACK to answer: the first
    data block goes straight to the address it names) from an address
    that never acknowledges makes one packet go there, not one per
    retransmission; the same request repeated from that port gets one
    packet per repeat, so a forged source gets at most as many packets
    as were sent in its name. A real option-less client that loses the
    first block recovers by repeating its request, as RFC 1350 has it,
    and reads the file whole; so does one that loses nothing."""
    server = ('127.0.0.1', site.tftp_port)
    grub = (site.config.parent / 'grubx64.efi').read_bytes()
    forged = tftp.Client(site.tftp_port, source='127.0.6.1').socket()
    forged.sendto(tftp.rrq('grubx64.efi'), server)
    first = _packets(forged, 5)  # past every retransmission of before
    assert [p[:4] for p in first] == [struct.pack('!HH', tftp.DATA, 1)]
    assert len(first[0]) == 4 + 512
    for _ in range(3):
        forged.sendto(tftp.rrq('grubx64.efi'), server)
    again = _packets(forged, 5)
    assert 1 <= len(again) <= 3, len(again)
    assert all(p[:4] == struct.pack('!HH', tftp.DATA, 1) for p in again)
    forged.close()

    # a client whose first block is lost: it asks again, then reads
    lossy = tftp.Client(site.tftp_port, source='127.0.6.2').socket()
    lossy.sendto(tftp.rrq('grubx64.efi'), server)
    lossy.recvfrom(2000)  # lost on the way, as far as the client knows
    lossy.sendto(tftp.rrq('grubx64.efi'), server)
    data, peer = bytearray(), None
    block = 1
    while True:
        packet, addr = lossy.recvfrom(2000)
        peer = peer or addr
        assert addr == peer and packet[:4] == struct.pack(
            '!HH', tftp.DATA, block & 0xffff), packet[:4]
        data += packet[4:]
        lossy.sendto(tftp.ack(block), peer)
        if len(packet) - 4 < 512:
            break
        block += 1
    lossy.close()
    assert bytes(data) == grub
    client = tftp.Client(site.tftp_port, source='127.0.6.3')
    assert client.get('grubx64.efi', blksize=None, tsize=False) == grub
    assert client.get('images/vmlinuz', blksize=None,
                      tsize=False) == b'kernel\n'
    print(f'\nTFTP without options: 1 packet to a silent address, '
          f'{len(again)} for 3 repeats; a client that lost block 1 read '
          f'{len(grub)} bytes after asking again')
