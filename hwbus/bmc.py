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
import string
from typing import Any

from hwbus import sealing

CREATE, KEEP = 'create', 'keep'
IPMI, REDFISH = 'ipmi', 'redfish'
# Hardware types by the driver_info fields their power interface reads.
FAMILIES = {'ipmi': IPMI, 'intel-ipmi': IPMI, 'redfish': REDFISH,
            'idrac': REDFISH}
PASSWORD_FIELDS = {IPMI: 'ipmi_password', REDFISH: 'redfish_password'}
# The account a ramdisk mints, and the only shape the consumer accepts:
# anyone can seal to the public key on the kernel command line, so an
# opened secret that a ramdisk would not have written (another user
# name, a chosen short password, another encoding) is refused whole.
USERNAME = 'hwbus'
# Letters and digits only: some BMCs' web and serial front ends choke on
# punctuation, and 16 of these still carry 95 bits.
PASSWORD_ALPHABET = string.ascii_letters + string.digits
# Set User Password's two forms: IPMI 2.0 stores 20 bytes, 1.5 stores 16.
PASSWORD_LENGTHS = (20, 16)


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
        """The account in a ramdisk's plaintext, or BadBmcSecret: the
        bytes must be exactly what ``to_bytes`` writes for the user
        ``USERNAME`` and a password of the minted alphabet and length."""
        try:
            value = json.loads(data.decode('utf-8'))
        except (UnicodeDecodeError, ValueError):
            raise BadBmcSecret('the BMC secret is not JSON') from None
        if not isinstance(value, dict) or set(value) != {'username',
                                                         'password'}:
            raise BadBmcSecret('the BMC secret has other fields than '
                               'username and password')
        username, password = value['username'], value['password']
        if username != USERNAME:
            raise BadBmcSecret(f'the BMC user name is not {USERNAME!r}')
        if not (isinstance(password, str) and
                len(password) in PASSWORD_LENGTHS and
                set(password) <= set(PASSWORD_ALPHABET)):
            raise BadBmcSecret('the BMC password is not one a ramdisk '
                               'mints (letters and digits, length '
                               f'{" or ".join(map(str, PASSWORD_LENGTHS))})')
        secret = cls(username, password)
        if secret.to_bytes() != data:
            raise BadBmcSecret('the BMC secret is not canonical JSON')
        return secret


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
