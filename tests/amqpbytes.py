"""AMQP 0-9-1 basic properties as raw bytes, for hostile senders.

What a well-behaved client library would never encode: tables with
out-of-range timestamps or unknown field types, strings that are not
UTF-8. Used by the unit tests of hwbus.consumer.wire and, through the real
broker, by tests/functional/test_attacks.py.
"""

from __future__ import annotations

import struct

CONTENT_TYPE, CONTENT_ENCODING, HEADERS, DELIVERY_MODE = (
    0x8000, 0x4000, 0x2000, 0x1000)
MESSAGE_ID, TIMESTAMP, USER_ID = 0x0080, 0x0040, 0x0010


def shortstr(raw: bytes) -> bytes:
    return struct.pack('>B', len(raw)) + raw


def longstr(raw: bytes) -> bytes:
    return struct.pack('>I', len(raw)) + raw


def table(*items: bytes) -> bytes:
    """A field table from already encoded ``shortstr(key) + value`` items."""
    raw = b''.join(items)
    return struct.pack('>I', len(raw)) + raw


def text_item(key: str, value: str | bytes) -> bytes:
    value = value.encode() if isinstance(value, str) else value
    return shortstr(key.encode()) + b'S' + longstr(value)


def timestamp_item(key: str, value: int) -> bytes:
    return shortstr(key.encode()) + b'T' + struct.pack('>Q', value)


def properties(flags: int, *fields: bytes) -> bytes:
    """Flags, then each present field in wire order (the caller's)."""
    return struct.pack('>H', flags) + b''.join(fields)
