"""What the AMQP client makes of a delivery, whatever its bytes hold.

Anyone with a per-boot credential chooses every byte of a message's
properties and body, and py-amqp and kombu transform some of them before
hwbus sees anything:

* py-amqp decodes properties strictly: invalid UTF-8 in a short string, a
  table timestamp beyond ``datetime``'s range (2**63), an unknown field
  type or a truncated table raise inside ``drain_events``. The connection
  drops, the broker redelivers the message to the next connection, and
  one message stops intake until its delivery limit.
* py-amqp turns the body into text when ``content_encoding`` names a text
  codec (``auto_decode``), and hands an empty body over as ``''``.
* kombu's Message decompresses the body when a ``compression`` header is
  present, before any size check: a bzip2 bomb would inflate in memory.

``harden()`` makes property decoding total (a field that cannot be
decoded is recorded under ``UNDECODABLE`` and the message still arrives,
to be dead-lettered by the pipeline); ``prepare()`` sets a channel up so
that the body stays the exact wire bytes. Both the consumer and the
dead-letter tools use them, so every message that can be in either queue
can be read.
"""

from __future__ import annotations

import hashlib
from struct import error as StructError
from struct import unpack_from
from typing import Any

import amqp
import kombu.message
from amqp import serialization
from kombu.transport import pyamqp

from hwbus.text import escape

# Key in a message's properties naming the fields that could not be
# decoded (set only by the lenient decoder).
UNDECODABLE = 'x-hwbus-undecodable'
# The AMQP basic properties in wire order: flag bit, name, type.
_BASIC = [(15 - i, name, kind) for i, (name, kind) in
          enumerate(amqp.basic_message.Message.PROPERTIES)]
_strict = serialization.decode_properties_basic


def _lenient(buf: bytes, offset: int) -> tuple[dict[str, Any], int]:
    """Decode field by field; keep what decodes, name what does not.

    Short strings that are not UTF-8 are kept with the bad bytes escaped
    (they can never match what hwbus expects, so the message is refused
    for what it is); a table that does not decode is skipped by its
    length. Fixed-size fields cannot fail but for truncation.
    """
    props: dict[str, Any] = {}
    bad: list[str] = []
    try:
        flags, = unpack_from('>H', buf, offset)
        offset += 2
        for bit, name, kind in _BASIC:
            if not flags & (1 << bit):
                continue
            if kind == 's':
                size, = unpack_from('>B', buf, offset)
                raw = bytes(buf[offset + 1:offset + 1 + size])
                offset += 1 + size
                try:
                    props[name] = raw.decode('utf-8')
                except UnicodeDecodeError:
                    props[name] = raw.decode('utf-8', 'backslashreplace')
                    bad.append(name)
            elif kind == 'F':
                size, = unpack_from('>I', buf, offset)
                try:
                    (props[name],), _ = serialization.loads('F', buf, offset)
                except Exception:  # any way a table can be bad
                    bad.append(name)
                offset += 4 + size
            elif kind == 'o':
                props[name], = unpack_from('>B', buf, offset)
                offset += 1
            else:  # 'L': timestamp, a plain unsigned integer here
                props[name], = unpack_from('>Q', buf, offset)
                offset += 8
    except StructError:
        bad.append('truncated')
    props[UNDECODABLE] = ', '.join(bad) or 'properties'
    return props, offset


def decode_properties(buf: bytes, offset: int) -> tuple[dict[str, Any], int]:
    """py-amqp's decoder, falling back to the lenient one when it raises."""
    try:
        return _strict(buf, offset)
    except Exception:  # whatever it is, the message arrives
        return _lenient(buf, offset)


def harden() -> None:
    """Install the total property decoder in py-amqp (idempotent)."""
    classes = serialization.PROPERTY_CLASSES
    classes[amqp.spec.Basic.CLASS_ID] = decode_properties


def body_of(message: Any) -> bytes:
    """The exact wire body: py-amqp hands an empty one over as ``''``."""
    body = message.body
    if isinstance(body, bytes):
        return body
    if isinstance(body, bytearray | memoryview):
        return bytes(body)
    if isinstance(body, str):  # only '' with auto_decode off
        return body.encode('utf-8', 'surrogateescape')
    return b''


class Delivery(pyamqp.Message):
    """kombu's message, minus what it would do to the body.

    kombu decompresses a body whose headers name a ``compression`` and
    re-encodes text bodies; here the sender chooses both, so the body is
    kept exactly as it came off the wire.
    """

    def __init__(self, msg: Any, channel: Any = None, **kwargs: Any) -> None:
        props = msg.properties
        kombu.message.Message.__init__(
            self, body=body_of(msg), channel=channel,
            delivery_tag=msg.delivery_tag,
            content_type=props.get('content_type'),
            content_encoding=props.get('content_encoding'),
            delivery_info=msg.delivery_info, properties=props, **kwargs)
        headers = props.get('application_headers')
        self.headers = headers if isinstance(headers, dict) else {}


