"""The boot server over TFTP, for loaders that speak nothing else.

Debian's signed GRUB (``grubnetx64.efi.signed``, the one Secure Boot
runs after shim) fetches over TFTP only: UEFI PXE loads shim over TFTP,
shim loads ``grubx64.efi`` beside it, GRUB reads ``/grub/grub.cfg``, which
sources ``/boot.grub?mac=<its MAC>&arch=<its CPU>``, which loads the
kernel and the initramfs by their paths. This front answers each read
request by asking the same WSGI application the HTTP front asks (a GET of
the file name, from the client's address), so a credential is issued
through the one path with the same limits and refusals, and a refusal
is a GRUB script that says why, as over HTTP. Files are streamed from
disk a block at a time (the app names them: ``file_header``).

Protocol: RFC 1350 read requests in octet mode, with the blksize (capped
at ``MAX_BLKSIZE``, no IP fragments), tsize and timeout options (RFC
2347-2349), lock-step, a new port per transfer, each packet retransmitted
``RETRIES`` times at most. Write requests and everything else are
refused. Against a hostile network: a file name must be short printable
ASCII; a client address may have ``downloads_per_client`` transfers under
way and the server ``max_downloads``; a repeated read request of a
transfer under way is dropped (GRUB repeats its request when the answer
is slow; a second one would issue a second credential); packets from any
other address or port on a transfer's socket are ignored, never
answered. A read request from a forged source address makes at most one
packet go there, plus its retransmissions: keep TFTP on the provisioning
network.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import io
import logging
import os
import socket
import struct
import sys
from typing import Any

from hwbus.bootserver.scripts import printable
from hwbus.errors import PermanentError

LOG = logging.getLogger(__name__)

RRQ, WRQ, DATA, ACK, ERROR, OACK = 1, 2, 3, 4, 5, 6
NOT_FOUND, ACCESS, ILLEGAL, UNDEFINED = 1, 2, 4, 0
DEFAULT_BLKSIZE = 512
MAX_BLKSIZE = 1468  # an Ethernet frame, no IP fragments
MAX_NAME = 512  # bytes of a file name (with its query)
RETRIES = 4
TRANSPORT_KEY = 'hwbus.transport'  # in the WSGI environ: 'tftp'


class Refusal(PermanentError):
    """A request answered with a TFTP error packet and nothing else."""

    reason = 'tftp-refused'

    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code, self.text = code, text


def error_packet(code: int, text: str) -> bytes:
    return struct.pack('!HH', ERROR, code) + text.encode()[:100] + b'\0'


def parse_request(packet: bytes) -> tuple[str, dict[str, str]]:
    """The file name and the options (names lower-cased) of a read
    request; Refusal for anything else."""
    if len(packet) < 4:
        raise Refusal(ILLEGAL, 'short packet')
    opcode = struct.unpack('!H', packet[:2])[0]
    if opcode == WRQ:
        raise Refusal(ACCESS, 'read only')
    if opcode != RRQ:
        raise Refusal(ILLEGAL, 'not a read request')
    fields = packet[2:].split(b'\0')
    if len(fields) < 3 or fields[-1] != b'' or len(fields) % 2 != 1:
        raise Refusal(ILLEGAL, 'malformed request')
    raw_name, mode = fields[0], fields[1].lower()
    if mode != b'octet':
        raise Refusal(ILLEGAL, 'octet mode only')
    if (not raw_name or len(raw_name) > MAX_NAME
            or not all(0x21 <= c < 0x7f for c in raw_name)):
        raise Refusal(NOT_FOUND, 'no such file')
    options: dict[str, str] = {}
    for key, value in zip(fields[2:-1:2], fields[3:-1:2], strict=True):
        if len(key) > 32 or len(value) > 32:
            raise Refusal(ILLEGAL, 'malformed option')
        options[key.decode('ascii', 'replace').lower()] = value.decode(
            'ascii', 'replace')
    return raw_name.decode('ascii'), options


def negotiate(options: dict[str, str], size: int
              ) -> tuple[int, float, dict[str, str]]:
    """Block size, retransmission timeout and the options to acknowledge
    (RFC 2347: only those understood, values this server chose)."""
    blksize, timeout, answer = DEFAULT_BLKSIZE, 1.0, {}
    if options.get('blksize', '').isdigit():
        asked = int(options['blksize'])
        if 8 <= asked <= 65464:
            blksize = min(asked, MAX_BLKSIZE)
            answer['blksize'] = str(blksize)
    if options.get('timeout', '').isdigit():
        asked = int(options['timeout'])
        if 1 <= asked <= 255:
            timeout = float(min(asked, 10))
            answer['timeout'] = str(asked)
    if options.get('tsize') == '0':
        answer['tsize'] = str(size)
    return blksize, timeout, answer


class App:
    """The WSGI application asked for every file, as a GET from the
    client's address; answers (status, headers, body)."""

    def __init__(self, wsgi_app: Any, file_header: str, server: str,
                 port: int) -> None:
        self.wsgi_app, self.server, self.port = wsgi_app, server, port
        self.file_header = file_header.lower()

    def get(self, name: str, client: str
            ) -> tuple[int, dict[str, str], bytes]:
        path, _, query = ('/' + name.lstrip('/')).partition('?')
        environ = {
            'REQUEST_METHOD': 'GET', 'SCRIPT_NAME': '', 'PATH_INFO': path,
            'QUERY_STRING': query, 'SERVER_NAME': self.server,
            'SERVER_PORT': str(self.port), 'SERVER_PROTOCOL': 'HTTP/1.0',
            'REMOTE_ADDR': client, 'HTTP_HOST': self.server,
            'wsgi.version': (1, 0), 'wsgi.url_scheme': 'http',
            'wsgi.input': io.BytesIO(), 'wsgi.errors': sys.stderr,
            'wsgi.multithread': True, 'wsgi.multiprocess': False,
            'wsgi.run_once': False, TRANSPORT_KEY: 'tftp'}
        answer: dict[str, Any] = {}

        def start_response(status: str, headers: list, exc_info=None):
            answer['status'] = int(status.split(' ', 1)[0])
            answer['headers'] = {k.lower(): v for k, v in headers}
            return lambda chunk: None

        body = self.wsgi_app(environ, start_response)
        try:
            data = b''.join(body)
        finally:
            getattr(body, 'close', lambda: None)()
        return answer['status'], answer['headers'], data


