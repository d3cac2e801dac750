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
refused. Against a hostile network:

* a source address is free to forge over UDP, so nothing is issued on a
  datagram alone: ``boot.grub`` must be asked with options, is answered
  with an OACK from the transfer's own port (its size, ``SCRIPT_SIZE``,
  is fixed: scripts are padded to it), and the credential is issued only
  once the client acknowledged that OACK from the address and port it
  asked from (a forger never sees the OACK, so it cannot acknowledge it
  without guessing the port);
* a transfer the client has not acknowledged yet is "unconfirmed", and
  at most ``MAX_UNCONFIRMED`` exist (a new request ends the oldest), so
  forged requests cannot hold the transfer places. Its first packet
  goes to an address nobody has shown it receives at, so it sends no
  more packets than requests arrived in that address's name: an OACK
  (smaller than the request that asked for it) is sent
  ``UNCONFIRMED_RETRIES`` more times at most, one second apart; a first
  data block (a request without options: 516 bytes for a request of 20
  or so) is sent once, and again only when the same request is repeated
  from the same port (a client that lost it asks again, as RFC 1350
  has it), ``UNCONFIRMED_RETRIES`` times at most;
* a file name must be short printable ASCII; a client address may have
  ``downloads_per_client`` transfers under way and the server
  ``max_downloads``; a repeated read request of a transfer under way is
  otherwise dropped (GRUB repeats its request when the answer is slow);
  packets
  from any other address or port on a transfer's socket are ignored,
  never answered.

Keep TFTP on the provisioning network all the same.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import logging
import os
import socket
import struct
import sys
from typing import Any

from hwbus.bootserver.ratelimit import Slots
from hwbus.bootserver.scripts import printable
from hwbus.errors import PermanentError

LOG = logging.getLogger(__name__)

RRQ, WRQ, DATA, ACK, ERROR, OACK = 1, 2, 3, 4, 5, 6
NOT_FOUND, ACCESS, ILLEGAL, UNDEFINED = 1, 2, 4, 0
DEFAULT_BLKSIZE = 512
MAX_BLKSIZE = 1468  # an Ethernet frame, no IP fragments
MAX_NAME = 512  # bytes of a file name (with its query)
RETRIES = 4
UNCONFIRMED_RETRIES = 2  # a first packet nobody acknowledged yet
MAX_UNCONFIRMED = 64
MAX_TIMEOUT = 10  # seconds: a timeout option above is not acknowledged
SCRIPT_SIZE = 8192  # every boot script over TFTP, padded (its tsize)
READ_AHEAD = 32 * 1024  # bytes read from the file per pool hop
TRANSPORT_KEY = 'hwbus.transport'  # in the WSGI environ: 'tftp'


class Refusal(PermanentError):
    """A request answered with a TFTP error packet and nothing else."""

    reason = 'tftp-refused'

    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code, self.text = code, text


def is_script(name: str) -> bool:
    """Whether ``name`` asks for a boot script (which issues)."""
    return name.lstrip('/').startswith('boot.')


def padded(script: bytes) -> bytes:
    """``script`` grown to SCRIPT_SIZE with comment lines, the size every
    boot script has over TFTP (announced before it is made)."""
    if len(script) > SCRIPT_SIZE:
        raise Refusal(UNDEFINED, 'boot script too long')
    pad, left = bytearray(), SCRIPT_SIZE - len(script)
    while left > 0:
        n = min(left, 80)
        pad += b'\n' if n == 1 else b'#' + b' ' * (n - 2) + b'\n'
        left -= n
    return script + bytes(pad)


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
        if 1 <= asked <= MAX_TIMEOUT:
            timeout = float(asked)
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


def _close_result(future: asyncio.Future) -> None:
    if not future.cancelled() and future.exception() is None:
        future.result().close()


class _Transfer(asyncio.DatagramProtocol):
    """One read, on a socket of its own: packets from its client's
    address and port only."""

    def __init__(self, peer: tuple[str, int]) -> None:
        self.peer = peer
        self.inbox: asyncio.Queue[bytes] = asyncio.Queue(maxsize=16)
        self.transport: Any = None
        self.last = b''  # the packet exchange() sends
        self.resends = 0  # left for repeated requests (resend())

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if tuple(addr[:2]) == self.peer and not self.inbox.full():
            self.inbox.put_nowait(data)

    async def exchange(self, packet: bytes, want: int, timeout: float,
                       retries: int = RETRIES) -> bool:
        """Send ``packet`` until the client acknowledges block ``want``
        (True) or gives up or stops answering (False)."""
        self.last = packet
        for _ in range(retries + 1):
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

    def resend(self) -> None:
        """The client repeated its request: send the packet it waits for
        once more, while resends are left (one packet per request)."""
        if self.resends > 0 and self.last and self.transport is not None:
            self.resends -= 1
            self.transport.sendto(self.last, self.peer)


