"""How the boot server holds a response to its pace, and cuts it.

A client that stops reading (``send_timeout``) or reads a download more
slowly than ``min_download_rate`` after ``download_grace`` is cut: its
connection reset, the rest of the response dropped (docs/bootserver.md
and hwbus.bootserver.server, which uses these). Measured by what the
client acknowledged, not what was handed to the kernel, so a send
buffer the kernel grew gives no credit.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import socket
import struct
import termios
from collections.abc import Awaitable, Callable
from typing import Any

LOG = logging.getLogger(__name__)

Send = Callable[[dict[str, Any]], Awaitable[None]]


class Connection:
    """The TCP connection under an ASGI ``send`` of Hypercorn's: how
    much of what was given to it the client has not acknowledged yet,
    and a way to reset it.

    ASGI gives an application no handle on its connection, so this
    follows the bound methods Hypercorn passes down (the stream's
    ``app_send``, the protocol's ``stream_send``, the TCP server's
    ``protocol_send``) to the server's ``StreamWriter``. When that
    changes in another Hypercorn, ``of()`` returns None and downloads
    are measured by the writes that completed and ended by a close, as
    before (tests/attack/test_bootserver.py notices: it checks the
    server's side of a cut connection is gone)."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer

    @classmethod
    def of(cls, send: Any) -> Connection | None:
        for _ in range(6):
            owner = getattr(send, '__self__', None)
            if owner is None:
                return None
            writer = getattr(owner, 'writer', None)
            if isinstance(writer, asyncio.StreamWriter):
                return cls(writer)
            send = getattr(owner, 'send', None)
        return None

    def unsent(self) -> int:
        """Bytes given to the connection the client has not acknowledged:
        asyncio's buffer and the kernel's send queue (TLS records count
        a few bytes more than the data they carry)."""
        queued = self.writer.transport.get_write_buffer_size()
        sock = self.writer.get_extra_info('socket')
        if sock is not None:
            try:
                out = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ,
                                  b'\0\0\0\0')
                queued += struct.unpack('i', out)[0]
            except OSError:
                pass
        return queued

    def reset(self) -> None:
        """End the connection at once and drop what it still holds: an
        RST instead of a FIN behind megabytes nobody reads."""
        sock = self.writer.get_extra_info('socket')
        if sock is not None:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                struct.pack('ii', 1, 0))
            except OSError:
                pass
        self.writer.transport.abort()


class Pace:
    """The minimum rate of a download: at ``t`` seconds from its start
    it must have delivered ``rate * (t - grace)`` bytes. Measured from
    the start, a fast beginning earns a later stall (a firmware pausing
    for its disk), while holding a place for t seconds always costs
    about rate * t bytes, however they are spread."""

    def __init__(self, rate: int, grace: float) -> None:
        self.rate, self.grace = rate, grace
        self.start: float | None = None

    def behind(self, delivered: int, now: float) -> str | None:
        """Why the download is cut now, None while it keeps up."""
        if self.start is None:
            self.start = now
        elapsed = now - self.start
        if self.rate <= 0 or elapsed <= self.grace:
            return None
        if delivered >= self.rate * (elapsed - self.grace):
            return None
        return (f'{delivered} bytes delivered in {elapsed:.1f} s, under '
                f'min_download_rate {self.rate} B/s after download_grace '
                f'{self.grace:.0f} s')


class SendDeadline:
    """An ASGI ``send`` that cuts a client that stops reading, or, with a
    ``pace``, reads a download too slowly.

    The connection is reset (``Connection.reset``) and every later
    message dropped: the WSGI thread then runs through the rest of its
    response at once and is free, and Hypercorn finds the connection
    gone. One log line per cut, through ``on_cut`` when given (the
    front counts cuts and keeps the address from taking a download
    place again at once)."""

    def __init__(self, send: Send, timeout: float, client: str,
                 what: str = 'response',
                 on_cut: Callable[[SendDeadline, str], None] | None = None
                 ) -> None:
        self.send, self.timeout, self.client = send, timeout, client
        self.what, self.on_cut = what, on_cut
        self.abandoned = False
        self.pace: Pace | None = None
        self.connection = Connection.of(send)
        self.given = 0  # body bytes handed to Hypercorn
        self.written = 0  # of those, in sends that completed

    def delivered(self) -> int:
        """Body bytes the client acknowledged (about: headers, which it
        got first, are not counted)."""
        if self.connection is None:
            return self.written
        return max(0, self.given - self.connection.unsent())

    async def __call__(self, message: dict[str, Any]) -> None:
        if self.abandoned:
            return
        if message['type'] == 'http.response.start':
            message = {**message, 'headers': [
                (title_case(k), v) for k, v in message['headers']]}
        loop = asyncio.get_running_loop()
        if self.pace is not None:
            why = self.pace.behind(self.delivered(), loop.time())
            if why:
                self.cut(why)
                return
        size = len(message.get('body', b''))
        self.given += size
        sending = asyncio.ensure_future(self.send(message))
        started, tick = loop.time(), min(1.0, self.timeout)
        try:
            while not (await asyncio.wait({sending}, timeout=tick))[0]:
                now = loop.time()
                why = None
                if now - started >= self.timeout:
                    why = (f'the client accepted nothing for '
                           f'{self.timeout:.0f} s (send_timeout)')
                elif self.pace is not None:
                    why = self.pace.behind(self.delivered(), now)
                if why:
                    sending.cancel()
                    self.cut(why)
                    await asyncio.gather(sending, return_exceptions=True)
                    return
        except asyncio.CancelledError:  # the server stops
            sending.cancel()
            raise
        sending.result()
        self.written += size

    def cut(self, why: str) -> None:
        """Reset the connection and drop the rest of the response."""
        if self.abandoned:
            return
        self.abandoned = True
        if self.connection is not None:
            self.connection.reset()
        if self.on_cut is not None:
            self.on_cut(self, why)
        else:
            LOG.warning('%s to %s cut: %s', self.what, self.client, why)


def title_case(name: bytes) -> bytes:
    """``Content-Length`` for ASGI's ``content-length``: GRUB's HTTP
    client (2.06) matches header names case-sensitively and, not finding
    the length, loses the whole response. h11 sends names as given."""
    return b'-'.join(part.capitalize() for part in name.split(b'-'))
