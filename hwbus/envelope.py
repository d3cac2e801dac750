"""The signed message between the ramdisk and the consumer.

The body is canonical JSON (UTF-8, sorted keys, no insignificant white
space) of ``{version, boot_id, collected_at, nonce, inventory,
plugin_data}`` and, for a failed collection, ``error``, and, when the
ramdisk minted secrets, ``sealed`` ({purpose: blob}, hwbus.sealing); it
may be gzipped.
The Ed25519 signature covers the exact bytes on the wire, so the consumer
checks it *before* decompressing or parsing anything: an unauthenticated
sender cannot make it inflate a compression bomb or walk a hostile JSON
tree.

``seal()`` runs in the ramdisk (standard library and cryptography only);
``open()`` runs in the consumer and raises a ``PermanentError`` subclass
naming the reason for every way a message can be wrong. Properties are a
plain mapping with AMQP property names, so pika and kombu both fit.
"""

from __future__ import annotations

import binascii
import dataclasses
import json
import re
import time
import uuid
import zlib
from collections.abc import Callable, Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from hwbus import keys, sealing
from hwbus.errors import PermanentError

VERSION = 1
CONTENT_TYPE = 'application/json'
MAX_SIZE = 1024 * 1024
HEADER_BOOT = 'x-hwbus-boot-id'
HEADER_SIGNATURE = 'x-hwbus-signature'
ENCODINGS = ('identity', 'gzip')
# Per-boot broker user names and boot ids: RabbitMQ puts {username} into
# topic-permission patterns unescaped, so only [a-z0-9-] is allowed.
NAME_RE = re.compile(r'^[a-z0-9][a-z0-9-]{0,63}$')
# Containers within containers, at most: a real inventory nests six deep;
# anything deeper is refused here rather than by Ironic.
MAX_DEPTH = 32
REQUIRED = ('version', 'boot_id', 'collected_at', 'nonce', 'inventory',
            'plugin_data')


class EnvelopeError(PermanentError):
    """A message that can never be accepted; subclasses say why."""

    reason = 'envelope'


class Oversize(EnvelopeError):
    reason = 'oversize'


class BadProperties(EnvelopeError):
    reason = 'bad-properties'


class Undecodable(EnvelopeError):
    """The AMQP client could not decode some property (see
    hwbus.consumer.wire); the message is refused for that alone."""

    reason = 'undecodable-properties'


class Empty(EnvelopeError):
    reason = 'empty'


class BadEncoding(EnvelopeError):
    reason = 'bad-encoding'


class BadSignature(EnvelopeError):
    reason = 'bad-signature'


class Malformed(EnvelopeError):
    reason = 'malformed'


class NotCanonical(EnvelopeError):
    reason = 'not-canonical'


class BadVersion(EnvelopeError):
    reason = 'bad-version'


class BootMismatch(EnvelopeError):
    reason = 'boot-mismatch'


def canonical(document: Any) -> bytes:
    """The one byte string a document signs as (RFC 8785-like for our data)."""
    return json.dumps(document, sort_keys=True, separators=(',', ':'),
                      ensure_ascii=False, allow_nan=False).encode('utf-8')


@dataclasses.dataclass(frozen=True)
class Sealed:
    """A message ready to publish: the wire body and its AMQP properties."""

    body: bytes
    properties: dict[str, Any]
    routing_key: str

    @property
    def message_id(self) -> str:
        return self.properties['message_id']


def seal(*, boot_id: str, user: str, key: ed25519.Ed25519PrivateKey,
         inventory: Mapping[str, Any], plugin_data: Mapping[str, Any],
         error: Mapping[str, Any] | None = None, compress: bool = True,
         max_size: int = MAX_SIZE, now: float | None = None,
         sealed: Mapping[str, Any] | None = None) -> Sealed:
    """Sign a document for the per-boot ``user``.

    :raises Oversize: the canonical body exceeds max_size; the caller
        should send less (the ramdisk then sends an error report).
    """
    now = time.time() if now is None else now
    document: dict[str, Any] = {
        'version': VERSION,
        'boot_id': boot_id,
        'collected_at': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(now)),
        'nonce': uuid.uuid4().hex,
        'inventory': inventory,
        'plugin_data': plugin_data,
    }
    if error is not None:
        document['error'] = dict(error)
    if sealed:
        document['sealed'] = dict(sealed)
    body = canonical(document)
    if len(body) > max_size:
        raise Oversize(f'the document has {len(body)} bytes, more than the '
                       f'limit of {max_size}')
    encoding = 'identity'
    if compress:
        packer = zlib.compressobj(6, zlib.DEFLATED, 31)  # gzip, mtime 0
        body = packer.compress(body) + packer.flush()
        encoding = 'gzip'
    signature = keys.b64encode(key.sign(body))
    properties = {
        'content_type': CONTENT_TYPE,
        'content_encoding': encoding,
        'message_id': str(uuid.uuid4()),
        'user_id': user,
        'timestamp': int(now),
        'delivery_mode': 2,
        'headers': {HEADER_BOOT: boot_id, HEADER_SIGNATURE: signature},
    }
    return Sealed(body, properties, routing_key(user))


