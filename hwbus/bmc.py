"""BMC credentials: which boots mint them, and what a node gets from them.

The ramdisk creates a dedicated BMC user in-band (hwbus.ramdisk.
bmc_account) when its kernel command line says ``hwbus.bmc=create``, and
seals the password to the consumer (hwbus.sealing). This module holds
the two decisions around that, one for each side of the bus:

* the issuer's (``issue_mode``): a machine whose node already holds BMC
  credentials keeps them (``keep``: the ramdisk only reports the user)
  unless the operator asked for rotation, so a re-discovery never
  changes a working password behind Ironic's back;
* the consumer's (``driver_info_for``): which driver_info fields carry
  the credentials for the node's hardware type: ``ipmi_*`` or
  ``redfish_*``, never both, never for a driver that has neither.

Passwords live in ``Secret`` objects whose repr hides them, so a stray
log line or traceback of a Context prints no secret.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
from typing import Any

from hwbus import sealing

CREATE, KEEP = 'create', 'keep'
IPMI, REDFISH = 'ipmi', 'redfish'
# Hardware types by the driver_info fields their power interface reads.
FAMILIES = {'ipmi': IPMI, 'intel-ipmi': IPMI, 'redfish': REDFISH,
            'idrac': REDFISH}
PASSWORD_FIELDS = {IPMI: 'ipmi_password', REDFISH: 'redfish_password'}


class BadBmcSecret(sealing.SealError):
    """The sealed BMC secret opened but is not what a ramdisk writes."""


@dataclasses.dataclass(frozen=True)
class Secret:
    """An opened BMC account: what Ironic needs to log in."""

    username: str
    password: str = dataclasses.field(repr=False)

    def to_bytes(self) -> bytes:
        """The plaintext the ramdisk seals (canonical JSON)."""
        return json.dumps({'password': self.password,
                           'username': self.username}, sort_keys=True,
                          separators=(',', ':')).encode('utf-8')

    @classmethod
    def from_bytes(cls, data: bytes) -> Secret:
        try:
            value = json.loads(data.decode('utf-8'))
        except (UnicodeDecodeError, ValueError):
            raise BadBmcSecret('the BMC secret is not JSON') from None
        if not isinstance(value, dict) or set(value) != {'username',
                                                         'password'}:
            raise BadBmcSecret('the BMC secret has other fields than '
                               'username and password')
        username, password = value['username'], value['password']
        if not (isinstance(username, str) and 0 < len(username) <= 32 and
                username.isprintable()):
            raise BadBmcSecret('the BMC user name is not short printable '
                               'text')
        if not (isinstance(password, str) and 0 < len(password) <= 64 and
                password.isprintable()):
            raise BadBmcSecret('the BMC password is not short printable '
                               'text')
        return cls(username, password)


def has_credentials(node: Any) -> bool:
    """Ironic holds a BMC password for this node (the API shows a set
    password as "******", which is enough to know)."""
    info = getattr(node, 'driver_info', None) or {}
    return any(info.get(field) for field in PASSWORD_FIELDS.values())


def issue_mode(account: str, rotate: bool, node: Any | None) -> str | None:
    """``hwbus.bmc=`` for a boot of ``node`` (None: a machine Ironic does
    not know, or could not be asked about)."""
    if account != CREATE:
        return None
    if node is not None and has_credentials(node) and not rotate:
        return KEEP
    return CREATE


def family(driver: str | None) -> str | None:
    """Which credential fields a node of ``driver`` reads: IPMI, REDFISH,
    or None for hardware types with fields of their own (ilo, irmc) or
    none at all (fake-hardware, manual-management)."""
    return FAMILIES.get(driver or '')


def hardware_type(setting: str, plugin_data: dict[str, Any]) -> str:
    """The hardware type of a node discovery creates: [enroll] driver,
    where "auto" is redfish when the machine reported a Redfish host
    interface and ipmi otherwise."""
    if setting != 'auto':
        return setting
    return REDFISH if redfish_seen(plugin_data) else IPMI


def address_of(inventory: dict[str, Any],
               networks: list[str] | None = None) -> str | None:
    """The BMC address the machine reported in-band (IPv4, else IPv6),
    if it lies in one of ``networks`` ([bmc] networks; empty: any)."""
    address = inventory.get('bmc_address') or inventory.get('bmc_v6address')
    if not isinstance(address, str) or not address:
        return None
    if not networks:
        return address
    try:
        ip = ipaddress.ip_address(address)
        return address if any(ip in ipaddress.ip_network(n, strict=False)
                              for n in networks) else None
    except ValueError:
        return None


def driver_info_for(kind: str, secret: Secret, inventory: dict[str, Any],
                    settings: Any = None) -> dict[str, Any]:
    """The driver_info fields a node of ``kind`` needs for ``secret``.

    The address is the one the BMC reported (``address_of``);
    ``settings`` is [bmc] (networks, redfish_verify_ca,
    ipmi_cipher_suite).
    """
    address = address_of(inventory, getattr(settings, 'networks', None))
    if kind == IPMI:
        info: dict[str, Any] = {'ipmi_username': secret.username,
                                'ipmi_password': secret.password}
        if address:
            info['ipmi_address'] = address
        suite = getattr(settings, 'ipmi_cipher_suite', None)
        if suite:
            info['ipmi_cipher_suite'] = suite
        return info
    info = {'redfish_username': secret.username,
            'redfish_password': secret.password}
    if address:
        host = f'[{address}]' if ':' in address else address
        info['redfish_address'] = f'https://{host}'
    verify = getattr(settings, 'redfish_verify_ca', 'True')
    info['redfish_verify_ca'] = {'true': True, 'false': False}.get(
        str(verify).lower(), verify)
    return info


def redfish_seen(plugin_data: dict[str, Any]) -> bool:
    """The ramdisk found an SMBIOS Redfish host interface (type 42)."""
    return bool((plugin_data.get('dmi') or {}).get('redfish_host_interface'))