class Server(asyncio.DatagramProtocol):
    """The listening socket: read requests start transfers."""

    def __init__(self, app: App, host: str, threads: int,
                 per_client: int, max_transfers: int) -> None:
        self.app, self.host = app, host
        self.slots = Slots(per_client, max_transfers)
        self.executor = concurrent.futures.ThreadPoolExecutor(
            threads, thread_name_prefix='tftp')
        self.transport: Any = None
        self.active: set[tuple[str, int, str]] = set()
        self.tasks: set[asyncio.Task] = set()
        # transfers whose client acknowledged nothing yet, oldest first
        self.unconfirmed: dict[tuple[str, int, str], asyncio.Task] = {}
        # unconfirmed first data blocks, sent again on a repeated request
        self.repeatable: dict[tuple[str, int, str], _Transfer] = {}

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        # a burst of requests must not push a real one out of the buffer
        # (the kernel caps this at net.core.rmem_max)
        sock = transport.get_extra_info('socket')
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)

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
            if key in self.repeatable:  # and may have lost the first block
                self.repeatable[key].resend()
            return
        refused = self.slots.take(peer[0])
        if refused == Slots.PER_CLIENT:
            self.transport.sendto(error_packet(
                UNDEFINED, 'too many transfers from this address'), peer)
            return
        if refused:
            LOG.warning('TFTP read of %s by %s refused: %d transfers under '
                        'way', printable(name, 100), peer[0],
                        self.slots.total)
            self.transport.sendto(error_packet(UNDEFINED, 'busy'), peer)
            return
        if len(self.unconfirmed) >= MAX_UNCONFIRMED:
            oldest = next(iter(self.unconfirmed))
            self.unconfirmed.pop(oldest).cancel()
        self.active.add(key)
        task = asyncio.get_running_loop().create_task(
            self._serve(peer, name, options, key))
        self.tasks.add(task)
        self.unconfirmed[key] = task
        task.add_done_callback(lambda t: self._done(t, key))

    def _done(self, task: asyncio.Task, key: tuple[str, int, str]) -> None:
        self.tasks.discard(task)
        self.active.discard(key)
        self.unconfirmed.pop(key, None)
        self.repeatable.pop(key, None)
        self.slots.give(key[0])
        if not task.cancelled() and task.exception() is not None:
            LOG.error('TFTP transfer to %s failed: %s', key[0],
                      task.exception())

    async def _serve(self, peer: tuple[str, int], name: str,
                     options: dict[str, str],
                     key: tuple[str, int, str]) -> None:
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ':' in peer[0] else socket.AF_INET
        transport, transfer = await loop.create_datagram_endpoint(
            lambda: _Transfer(peer), local_addr=(self.host, 0),
            family=family)
        source = None
        try:
            if is_script(name):
                # nothing is issued before the client proved it receives
                blksize, timeout, answer = negotiate(options, SCRIPT_SIZE)
                if 'tsize' not in answer:
                    raise Refusal(8, 'boot scripts need the tsize option')
                if not await self._confirm(transfer, answer, timeout, key):
                    return
                source = await self._resolve_in_pool(name, peer[0])
                source = _Source(None, padded(source.data))
            else:
                source = await self._resolve_in_pool(name, peer[0])
                blksize, timeout, answer = negotiate(options, source.size)
                if answer and not await self._confirm(transfer, answer,
                                                      timeout, key):
                    return  # EDK2 asks tsize, then aborts and asks again
            await self._send(transfer, source, blksize, timeout, name, key)
        except Refusal as exc:
            transport.sendto(error_packet(exc.code, exc.text), peer)
        finally:
            if source is not None:
                source.close()
            transport.close()

    async def _confirm(self, transfer: _Transfer, answer: dict[str, str],
                       timeout: float, key: tuple[str, int, str]) -> bool:
        """Send the OACK until the client acknowledges it (it is then
        confirmed: it receives at the address it asked from)."""
        oack = struct.pack('!H', OACK) + b''.join(
            k.encode() + b'\0' + v.encode() + b'\0'
            for k, v in answer.items())
        if not await transfer.exchange(oack, 0, min(timeout, 1.0),
                                       UNCONFIRMED_RETRIES):
            return False
        self.unconfirmed.pop(key, None)
        return True

    async def _resolve_in_pool(self, name: str, client: str) -> _Source:
        """_resolve in the pool; a transfer ended meanwhile (evicted)
        closes the file its resolution opened."""
        future = asyncio.get_running_loop().run_in_executor(
            self.executor, self._resolve, name, client)
        try:
            return await future
        except asyncio.CancelledError:
            future.add_done_callback(_close_result)
            raise

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
                    blksize: int, timeout: float, name: str,
                    key: tuple[str, int, str]) -> None:
        loop = asyncio.get_running_loop()
        block, offset = 1, 0
        buffered, start, ended = b'', 0, False
        while True:
            if offset + blksize > start + len(buffered) and not ended:
                # READ_AHEAD at a time, in the loop's default pool: one
                # hop per many blocks, never behind a boot script that
                # waits for Ironic in self.executor
                want = max(READ_AHEAD, blksize)
                start, buffered = offset, await loop.run_in_executor(
                    None, source.read, offset, want)
                ended = len(buffered) < want
            chunk = buffered[offset - start:offset - start + blksize]
            packet = struct.pack('!HH', DATA, block & 0xffff) + chunk
            confirmed = key not in self.unconfirmed
            if confirmed:
                wait, retries = timeout, RETRIES
            else:
                # nobody acknowledged anything: this block may be going
                # to a forged address. Sent once, and once more per
                # repeated request; waited for as long as the OACK's
                # tries take.
                wait = min(timeout, 1.0) * (1 + UNCONFIRMED_RETRIES)
                retries = 0
                transfer.resends = UNCONFIRMED_RETRIES
                self.repeatable[key] = transfer
            acknowledged = await transfer.exchange(
                packet, block & 0xffff, wait, retries)
            self.repeatable.pop(key, None)
            if not acknowledged:
                if confirmed:
                    LOG.warning('TFTP transfer of %s to %s ended at block '
                                '%d: the client stopped answering',
                                printable(name, 100), transfer.peer[0],
                                block)
                return
            self.unconfirmed.pop(key, None)
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
