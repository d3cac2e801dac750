"""A port's switch connection from the LLDP TLVs its NIC heard.

Ironic's inspection (its parse-lldp and local-link-connection hooks)
turns the raw TLVs the ramdisk reports into a port's
``local_link_connection``; hwbus's ``enroll`` applier comes to the same
answer with this module, which follows Ironic's rules
(tests/functional/test_ironic_agreement.py checks it against a real
Ironic):

* Chassis ID (type 1): ``switch_id`` only for the MAC-address subtype;
* Port ID (type 2): ``port_id`` as text for the alias, component, name
  and local subtypes, a MAC (aa:bb:...) or an IP address for those;
* System Name (type 5): ``switch_info``; a later TLV of a type wins.

A TLV Ironic cannot parse (a Port ID subtype it does not know, such as
an agent circuit ID; text that is not UTF-8; a short address) does not
just lose its value there: Ironic's inspection fails for the whole node
("failed to run inspection hooks"). ``usable()`` is what may be handed to
Ironic; both appliers use only that. Standard library only.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from hwbus.errors import PermanentError

CHASSIS_ID, PORT_ID, SYSTEM_NAME = 1, 2, 5
# Port ID subtypes (IEEE 802.1AB): 1 interface alias, 2 port component,
# 3 MAC address, 4 network address, 5 interface name, 7 locally assigned.
_PORT_TEXT, _PORT_MAC, _PORT_ADDRESS = {1, 2, 5, 7}, 3, 4
# Chassis ID subtypes: 4 MAC address, 5 network address, the rest text.
_CHASSIS_MAC, _CHASSIS_ADDRESS, _CHASSIS_SUBTYPES = 4, 5, range(1, 8)
# What Ironic's API accepts as a port's local_link_connection.
API_REQUIRED = ('switch_id', 'port_id')


class Unusable(PermanentError, ValueError):
    """A TLV Ironic's inspection hooks cannot parse."""

    reason = 'lldp-unusable'


def _mac(value: bytes) -> str:
    if len(value) != 6:
        raise Unusable('a MAC address has 6 bytes')
    return ':'.join(f'{b:02x}' for b in value)


def _address(value: bytes) -> str:
    """An IANA address family byte, then the address."""
    family, raw = value[:1], value[1:]
    if family == b'\x01' and len(raw) == 4:
        return str(ipaddress.IPv4Address(raw))
    if family == b'\x02' and len(raw) == 16:
        return str(ipaddress.IPv6Address(raw))
    raise Unusable('not an IPv4 or IPv6 address')


def _text(value: bytes) -> str:
    try:
        return value.decode('utf-8')
    except UnicodeDecodeError as exc:
        raise Unusable('not UTF-8') from exc


def item(kind: Any, hexvalue: Any) -> tuple[str, str] | None:
    """The connection item one TLV gives (None: it gives none).

    :raises Unusable: Ironic could not parse this TLV.
    """
    try:
        value = bytes.fromhex(hexvalue)
    except (TypeError, ValueError) as exc:
        raise Unusable('not hexadecimal') from exc
    if kind == PORT_ID:
        code = value[0] if value else 0
        if code in _PORT_TEXT:
            return 'port_id', _text(value[1:])
        if code == _PORT_MAC:
            return 'port_id', _mac(value[1:])
        if code == _PORT_ADDRESS:
            return 'port_id', _address(value[1:])
        raise Unusable(f'port ID subtype {code}')
    if kind == CHASSIS_ID:
        code = value[0] if value else 0
        if code == _CHASSIS_MAC:
            return 'switch_id', _mac(value[1:])
        if code == _CHASSIS_ADDRESS:
            _address(value[1:])  # parsed (and may be unusable), not used
        elif code in _CHASSIS_SUBTYPES:
            _text(value[1:])
        else:
            raise Unusable(f'chassis ID subtype {code}')
        return None
    if kind == SYSTEM_NAME:
        return 'switch_info', _text(value)
    return None


def usable(tlvs: Iterable[Any] | None) -> list[Any]:
    """The TLVs Ironic can parse, in order; the others are dropped."""
    kept = []
    for tlv in tlvs or []:
        try:
            item(*tlv)
        except (Unusable, TypeError, ValueError):
            continue
        kept.append(tlv)
    return kept


def local_link_connection(tlvs: Iterable[Any] | None) -> dict[str, str]:
    """``local_link_connection`` from ``[[type, hex value], ...]``, as
    Ironic's hook computes it from the usable TLVs."""
    found: dict[str, str] = {}
    for tlv in usable(tlvs):
        one = item(*tlv)
        if one is not None:
            found[one[0]] = one[1]
    return found


def api_link(tlvs: Iterable[Any] | None) -> dict[str, str]:
    """The same, as Ironic's API accepts it when a port is created:
    switch_id and port_id both, or nothing (its inspection hook writes a
    partial one to its database directly; the API refuses it)."""
    found = local_link_connection(tlvs)
    return found if all(k in found for k in API_REQUIRED) else {}