def prepare(channel: Any) -> Any:
    """Keep bodies as wire bytes on this channel (consumer or basic_get)."""
    harden()
    channel.auto_decode = False
    channel.Message = Delivery
    return channel


# Headers the dead-letter copy keeps verbatim (the envelope needs them
# for a replay) when they are short text.
_ENVELOPE_HEADERS = ('x-hwbus-boot-id', 'x-hwbus-signature')
# What the copy may carry of the sender's headers, as encoded: the copy
# must fit one header frame (RabbitMQ's frame_max, 128 KiB by default)
# with the consumer's own headers, and escaping makes text longer (a
# line separator's 3 bytes become 6 characters, a control byte 4), so
# every name, every value and the table are bounded after escaping.
HEADER_BYTES = 16 * 1024
NAME_BYTES = 128     # field names are AMQP short strings (255 bytes)
VALUE_BYTES = 1024


def fit(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` bytes of UTF-8, whole characters
    only (escaped text holds no lone surrogate)."""
    data = text.encode()
    return text if len(data) <= limit else \
        data[:limit].decode(errors='ignore')


def _value(name: str, value: Any) -> Any:
    """A header value that can be encoded again, bounded."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int) and -2**63 <= value < 2**63:
        return value
    if isinstance(value, str) and len(value) <= 1024:
        if name in _ENVELOPE_HEADERS and len(value.encode()) <= VALUE_BYTES:
            return value
        return fit(escape(value), VALUE_BYTES)
    return fit(escape(value, 200), VALUE_BYTES)


def _cost(name: str, value: Any) -> int:
    """Bytes of one table field as AMQP encodes it (at most)."""
    size = 1 + len(name.encode()) + 1
    return size + (4 + len(value.encode()) if isinstance(value, str) else 8)


def safe_headers(headers: Any, limit: int = 32) -> dict[str, Any]:
    """Headers that can be published again whatever the original held.

    py-amqp decodes table values it cannot encode back (decimals with a
    large exponent, keys that are not UTF-8, nested tables): the copy
    keeps short strings, integers, booleans and None, and shows anything
    else as escaped text. At most ``limit`` headers of the original; each
    name within NAME_BYTES and value within VALUE_BYTES, and all of them
    within HEADER_BYTES, once escaped: a copy that did not fit a frame
    cost the consumer its connection, and a name past 255 bytes could not
    be encoded at all (docs/security.md, sixth attacker). The envelope's
    headers come first, so that noise never crowds out what a replay
    needs.
    """
    if not isinstance(headers, dict):
        return {}
    items = [(fit(escape(key, 120), NAME_BYTES), value)
             for key, value in list(headers.items())[:limit]]
    items.sort(key=lambda item: item[0] not in _ENVELOPE_HEADERS)
    safe: dict[str, Any] = {}
    budget = HEADER_BYTES
    for name, value in items:
        if name.startswith('x-hwbus-') and name not in _ENVELOPE_HEADERS:
            continue  # the consumer writes its own; never trust a copy
        value = _value(name, value)
        cost = _cost(name, value)
        if cost <= budget:
            safe[name] = value
            budget -= cost
    return safe


def digest(body: bytes) -> str:
    """What a dead letter keeps of a body too large to keep."""
    return 'sha256:' + hashlib.sha256(body).hexdigest()


def raw_properties(message: Any) -> dict[str, Any]:
    """The properties py-amqp decoded, or nothing when it has none."""
    props = getattr(message, 'properties', None)
    return props if isinstance(props, dict) else {}


def short_text(value: Any, limit: int = 255) -> str:
    """A property value as a short string an AMQP client can send."""
    return value[:limit] if isinstance(value, str) else ''


def timestamp(value: Any) -> int | None:
    """A timestamp property that can be encoded again, or None."""
    return value if isinstance(value, int) and 0 <= value < 2**63 else None


def message_properties(message: Any) -> dict[str, Any]:
    """The AMQP properties the envelope checks, as a plain mapping.

    Works for kombu messages and for py-amqp ``basic_get`` ones alike:
    both keep the wire properties in ``message.properties``. Total: a
    message whose properties did not decode carries ``undecodable``; the
    routing key (the broker's word on the sender) comes along.
    """
    props = raw_properties(message)
    headers = props.get('application_headers')
    return {'content_type': props.get('content_type'),
            'content_encoding': props.get('content_encoding'),
            'user_id': props.get('user_id'),
            'message_id': props.get('message_id'),
            'timestamp': props.get('timestamp'),
            'undecodable': props.get(UNDECODABLE),
            'routing_key': (getattr(message, 'delivery_info', None)
                            or {}).get('routing_key'),
            # The broker's word, never the sender's: this delivery is a
            # second one of a message it handed out before.
            'redelivered': (getattr(message, 'delivery_info', None)
                            or {}).get('redelivered') is True,
            'headers': dict(headers) if isinstance(headers, dict) else {}}