class _Source:
    """What a transfer sends: a file (by path) or bytes."""

    def __init__(self, path: str | None, data: bytes = b'') -> None:
        self.fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC) if path else None
        self.data = data
        self.size = os.fstat(self.fd).st_size if self.fd is not None \
            else len(data)

    def read(self, offset: int, length: int) -> bytes:
        if self.fd is None:
            return self.data[offset:offset + length]
        return os.pread(self.fd, length, offset)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class _Transfer(asyncio.DatagramProtocol):
    """One read, on a socket of its own: packets from its client's
    address and port only."""

    def __init__(self, peer: tuple[str, int]) -> None:
        self.peer = peer
        self.inbox: asyncio.Queue[bytes] = asyncio.Queue(maxsize=16)
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if tuple(addr[:2]) == self.peer and not self.inbox.full():
            self.inbox.put_nowait(data)

    async def exchange(self, packet: bytes, want: int, timeout: float
                       ) -> bool:
        """Send ``packet`` until the client acknowledges block ``want``
        (True) or gives up or stops answering (False)."""
        for _ in range(RETRIES + 1):
            self.transport.sendto(packet, self.peer)
            deadline = asyncio.get_running_loop().time() + timeout
            while True:
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    break
                try:
                    reply = await asyncio.wait_for(self.inbox.get(), left)
                except TimeoutError:
                    break
                if len(reply) < 4:
                    continue
                opcode, block = struct.unpack('!HH', reply[:4])
                if opcode == ERROR:  # EDK2 ends a size query so
                    return False
                if opcode == ACK and block == want:
                    return True
                # an older ACK: ignore it (no Sorcerer's Apprentice)
        return False