def routing_key(user: str) -> str:
    """The only routing key the broker lets ``user`` publish with."""
    return f'inventory.{user}'


@dataclasses.dataclass(frozen=True)
class Header:
    """What the properties claim, checked for form but not yet trusted."""

    user_id: str
    boot_id: str
    message_id: str
    encoding: str
    signature: bytes


@dataclasses.dataclass(frozen=True)
class Opened:
    """A verified message. ``document`` is the parsed body."""

    header: Header
    document: dict[str, Any]
    body: bytes

    @property
    def inventory(self) -> dict[str, Any]:
        return self.document['inventory']

    @property
    def plugin_data(self) -> dict[str, Any]:
        return self.document['plugin_data']

    @property
    def error(self) -> dict[str, Any] | None:
        return self.document.get('error')

    @property
    def sealed(self) -> dict[str, Any]:
        """{purpose: blob}: secrets only the consumer's key opens."""
        return self.document.get('sealed') or {}


def read_header(properties: Mapping[str, Any]) -> Header:
    """Check the properties' form; nothing here is trusted yet."""
    if properties.get('undecodable'):
        raise Undecodable(f'properties that do not decode: '
                          f'{properties["undecodable"]}')
    content_type = properties.get('content_type')
    if content_type != CONTENT_TYPE:
        raise BadProperties(f'content_type is {content_type!r}, not '
                            f'{CONTENT_TYPE!r}')
    encoding = properties.get('content_encoding') or 'identity'
    if encoding not in ENCODINGS:
        raise BadEncoding(f'content_encoding {encoding!r} is not one of '
                          f'{", ".join(ENCODINGS)}')
    user_id = properties.get('user_id')
    if not isinstance(user_id, str) or not NAME_RE.match(user_id):
        raise BadProperties('user_id is missing or not a per-boot user name')
    message_id = properties.get('message_id')
    if not isinstance(message_id, str) or not 0 < len(message_id) <= 128:
        raise BadProperties('message_id is missing')
    headers = properties.get('headers') or {}
    if not isinstance(headers, Mapping):
        raise BadProperties('headers are not a table')
    boot_id = _text(headers.get(HEADER_BOOT))
    if boot_id is None or not NAME_RE.match(boot_id):
        raise BadProperties(f'{HEADER_BOOT} is missing or malformed')
    signature_text = _text(headers.get(HEADER_SIGNATURE))
    if signature_text is None or len(signature_text) > 128:
        raise BadSignature(f'{HEADER_SIGNATURE} is missing')
    try:
        signature = keys.b64decode(signature_text)
    except (keys.BadKey, binascii.Error) as exc:
        raise BadSignature('the signature is not base64') from exc
    if len(signature) != 64:
        raise BadSignature('an Ed25519 signature has 64 bytes')
    return Header(user_id, boot_id, message_id, encoding, signature)


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):  # AMQP long strings may arrive as bytes
        try:
            value = value.decode('ascii')
        except UnicodeDecodeError:
            return None
    return value if isinstance(value, str) else None


def verify(header: Header, body: bytes, public_key: bytes) -> None:
    """Raise BadSignature unless the body was signed by this boot's key."""
    try:
        keys.public_key(public_key).verify(header.signature, body)
    except (InvalidSignature, keys.BadKey) as exc:
        raise BadSignature(f'the signature of message {header.message_id} '
                           f'does not match the key of boot '
                           f'{header.boot_id}') from exc


