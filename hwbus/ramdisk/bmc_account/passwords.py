"""Random BMC passwords, of the lengths BMCs store (hwbus.bmc's rule)."""

from __future__ import annotations

import secrets

from hwbus import bmc

PASSWORD_ALPHABET = bmc.PASSWORD_ALPHABET
PASSWORD_LENGTHS = bmc.PASSWORD_LENGTHS


def new_password(length: int) -> str:
    return ''.join(secrets.choice(PASSWORD_ALPHABET) for _ in range(length))
