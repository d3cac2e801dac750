"""Serving the boot server: Hypercorn in front, the WSGI app in threads.

cheroot, the server before, gave each connection a worker thread from
the moment it was accepted, so 16 clients sending their request heads
slowly held every thread and the boot server answered nothing. Here
Hypercorn reads request heads on an asyncio event loop, where a waiting
connection costs a socket and a little memory, not a thread:

* a head must be complete within ``[bootserver] header_timeout`` of the
  connection (or of the previous response on a kept-alive connection),
  else the connection is closed (Hypercorn's keep-alive timeout runs
  from the moment a connection is idle until a complete head arrives);
  the TLS handshake has the same limit;
* a head may have ``max_header_size`` bytes (h11's incomplete-event
  limit; more is answered 431);
* only a complete request reaches the Flask app, through a2wsgi, in one
  of two thread pools: ``image_threads`` for downloads (/images/, the
  firmware loaders and the boot disk images) and ``threads`` for the
  rest, so downloads can never delay a boot script or a health check;
* a download's bytes are not sent by the app: it names the file in a
  header (``FILE_HEADER``, as nginx's X-Accel-Redirect) and this front
  streams the file from disk on the event loop, a chunk at a time, each
  sent only when the client accepted the one before. A download holds
  no thread and one chunk of memory however slowly it is read (a WSGI
  body queued through a2wsgi is held whole per connection: 120 stalled
  downloads of a 4 MiB boot image cost 649 MiB before). One client
  address may have ``downloads_per_client`` downloads under way and
  the server ``max_downloads``; more are answered 429 / 503;
* a request with a body is refused before anything reads the body (the
  boot server takes none), so a slowly sent body holds no thread either;
* a client that does not accept the next part of a response within
  ``send_timeout`` has its connection cut (below) and its thread freed;
* a download must keep up ``min_download_rate`` bytes a second, counted
  from the start of its response with ``download_grace`` seconds of
  allowance (at time t it must have delivered rate * (t - grace)
  bytes). Delivered means acknowledged by the client: the bytes given
  to the connection less those still in asyncio's buffer and the
  kernel's send queue (SIOCOUTQ), so a send buffer the kernel grew
  gives no credit. Without it, 512 readers at 16 KB/s each held every
  download place for as long as they liked. A download that falls
  behind is cut, and its address gets no new download for
  ``download_grace`` seconds (429), so an attacker cannot take the
  place back the moment it is freed while real machines wait. Holding
  a place therefore costs min_download_rate bytes a second for as long
  as it is held, or a new address every grace period;
* a cut connection (either limit) is reset, not closed: SO_LINGER 0 and
  the transport aborted, so neither asyncio's buffer nor the kernel's
  send queue keeps megabytes for a peer that does not read (a plain
  close waits for asyncio's buffer to drain, for ever, and then leaves
  the kernel's queue to an orphaned socket).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any

from a2wsgi import WSGIMiddleware

from hwbus.bootserver import pacing
from hwbus.bootserver.app import is_download
from hwbus.bootserver.ratelimit import Slots
from hwbus.bootserver.scripts import printable

LOG = logging.getLogger(__name__)

Send = Callable[[dict[str, Any]], Awaitable[None]]
FILE_HEADER = b'x-hwbus-file'  # the app's "send this file" (lower case)
CHUNK = 64 * 1024
# What Python's ssl module offers by default, which cheroot (the server
# before) served too; Hypercorn's own default is ECDHE+AESGCM only, which
# older iPXE builds (no ECDHE, no GCM) cannot speak. TLS 1.3 suites are
# not affected by this string.
CIPHERS = ('ECDH+AESGCM:ECDH+CHACHA20:ECDH+AES:DHE+AES:!aNULL:!eNULL:'
           '!aDSS:!SHA1:!AESCCM')


class _FileSender:
    """An ASGI ``send`` for downloads: when the app's response names a
    file in ``FILE_HEADER``, the file (or the byte range the app's
    Content-Range gives) is streamed from disk in place of the app's
    empty body, each chunk read only after the previous one was sent."""

    def __init__(self, send: pacing.SendDeadline, head: bool = False) -> None:
        self.send, self.head = send, head  # HEAD: headers only
        self.file: int | None = None
        self.offset = self.length = 0

    async def __call__(self, message: dict[str, Any]) -> None:
        if message['type'] == 'http.response.start':
            message = await self._start(message)
            await self.send(message)
        elif self.file is None:
            await self.send(message)
        elif not message.get('more_body', False):
            try:
                await self._stream()
            finally:
                os.close(self.file)
                self.file = None

    async def _start(self, message: dict[str, Any]) -> dict[str, Any]:
        headers = dict(message['headers'])
        path = headers.pop(FILE_HEADER, None)
        if path is None:
            return message
        rest = [(k, v) for k, v in message['headers'] if k != FILE_HEADER]
        if self.head or message['status'] not in (200, 206):  # no body
            return {**message, 'headers': rest}
        try:
            self.file = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:  # replaced meanwhile (a rebuilt image)
            LOG.warning('download of %s failed: %s', path, exc.strerror)
            return {'type': 'http.response.start', 'status': 503,
                    'headers': [(b'content-length', b'0'),
                                (b'retry-after', b'1')]}
        self.length = int(headers.get(b'content-length', b'0'))
        ranged = headers.get(b'content-range', b'')
        if message['status'] == 206 and ranged.startswith(b'bytes '):
            self.offset = int(ranged[6:].split(b'-', 1)[0])
        return {**message, 'headers': rest}

    async def _stream(self) -> None:
        loop = asyncio.get_running_loop()
        assert self.file is not None
        left, offset = self.length, self.offset
        while left > 0 and not self.send.abandoned:
            chunk = await loop.run_in_executor(
                None, os.pread, self.file, min(CHUNK, left), offset)
            if not chunk:  # the file shrank: end the connection short
                LOG.warning('%s: file shorter than announced',
                            self.send.client)
                return
            left, offset = left - len(chunk), offset + len(chunk)
            await self.send({'type': 'http.response.body', 'body': chunk,
                             'more_body': left > 0})


async def _answer(send: Send, status: int, text: str) -> None:
    body = text.encode()
    await send({'type': 'http.response.start', 'status': status,
                'headers': [(b'content-type', b'text/plain'),
                            (b'content-length', str(len(body)).encode()),
                            (b'connection', b'close')]})
    await send({'type': 'http.response.body', 'body': body})


class Front:
    """The ASGI application Hypercorn serves: the guards above, then the
    WSGI app through one of two a2wsgi thread pools."""

    def __init__(self, wsgi_app: Any, threads: int = 8,
                 image_threads: int = 8, send_timeout: float = 60.0,
                 max_header_size: int = 8192, downloads_per_client: int = 4,
                 max_downloads: int = 512, min_download_rate: int = 0,
                 download_grace: float = 20.0) -> None:
        # a2wsgi's and Hypercorn's typed scopes describe the same ASGI
        # dictionaries this class passes on.
        self.scripts: Any = WSGIMiddleware(wsgi_app, workers=threads)
        self.images: Any = WSGIMiddleware(wsgi_app,
                                          workers=image_threads)
        self.send_timeout = send_timeout
        self.max_header_size = max_header_size
        self.downloads = Slots(downloads_per_client, max_downloads)
        self.min_download_rate = min_download_rate
        self.download_grace = download_grace
        self.cuts = 0  # connections cut since the start (in the log)
        # addresses whose download was cut: no new one until then
        self.cut_until: dict[str, float] = {}

    def _cut(self, deadline: pacing.SendDeadline, why: str) -> None:
        """One cut: logged once, counted, and, for a download, its
        address kept from taking a place again for download_grace."""
        self.cuts += 1
        LOG.warning('%s to %s cut: %s (%d cut since the start)',
                    deadline.what, deadline.client, why, self.cuts)
        if deadline.pace is None:
            return
        now = asyncio.get_running_loop().time()
        if len(self.cut_until) >= 4 * self.downloads.total:
            self.cut_until = {k: v for k, v in self.cut_until.items()
                              if v > now}
        self.cut_until[deadline.client] = now + self.download_grace

    def _waits(self, client: str) -> float:
        """Seconds ``client`` must still wait after a cut download."""
        until = self.cut_until.get(client)
        if until is None:
            return 0.0
        left = until - asyncio.get_running_loop().time()
        if left <= 0:
            del self.cut_until[client]
        return max(0.0, left)

    async def __call__(self, scope: dict[str, Any], receive: Any,
                       send: Send) -> None:
        if scope['type'] != 'http':  # lifespan; a2wsgi closes websockets
            await self.scripts(scope, receive, send)
            return
        # h11 limits a head that arrives in pieces; one that arrives in
        # one read is measured here (names, values and ": \r\n").
        size = sum(len(k) + len(v) + 4 for k, v in scope['headers'])
        if size > self.max_header_size:
            await _answer(send, 431, 'request header fields too large\n')
            return
        headers = dict(scope['headers'])
        length = headers.get(b'content-length', b'0').strip()
        if b'transfer-encoding' in headers or length not in (b'', b'0'):
            await _answer(send, 413, 'request bodies are not accepted\n')
            return
        client = (scope.get('client') or ('-',))[0]
        what = (f'{printable(scope["method"], 10)} '
                f'{printable(scope["path"], 100)}')
        deadline = pacing.SendDeadline(send, self.send_timeout, client, what,
                                 self._cut)
        if not is_download(scope['path']):
            await self.scripts(scope, receive, deadline)
            return
        wait = self._waits(client)
        if wait:
            await _answer(send, 429, f'a download from this address was '
                          f'cut for being too slow; retry in '
                          f'{wait + 1:.0f} s\n')
            return
        if self.min_download_rate:
            deadline.pace = pacing.Pace(self.min_download_rate,
                                  self.download_grace)
        refused = self.downloads.take(client)
        if refused == Slots.PER_CLIENT:
            await _answer(send, 429, 'too many downloads from this address '
                          'under way\n')
            return
        if refused:
            LOG.warning('download refused to %s: max_downloads (%d) under '
                        'way', client, self.downloads.total)
            await _answer(send, 503, 'too many downloads under way\n')
            return
        try:
            await self.images(scope, receive, _FileSender(
                deadline, head=scope['method'] == 'HEAD'))
        finally:
            self.downloads.give(client)


def make_config(group: Any) -> Any:
    """Hypercorn's configuration from a [bootserver] option group."""
    from hypercorn.config import Config

    config = Config()
    host = f'[{group.host}]' if ':' in group.host else group.host
    config.bind = [f'{host}:{group.port}']
    config.keep_alive_timeout = group.header_timeout
    config.ssl_handshake_timeout = group.header_timeout
    config.h11_max_incomplete_size = group.max_header_size
    config.h2_max_header_list_size = group.max_header_size
    config.backlog = 1024
    config.graceful_timeout = 5
    config.include_server_header = False
    config.accesslog = None
    config.errorlog = logging.getLogger('hypercorn.error')
    if group.cert_file:
        config.certfile, config.keyfile = group.cert_file, group.key_file
        config.ciphers = CIPHERS
        config.alpn_protocols = ['http/1.1']  # iPXE speaks HTTP/1.1
    return config


def serve(wsgi_app: Any, group: Any,
          shutdown: Callable[[], Awaitable[Any]] | None = None) -> None:
    """Serve until SIGTERM or SIGINT (or ``shutdown`` returns): HTTP, and
    TFTP when [bootserver] tftp_port is set (hwbus.bootserver.tftp)."""
    from hypercorn.asyncio import serve as hypercorn_serve

    from hwbus.bootserver import tftp

    front: Any = Front(wsgi_app, group.threads, group.image_threads,
                       group.send_timeout, group.max_header_size,
                       group.downloads_per_client, group.max_downloads,
                       group.min_download_rate, group.download_grace)

    async def both() -> None:
        udp = None
        if group.tftp_port:
            udp = await tftp.start(wsgi_app, FILE_HEADER.decode(), group)
        try:
            await hypercorn_serve(front, make_config(group),
                                  shutdown_trigger=shutdown, mode='asgi')
        finally:
            if udp is not None:
                udp.close()

    asyncio.run(both())