def decode(header: Header, body: bytes,
           max_size: int = MAX_SIZE) -> dict[str, Any]:
    """Decompress (bounded), parse and check the body's structure."""
    raw = inflate(body, max_size) if header.encoding == 'gzip' else body
    if len(raw) > max_size:
        raise Oversize(f'the body has {len(raw)} bytes, more than {max_size}')
    # One pass of the C parser for a good body: duplicate keys need a
    # Python hook on every object, and a body that has them cannot be
    # canonical (the re-encoding has each key once), so they are looked
    # for only when a body fails, to name its fault as before.
    try:
        text = raw.decode('utf-8')
        document = json.loads(text, parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise Malformed(f'the body is not UTF-8 JSON: {_short(exc)}') from exc
    if not isinstance(document, dict):
        _refuse_duplicates(text)
        raise Malformed('the body is not a JSON object')
    # Before re-encoding, which recurses: a body the C parser could still
    # nest (just under the interpreter's limit) would overflow it.
    if not _shallow(document, MAX_DEPTH):
        raise Malformed(f'the document nests deeper than {MAX_DEPTH} '
                        f'levels')
    try:
        again = canonical(document)
    except (ValueError, RecursionError) as exc:
        # JSON that parses but has no canonical form: a number beyond a
        # double (1e400 parses as infinity) or a lone surrogate escape.
        _refuse_duplicates(text)
        raise NotCanonical(f'the body has no canonical form: '
                           f'{_short(exc)}') from exc
    if again != raw:
        _refuse_duplicates(text)
        raise NotCanonical('the body is not canonical JSON')
    missing = [k for k in REQUIRED if k not in document]
    if missing:
        raise Malformed(f'the body lacks {", ".join(missing)}')
    # Exactly the integer 1: True and 1.0 compare equal to it in Python.
    if type(document['version']) is not int or \
            document['version'] != VERSION:
        raise BadVersion(f'version {document["version"]!r} is not '
                         f'{VERSION}')
    if document['boot_id'] != header.boot_id:
        raise BootMismatch('the body names another boot than its header')
    for key, kind in (('collected_at', str), ('nonce', str),
                      ('inventory', dict), ('plugin_data', dict)):
        if not isinstance(document[key], kind):
            raise Malformed(f'{key} is not a {kind.__name__}')
    if not isinstance(document.get('error', {}), dict):
        raise Malformed('error is not an object')
    extra = set(document) - set(REQUIRED) - {'error', 'sealed'}
    if extra:
        raise Malformed(f'the body has unknown fields: '
                        f'{", ".join(sorted(extra)[:5])[:200]}')
    _check_sealed(document.get('sealed', {}))
    return document


def _check_sealed(sealed: Any) -> None:
    if not isinstance(sealed, dict):
        raise Malformed('sealed is not an object')
    for purpose, blob in sealed.items():
        if purpose not in sealing.PURPOSES:
            raise Malformed(f'sealed holds an unknown purpose '
                            f'{purpose[:40]!r}')
        why = sealing.check_form(blob)
        if why:
            raise Malformed(why)


def _refuse_duplicates(text: str) -> None:
    """Malformed if an object of ``text`` (which parsed) repeats a key."""
    try:
        json.loads(text, object_pairs_hook=_no_duplicates,
                   parse_constant=_no_constants)
    except (ValueError, RecursionError) as exc:
        raise Malformed(f'the body is not UTF-8 JSON: {_short(exc)}') from exc


def _shallow(document: Any, limit: int) -> bool:
    """No container nests deeper than ``limit`` (iterative, one level at
    a time: a hostile document cannot make this recurse). Parsed JSON
    holds only dict and list containers."""
    level = [document]
    depth = 1
    while level:
        if depth > limit:
            return False
        deeper = []
        for node in level:
            for child in (node.values() if type(node) is dict else node):
                if type(child) is dict or type(child) is list:
                    deeper.append(child)
        level = deeper
        depth += 1
    return True


def inflate(body: bytes, max_size: int) -> bytes:
    """Gunzip, stopping one byte past ``max_size`` (Oversize)."""
    inflater = zlib.decompressobj(31)
    try:
        raw = inflater.decompress(body, max_size + 1)
    except zlib.error as exc:
        raise BadEncoding(f'the body is not gzip: {_short(exc)}') from exc
    if len(raw) > max_size or inflater.unconsumed_tail:
        raise Oversize(f'the body inflates beyond {max_size} bytes')
    if not inflater.eof or inflater.unused_data:
        raise BadEncoding('the gzip stream is truncated or has trailing data')
    return raw


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError('duplicate keys')
    return result


def _no_constants(name: str) -> Any:
    raise ValueError(f'{name} is not JSON')


def _short(exc: BaseException) -> str:
    return str(exc)[:120] or type(exc).__name__


def open(body: bytes, properties: Mapping[str, Any],
         public_key_for: Callable[[Header], bytes],
         max_size: int = MAX_SIZE) -> Opened:
    """Everything the consumer must check before trusting a message.

    In order: wire size, properties, the sender's public key (looked up by
    the caller from ``user_id``; it raises its own PermanentError for an
    unknown, expired or revoked credential), the signature over the wire
    bytes, then decompression and structure.
    """
    if not isinstance(body, bytes | bytearray | memoryview):
        raise Malformed('the body is not bytes')
    body = bytes(body)
    if not body:
        raise Empty('the message has no body')
    if len(body) > max_size:
        raise Oversize(f'the message has {len(body)} bytes, more than '
                       f'{max_size}')
    header = read_header(properties)
    verify(header, body, public_key_for(header))
    return Opened(header, decode(header, body, max_size), body)
