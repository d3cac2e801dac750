"""The BMC's network identity, from ipmitool.

Ironic matches discovered machines by BMC address as well as by MAC, and
operators enrol them with it. ipmitool is only asked when the kernel has an
IPMI device, so a machine without a BMC costs nothing and a wedged BMC
costs at most one command timeout.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from hwbus import macs
from hwbus.ramdisk.collectors.base import (
    Contribution,
    Options,
    to_int,
)
from hwbus.ramdisk.probes.sysroot import (
    CommandError,
    CommandTimeout,
    SystemRoot,
)

_IPMI_DEVICES = ('/dev/ipmi0', '/dev/ipmi/0', '/dev/ipmidev/0')
# LAN channels tried in order; vendors put the shared/dedicated NIC on 1-3
# and ironic-python-agent also stops at the first with an address.
_CHANNELS = range(1, 9)
_FIELD_RE = re.compile(r'^([^:]+?)\s*:\s*(.*)$')


def parse_lan_print(text: str) -> dict[str, str]:
    """``ipmitool lan print`` as {"IP Address": "10.0.0.5", ...}."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        match = _FIELD_RE.match(line)
        if match and not line.startswith(' '):
            fields.setdefault(match.group(1).strip(), match.group(2).strip())
    return fields


def parse_lan6_addresses(text: str) -> list[str]:
    """Active IPv6 addresses from ``ipmitool lan6 print``."""
    found, address = [], None
    for line in text.splitlines():
        key, _, value = line.strip().partition(':')
        value = value.strip()
        if key == 'Address':
            address = value.split('/', 1)[0]
        elif key == 'Status' and address:
            if value == 'active' and _usable(address):
                found.append(address)
            address = None
    return found


def _usable(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return not (ip.is_unspecified or ip.is_loopback)


def _v4(fields: dict[str, str]) -> str | None:
    address = fields.get('IP Address')
    return address if address and _usable(address) else None


def has_ipmi(root: SystemRoot) -> bool:
    """The kernel gave this machine an IPMI device (ipmi_si found a BMC)."""
    return any(root.exists(path) for path in _IPMI_DEVICES)


def collect(root: SystemRoot, options: Options) -> Contribution:
    """``bmc_address``, ``bmc_v6address``, ``bmc_mac``; plugin_data ``bmc``."""
    if not has_ipmi(root):
        return Contribution()
    errors: list[str] = []
    channel, fields = None, {}
    for candidate in _CHANNELS:
        try:
            result = root.run(f'ipmitool-lan-print-{candidate}',
                              ['ipmitool', 'lan', 'print', str(candidate)])
        except CommandTimeout as exc:
            errors.append(f'ipmitool: {exc}; the BMC is not answering')
            break
        except CommandError as exc:
            errors.append(f'ipmitool: {exc}')
            break
        if not result.ok:
            continue
        parsed = parse_lan_print(result.stdout)
        if channel is None and parsed:
            channel, fields = candidate, parsed
        if _v4(parsed):
            channel, fields = candidate, parsed
            break

    v6: list[str] = []
    if channel is not None and not errors:
        try:
            result = root.run(f'ipmitool-lan6-print-{channel}',
                              ['ipmitool', 'lan6', 'print', str(channel)])
            if result.ok:
                v6 = parse_lan6_addresses(result.stdout)
        except CommandError as exc:
            errors.append(f'ipmitool lan6: {exc}')
    global_v6 = [a for a in v6 if not a.lower().startswith('fe80:')]

    inventory: dict[str, Any] = {
        'bmc_address': _v4(fields),
        'bmc_v6address': next(iter(global_v6 or v6), None),
        'bmc_mac': macs.parse_nic(fields.get('MAC Address')),
    }
    vlan = fields.get('802.1q VLAN ID', '')
    plugin = {'bmc': {
        'channel': channel,
        'ip_source': fields.get('IP Address Source'),
        'netmask': fields.get('Subnet Mask'),
        'gateway': fields.get('Default Gateway IP'),
        'vlan_id': to_int(vlan),
        'ipv6_addresses': v6,
    }}
    if channel is None and not errors:
        errors.append('an IPMI device exists but no LAN channel answered')
    return Contribution(inventory=inventory, plugin_data=plugin,
                        errors=errors)
