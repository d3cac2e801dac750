"""Untrusted text, made safe to show on one line.

Everything a message or a request carries (a ramdisk's error report, a
header, a MAC parameter) may end up in a log line, on an operator's
terminal or in a notification. A line break in it would let the sender
write a whole fake log line; terminal escapes could rewrite the screen.
``escape`` turns every such character into a visible ``\\xNN`` escape,
and ``OneLineFilter`` applies it to every log record hwbus writes, so no
call site has to remember.
"""

from __future__ import annotations

import logging
import re

# C0 and C1 controls, DEL, the Unicode line and paragraph separators and
# the bidirectional overrides that reorder what a terminal shows.
_UNSAFE = re.compile('[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e'
                     '\u2066-\u2069\ud800-\udfff]')


def _escape_one(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f'\\x{code:02x}' if code < 0x100 else f'\\u{code:04x}'


def escape(value: object, limit: int | None = None) -> str:
    """``value`` as one line of printable text, cut at ``limit`` chars.

    Bytes are shown as Python shows them (``b'...'``), which escapes
    everything unprintable; text keeps its printable characters.
    """
    text = repr(value) if isinstance(value, bytes | bytearray) else \
        str(value)
    if limit is not None and len(text) > limit:
        text = text[:limit] + '...'
    return _UNSAFE.sub(_escape_one, text)


# A password in the request bodies libraries log at DEBUG (keystoneauth
# logs every request as a curl line): a JSON member whose name holds
# "password", or a JSON-patch operation on such a path.
_SECRET_MEMBER = re.compile(
    r'("[^"]*password[^"]*"\s*:\s*)"(?:[^"\\]|\\.)*"', re.I)
_SECRET_PATCH = re.compile(
    r'("path"\s*:\s*"[^"]*password[^"]*"\s*,\s*"value"\s*:\s*)'
    r'"(?:[^"\\]|\\.)*"', re.I)
_SECRET_WORD = re.compile(r'(password=)[^\s&\'"]+', re.I)


def redact(text: str) -> str:
    """``text`` with password values replaced by ``***``."""
    if 'assword' not in text and 'ASSWORD' not in text:
        return text
    text = _SECRET_PATCH.sub(r'\1"***"', text)
    text = _SECRET_MEMBER.sub(r'\1"***"', text)
    return _SECRET_WORD.sub(r'\1***', text)


class OneLineFilter(logging.Filter):
    """Render each record's message once, escaped, so it stays one line,
    and with password values masked (defence in depth: hwbus never logs
    one, libraries at DEBUG may).

    Tracebacks are kept (oslo.log prefixes each of their lines with the
    time and level, so they cannot pass for a record of their own).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = redact(message)
        if _UNSAFE.search(masked):
            masked = escape(masked)
        if masked != message:
            record.msg = masked
            record.args = None
        return True


def install_log_filter(logger: logging.Logger | None = None) -> None:
    """Put OneLineFilter on every handler of ``logger`` (root by default)."""
    logger = logger or logging.getLogger()
    for handler in logger.handlers:
        if not any(isinstance(f, OneLineFilter) for f in handler.filters):
            handler.addFilter(OneLineFilter())