class Server(asyncio.DatagramProtocol):
    """The listening socket: read requests start transfers."""

    def __init__(self, app: App, host: str, threads: int,
                 per_client: int, max_transfers: int) -> None:
        self.app, self.host = app, host
        self.per_client, self.max_transfers = per_client, max_transfers
        self.executor = concurrent.futures.ThreadPoolExecutor(
            threads, thread_name_prefix='tftp')
        self.transport: Any = None
        self.clients: collections.Counter[str] = collections.Counter()
        self.active: set[tuple[str, int, str]] = set()
        self.tasks: set[asyncio.Task] = set()

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        peer = (addr[0], addr[1])
        try:
            name, options = parse_request(data)
        except Refusal as exc:
            if len(data) >= 2 and data[:2] in (b'\0\x05', b'\0\x04'):
                return  # never answer an error or an ACK: no ping-pong
            self.transport.sendto(error_packet(exc.code, exc.text), peer)
            return
        key = (*peer, name)
        if key in self.active:  # the client repeated itself: it is served
            return
        if self.clients[peer[0]] >= self.per_client:
            self.transport.sendto(error_packet(
                UNDEFINED, 'too many transfers from this address'), peer)
            return
        if len(self.active) >= self.max_transfers:
            LOG.warning('TFTP read of %s by %s refused: %d transfers under '
                        'way', printable(name, 100), peer[0],
                        self.max_transfers)
            self.transport.sendto(error_packet(UNDEFINED, 'busy'), peer)
            return
        self.active.add(key)
        self.clients[peer[0]] += 1
        task = asyncio.get_running_loop().create_task(
            self._serve(peer, name, options))
        self.tasks.add(task)
        task.add_done_callback(lambda t: self._done(t, key))

    def _done(self, task: asyncio.Task, key: tuple[str, int, str]) -> None:
        self.tasks.discard(task)
        self.active.discard(key)
        self.clients[key[0]] -= 1
        if not self.clients[key[0]]:
            del self.clients[key[0]]
        if not task.cancelled() and task.exception() is not None:
            LOG.error('TFTP transfer to %s failed: %s', key[0],
                      task.exception())

    async def _serve(self, peer: tuple[str, int], name: str,
                     options: dict[str, str]) -> None:
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ':' in peer[0] else socket.AF_INET
        transport, transfer = await loop.create_datagram_endpoint(
            lambda: _Transfer(peer), local_addr=(self.host, 0),
            family=family)
        source = None
        try:
            try:
                source = await loop.run_in_executor(
                    self.executor, self._resolve, name, peer[0])
            except Refusal as exc:
                transport.sendto(error_packet(exc.code, exc.text), peer)
                return
            await self._send(transfer, source, options, name)
        finally:
            if source is not None:
                source.close()
            transport.close()

    def _resolve(self, name: str, client: str) -> _Source:
        """Ask the app for ``name``, as the HTTP front would."""
        status, headers, body = self.app.get(name, client)
        path = headers.get(self.app.file_header)
        if status == 200 and path:
            try:
                return _Source(path)
            except OSError:
                raise Refusal(NOT_FOUND, 'no such file') from None
        if status == 404:
            raise Refusal(NOT_FOUND, 'no such file')
        if headers.get('content-type', '').startswith('text/plain') and (
                status == 200 or name.startswith(('boot.', '/boot.'))):
            # a boot script, or a refusal in the loader's language that
            # tells the machine's console why
            return _Source(None, body)
        raise Refusal(UNDEFINED, f'refused ({status})')

    async def _send(self, transfer: _Transfer, source: _Source,
                    options: dict[str, str], name: str) -> None:
        blksize, timeout, answer = negotiate(options, source.size)
        if answer:
            oack = struct.pack('!H', OACK) + b''.join(
                k.encode() + b'\0' + v.encode() + b'\0'
                for k, v in answer.items())
            if not await transfer.exchange(oack, 0, timeout):
                return  # EDK2 asks tsize, then aborts and asks again
        loop = asyncio.get_running_loop()
        block, offset = 1, 0
        while True:
            chunk = await loop.run_in_executor(
                self.executor, source.read, offset, blksize)
            packet = struct.pack('!HH', DATA, block & 0xffff) + chunk
            if not await transfer.exchange(packet, block & 0xffff,
                                           timeout):
                LOG.warning('TFTP transfer of %s to %s ended at block %d: '
                            'the client stopped answering',
                            printable(name, 100), transfer.peer[0], block)
                return
            offset += len(chunk)
            if len(chunk) < blksize:
                LOG.info('TFTP: sent %s (%d bytes) to %s',
                         printable(name.lstrip('/'), 100), offset,
                         transfer.peer[0])
                return
            block += 1


async def start(wsgi_app: Any, file_header: str, group: Any) -> Any:
    """Listen on [bootserver] tftp_host (host when unset) : tftp_port;
    returns the transport (close it to stop)."""
    host = group.tftp_host or group.host
    family = socket.AF_INET6 if ':' in host else socket.AF_INET
    app = App(wsgi_app, file_header, host, group.tftp_port)
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: Server(app, host, group.threads, group.downloads_per_client,
                       group.max_downloads),
        local_addr=(host, group.tftp_port), family=family)
    return transport
