"""MAC addresses: what counts as one, and its one written form.

Both sides read MACs: the ramdisk's collectors (sysfs, ethtool, ipmitool,
``BOOTIF`` on the kernel command line) and the issuing side (a MAC an
operator types or iPXE sends to the boot server). They must agree on what
a MAC is and how it is written, or a credential bound to a MAC would not
find that MAC in its own machine's inventory. This module is that one
rule; the ramdisk imports it, so it uses the standard library only.

* :func:`parse` gives the canonical ``aa:bb:cc:dd:ee:ff`` form of a
  6-byte link address, or None for anything else (InfiniBand's 20-byte and
  FireWire's 8-byte addresses, garbage).
* :func:`is_nic_address` says whether such an address can be a NIC's own:
  not multicast, not all zero.
* :func:`parse_nic` is both at once, for callers that drop what fails
  (the collectors); ``hwbus.credentials.normalize_mac`` raises instead.
"""

from __future__ import annotations

import re

ZERO = '00:00:00:00:00:00'

_CANONICAL_RE = re.compile(r'[0-9a-f]{2}(:[0-9a-f]{2}){5}')
_BARE_RE = re.compile(r'[0-9a-f]{12}')


def parse(text: str | None) -> str | None:
    """``aa:bb:cc:dd:ee:ff`` from the forms operators and firmware write.

    Either case, ``:`` or ``-`` between the bytes, or the bare 12 hex
    digits; white space around it is ignored. Anything that is not a
    6-byte address answers None.
    """
    if not text:
        return None
    mac = text.strip().lower().replace('-', ':')
    if _BARE_RE.fullmatch(mac):
        mac = ':'.join(mac[i:i + 2] for i in range(0, 12, 2))
    return mac if _CANONICAL_RE.fullmatch(mac) else None


def is_multicast(mac: str) -> bool:
    """The group bit of a canonical MAC (see :func:`parse`) is set."""
    return bool(int(mac[:2], 16) & 1)


def is_nic_address(mac: str) -> bool:
    """A canonical MAC a network interface can carry as its own.

    Multicast (group) addresses and the all-zero address never are: a
    value like that must not reach Ironic's port lookup nor bind a
    credential.
    """
    return not is_multicast(mac) and mac != ZERO


def parse_nic(text: str | None) -> str | None:
    """:func:`parse`, but None also when it is no NIC's address."""
    mac = parse(text)
    return mac if mac is not None and is_nic_address(mac) else None
