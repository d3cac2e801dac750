"""Secrets sealed by the ramdisk to the consumer.

The ramdisk mints secrets (today: the password of the BMC account it
creates) that the consumer must hand to Ironic. They travel inside the
signed document, but a signature only proves who wrote it: the broker,
the dead-letter queue, the archive and anyone holding a copy of a message
could read them. So each secret is encrypted to the consumer's X25519
public key, which the issuer writes on the kernel command line
(``hwbus.seal=``); only the consumer's private key opens it.

The construction is HPKE's base mode (RFC 9180) in spirit, built from
`cryptography` primitives because the ramdisk may use nothing else: a
fresh ephemeral X25519 key per secret, HKDF-SHA256 over the shared
secret with an ``info`` naming the suite, the purpose, the boot id, the
ephemeral and the recipient public keys, and ChaCha20-Poly1305 with the
derived key and nonce (safe to derive: the key is never used twice). The
boot id and purpose are in the key schedule and in the associated data,
so a blob copied into another boot's message, or into another field,
does not open. A blob is a small JSON object of base64url text::

    {"v": 1, "kid": KEY-ID, "enc": EPHEMERAL-PUBLIC, "ct": CIPHERTEXT}

``kid`` (the first 8 bytes of SHA-256 of the recipient's public key)
lets the consumer say "sealed to another key" and keep older keys
during a rotation. Nothing here ever puts the opened secret into an
exception message.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from hwbus import keys
from hwbus.errors import HwbusError, PermanentError

VERSION = 1
SUITE = b'hwbus-seal-v1 x25519 hkdf-sha256 chacha20poly1305'
PURPOSES = ('bmc',)
# A sealed secret is a password or a few of them, never more.
MAX_PLAINTEXT = 4096
_KEY_LEN, _NONCE_LEN, _TAG_LEN = 32, 12, 16
_FIELDS = {'v', 'kid', 'enc', 'ct'}


class SealError(PermanentError):
    """A sealed secret that cannot be opened; the message says why and
    never carries any part of the secret."""

    reason = 'sealed-secret'


class SealConfigError(HwbusError):
    """[sealing] names a key that cannot be used (raised at start-up)."""

    reason = 'sealing-config'


def new_private_key() -> x25519.X25519PrivateKey:
    return x25519.X25519PrivateKey.generate()


def public_bytes(key: x25519.X25519PrivateKey | x25519.X25519PublicKey
                 ) -> bytes:
    """The raw 32-byte public key (of a private key, or itself)."""
    if isinstance(key, x25519.X25519PrivateKey):
        key = key.public_key()
    return key.public_bytes(serialization.Encoding.Raw,
                            serialization.PublicFormat.Raw)


def key_id(public: bytes) -> str:
    return keys.b64encode(hashlib.sha256(public).digest()[:8])


def load_public(text: str) -> bytes:
    """A public key from its kernel-command-line form (base64url)."""
    try:
        raw = keys.b64decode(text)
    except keys.BadKey:
        raise SealError('the sealing public key is not base64') from None
    if len(raw) != 32:
        raise SealError(f'an X25519 public key has 32 bytes, not {len(raw)}')
    return raw


def private_pem(key: x25519.X25519PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def load_private_pem(data: bytes) -> x25519.X25519PrivateKey:
    """The consumer's key from a PKCS#8 PEM file (``hwbus-manage seal-key
    create`` writes one)."""
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise SealError(f'not an unencrypted PEM private key: '
                        f'{type(exc).__name__}') from None
    if not isinstance(key, x25519.X25519PrivateKey):
        raise SealError(f'the key is {type(key).__name__}, not X25519')
    return key


def _schedule(shared: bytes, *, enc: bytes, recipient: bytes, boot_id: str,
              purpose: str) -> tuple[bytes, bytes, bytes]:
    context = b'\0'.join([SUITE, purpose.encode(), boot_id.encode(), enc,
                          recipient])
    okm = HKDF(hashes.SHA256(), _KEY_LEN + _NONCE_LEN, salt=None,
               info=context).derive(shared)
    aad = b'\0'.join([SUITE, purpose.encode(), boot_id.encode()])
    return okm[:_KEY_LEN], okm[_KEY_LEN:], aad


def seal(recipient: bytes, plaintext: bytes, *, boot_id: str,
         purpose: str) -> dict[str, Any]:
    """Encrypt ``plaintext`` so that only ``recipient`` opens it, and
    only for this boot and purpose."""
    if purpose not in PURPOSES:
        raise ValueError(f'unknown purpose {purpose!r}')
    if len(plaintext) > MAX_PLAINTEXT:
        raise ValueError(f'a sealed secret has at most {MAX_PLAINTEXT} '
                         f'bytes')
    ephemeral = x25519.X25519PrivateKey.generate()
    enc = public_bytes(ephemeral)
    shared = ephemeral.exchange(
        x25519.X25519PublicKey.from_public_bytes(recipient))
    key, nonce, aad = _schedule(shared, enc=enc, recipient=recipient,
                                boot_id=boot_id, purpose=purpose)
    ciphertext = ChaCha20Poly1305(key).encrypt(nonce, plaintext, aad)
    return {'v': VERSION, 'kid': key_id(recipient),
            'enc': keys.b64encode(enc), 'ct': keys.b64encode(ciphertext)}


def check_form(blob: Any) -> str | None:
    """Why ``blob`` is not a sealed secret's shape, or None. Cheap and
    total: the consumer calls it on untrusted input before anything."""
    if not isinstance(blob, Mapping) or set(blob) != _FIELDS:
        return f'a sealed secret has exactly the fields {sorted(_FIELDS)}'
    if type(blob['v']) is not int or blob['v'] != VERSION:
        return f'sealed secret version is not {VERSION}'
    for field in ('kid', 'enc', 'ct'):
        if not isinstance(blob[field], str) or \
                len(blob[field]) > 2 * MAX_PLAINTEXT:
            return f'sealed secret field {field} is not short text'
    return None


def open(keyring: Iterable[x25519.X25519PrivateKey], blob: Any, *,
         boot_id: str, purpose: str) -> bytes:
    """The plaintext of a blob sealed to one of ``keyring``'s keys.

    :raises SealError: malformed, sealed to a key not in the keyring,
        for another boot or purpose, or tampered with.
    """
    why = check_form(blob)
    if why:
        raise SealError(why)
    try:
        enc = keys.b64decode(blob['enc'])
        ciphertext = keys.b64decode(blob['ct'])
    except keys.BadKey:
        raise SealError('a sealed secret field is not base64') from None
    if len(enc) != 32 or len(ciphertext) < _TAG_LEN:
        raise SealError('the sealed secret is truncated')
    candidates = [k for k in keyring
                  if key_id(public_bytes(k)) == blob['kid']]
    if not candidates:
        raise SealError(f'the {purpose} secret is sealed to key '
                        f'{blob["kid"]}, which this consumer does not hold '
                        f'([sealing] private_key_file, previous_key_files)')
    for private in candidates:
        try:
            shared = private.exchange(
                x25519.X25519PublicKey.from_public_bytes(enc))
        except ValueError:  # a low-order point: all-zero shared secret
            raise SealError('the sealed secret\'s ephemeral key is '
                            'invalid') from None
        key, nonce, aad = _schedule(shared, enc=enc,
                                    recipient=public_bytes(private),
                                    boot_id=boot_id, purpose=purpose)
        try:
            return ChaCha20Poly1305(key).decrypt(nonce, ciphertext, aad)
        except InvalidTag:
            continue
    raise SealError(f'the {purpose} secret does not open for boot '
                    f'{boot_id}: tampered with, or sealed for another boot')

