"""Ed25519 keys as they travel: a 32-byte seed, base64url without padding.

The seed rides on the kernel command line (``hwbus.key=``), so it is kept
short (43 characters) and free of characters that need quoting. The
store keeps only the 32-byte raw public key.

cryptography is imported by the functions that use it: the ramdisk
checks its seed with ``seed_bytes`` at start and loads the library only
when it signs (under emulation its import takes seconds).
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING

from hwbus.errors import PermanentError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ed25519


class BadKey(PermanentError):
    reason = 'bad-key'


def b64encode(data: bytes) -> str:
    """base64url without padding: safe on a kernel command line and in URLs."""
    return base64.urlsafe_b64encode(data).rstrip(b'=').decode('ascii')


def b64decode(text: str) -> bytes:
    """Inverse of b64encode; also takes padded and standard alphabets."""
    text = text.strip().replace('+', '-').replace('/', '_').rstrip('=')
    try:
        return base64.urlsafe_b64decode(text + '=' * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise BadKey('not base64') from exc


def new_keypair() -> tuple[str, bytes]:
    """A fresh key: (seed for the ramdisk, raw public key for the store)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    private = ed25519.Ed25519PrivateKey.generate()
    seed = private.private_bytes(serialization.Encoding.Raw,
                                 serialization.PrivateFormat.Raw,
                                 serialization.NoEncryption())
    return b64encode(seed), public_bytes(private)


def seed_bytes(seed: str) -> bytes:
    """The 32 bytes of a seed in its command-line form; BadKey when it is
    not one. Every 32-byte string is a valid Ed25519 seed, so this is
    all private_key checks, without loading cryptography."""
    raw = b64decode(seed)
    if len(raw) != 32:
        raise BadKey(f'an Ed25519 seed has 32 bytes, not {len(raw)}')
    return raw


def private_key(seed: str) -> ed25519.Ed25519PrivateKey:
    """The signing key from its command-line form."""
    from cryptography.hazmat.primitives.asymmetric import ed25519

    return ed25519.Ed25519PrivateKey.from_private_bytes(seed_bytes(seed))


def public_bytes(private: ed25519.Ed25519PrivateKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return private.public_key().public_bytes(serialization.Encoding.Raw,
                                             serialization.PublicFormat.Raw)


def public_key(raw: bytes) -> ed25519.Ed25519PublicKey:
    if len(raw) != 32:
        raise BadKey(f'an Ed25519 public key has 32 bytes, not {len(raw)}')
    from cryptography.hazmat.primitives.asymmetric import ed25519

    return ed25519.Ed25519PublicKey.from_public_bytes(raw)
