"""The two families every failure in hwbus belongs to.

The consumer decides what to do with a message by family alone: a
``PermanentError`` is dead-lettered at once with its ``reason`` in a
header, a ``TransientError`` is retried. Both sides share these classes,
so the ramdisk imports nothing but the standard library from here.

Messages never contain a secret: callers pass user names, boot ids and
reasons, never passwords, keys or signatures.
"""

from __future__ import annotations


class HwbusError(Exception):
    """Base of every error hwbus raises on purpose."""

    reason = 'error'


class PermanentError(HwbusError):
    """Retrying cannot help: the message or request itself is wrong.

    ``reason`` is a short, stable, machine-readable word (used as a metric
    label and the dead-letter header), the text is for humans.
    """

    reason = 'invalid'


class TransientError(HwbusError):
    """A dependency is unavailable; the same work may succeed later."""

    reason = 'unavailable'
