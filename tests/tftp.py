"""A TFTP client for tests, written from RFC 1350 and 2347-2349 (not
from the server's code): a well-behaved reader, and raw packets for a
hostile one."""

from __future__ import annotations

import socket
import struct

RRQ, WRQ, DATA, ACK, ERROR, OACK = 1, 2, 3, 4, 5, 6


class TftpError(Exception):
    def __init__(self, code: int, text: str) -> None:
        super().__init__(f'TFTP error {code}: {text}')
        self.code, self.text = code, text


def rrq(name: str | bytes, mode: bytes = b'octet',
        options: dict[str, str] | None = None) -> bytes:
    raw = name.encode() if isinstance(name, str) else name
    packet = struct.pack('!H', RRQ) + raw + b'\0' + mode + b'\0'
    for key, value in (options or {}).items():
        packet += key.encode() + b'\0' + value.encode() + b'\0'
    return packet


def ack(block: int) -> bytes:
    return struct.pack('!HH', ACK, block & 0xffff)


class Client:
    """One client address; each ``get`` from a new port, as GRUB does."""

    def __init__(self, port: int, source: str = '127.0.0.1',
                 server: str = '127.0.0.1', timeout: float = 3.0) -> None:
        self.port, self.source, self.server = port, source, server
        self.timeout = timeout

    def socket(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((self.source, 0))
        sock.settimeout(self.timeout)
        return sock

    def get(self, name: str | bytes, blksize: int | None = 1024,
            tsize: bool = True) -> bytes:
        """The file, read as GRUB reads it (blksize 1024, tsize)."""
        options = {}
        if blksize:
            options['blksize'] = str(blksize)
        if tsize:
            options['tsize'] = '0'
        sock = self.socket()
        try:
            request = rrq(name, options=options)
            sock.sendto(request, (self.server, self.port))
            size, data, want, peer = 512, bytearray(), 1, None
            tries = 0
            while True:
                try:
                    packet, addr = sock.recvfrom(70000)
                except TimeoutError:  # as loaders do: ask again, twice
                    tries += 1
                    if peer is not None or tries > 2:
                        raise
                    sock.sendto(request, (self.server, self.port))
                    continue
                peer = peer or addr
                assert addr == peer, 'answer from another port'
                opcode = struct.unpack('!H', packet[:2])[0]
                if opcode == ERROR:
                    code = struct.unpack('!H', packet[2:4])[0]
                    raise TftpError(code, packet[4:].rstrip(b'\0').decode())
                if opcode == OACK:
                    fields = packet[2:].split(b'\0')[:-1]
                    agreed = dict(zip(fields[::2], fields[1::2],
                                      strict=True))
                    size = int(agreed.get(b'blksize', 512))
                    sock.sendto(ack(0), peer)
                    continue
                assert opcode == DATA, packet[:4]
                block = struct.unpack('!H', packet[2:4])[0]
                if block == want & 0xffff:
                    data += packet[4:]
                    want += 1
                sock.sendto(ack(block), peer)
                if block == (want - 1) & 0xffff and len(packet) - 4 < size:
                    return bytes(data)
        finally:
            sock.close()
