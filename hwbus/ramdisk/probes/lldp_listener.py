"""Listening for LLDP on every port at once, for a bounded time.

One AF_PACKET socket per port, all polled together: a 48-port machine
costs one timeout, not 48. Each socket joins the LLDP multicast group
rather than switching the port to promiscuous mode, and the membership
ends when the socket closes.
"""

from __future__ import annotations

import logging
import select
import socket
import struct
import time

LOG = logging.getLogger(__name__)

ETH_P_LLDP = 0x88CC
LLDP_MULTICAST = bytes.fromhex('0180c200000e')
# From linux/if_packet.h.
_SOL_PACKET = 263
_PACKET_ADD_MEMBERSHIP = 1
_PACKET_MR_MULTICAST = 0
_ETH_HEADER = 14
# A frame carries at most this much; LLDPDUs are far smaller.
_MAX_FRAME = 9216


def parse_tlvs(payload: bytes) -> list[list]:
    """[[type, hex value], ...] up to the End TLV; truncation stops early."""
    tlvs, offset = [], 0
    while offset + 2 <= len(payload):
        header = struct.unpack_from('!H', payload, offset)[0]
        kind, length = header >> 9, header & 0x1FF
        offset += 2
        if kind == 0:
            break
        value = payload[offset:offset + length]
        if len(value) < length:
            break
        tlvs.append([kind, value.hex()])
        offset += length
    return tlvs


def _open(name: str) -> socket.socket | None:
    try:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW,
                             socket.htons(ETH_P_LLDP))
    except OSError as exc:
        LOG.warning('LLDP: cannot open a packet socket: %s', exc)
        return None
    try:
        sock.bind((name, ETH_P_LLDP))
        ifindex = socket.if_nametoindex(name)
        mreq = struct.pack('iHH8s', ifindex, _PACKET_MR_MULTICAST,
                           len(LLDP_MULTICAST), LLDP_MULTICAST)
        sock.setsockopt(_SOL_PACKET, _PACKET_ADD_MEMBERSHIP, mreq)
        sock.setblocking(False)
    except OSError as exc:
        LOG.info('LLDP: not listening on %s: %s', name, exc)
        sock.close()
        return None
    return sock


def listen(names: list[str], timeout: float) -> dict[str, list[list]]:
    """The first LLDPDU seen on each port within timeout seconds.

    Returns early once every port has answered. Ports that cannot be
    listened on (down, gone, no permission) are skipped, not fatal.
    """
    sockets = {}
    for name in names:
        sock = _open(name)
        if sock is not None:
            sockets[sock] = name
    found: dict[str, list[list]] = {}
    deadline = time.monotonic() + timeout
    try:
        while sockets:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            ready, _, _ = select.select(list(sockets), [], [], remaining)
            for sock in ready:
                try:
                    frame = sock.recv(_MAX_FRAME)
                except OSError:
                    continue
                if len(frame) <= _ETH_HEADER or \
                        frame[12:14] != struct.pack('!H', ETH_P_LLDP):
                    continue
                tlvs = parse_tlvs(frame[_ETH_HEADER:])
                if tlvs:
                    found[sockets.pop(sock)] = tlvs
                    sock.close()
    finally:
        for sock in sockets:
            sock.close()
    return found
