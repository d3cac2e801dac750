"""Network interfaces: the ports Ironic looks machines up by.

Only physical NICs with a real MAC go into ``inventory.interfaces``, since
Ironic creates a port and matches lookups on each. Everything else the
machine has (USB LAN devices of BMCs, bonds, VLANs, InfiniBand ports of
unknown vendors) is described in ``plugin_data.nics`` with the reason it
was left out, so an operator can see it and opt in.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import psutil

from hwbus import macs
from hwbus.ramdisk.collectors.base import (
    Contribution,
    Options,
    bootif_mac,
    to_int,
)
from hwbus.ramdisk.probes import ethtool, pci_bus
from hwbus.ramdisk.probes.sysroot import CommandNotFound, SystemRoot

_NET = '/sys/class/net'
# ARPHRD_* link types from include/uapi/linux/if_arp.h.
_LINK_TYPES = {1: 'ether', 32: 'infiniband', 772: 'loopback',
               776: 'sit', 778: 'gre', 65534: 'none'}
_MELLANOX = '0x15b3'
# Mellanox's DHCP client-id prefix for IPoIB, as ironic-python-agent uses.
_IB_CLIENT_ID_PREFIX = 'ff:00:00:00:00:00:02:00:00:02:c9:00:'


def _addresses() -> dict[str, dict[str, list[str]]]:
    """IPv4 and IPv6 addresses per interface, from getifaddrs()."""
    found: dict[str, dict[str, list[str]]] = {}
    for name, addrs in psutil.net_if_addrs().items():
        entry = found.setdefault(name, {'ipv4': [], 'ipv6': []})
        for addr in addrs:
            if addr.family == socket.AF_INET:
                entry['ipv4'].append(addr.address)
            elif addr.family == socket.AF_INET6:
                entry['ipv6'].append(addr.address.split('%', 1)[0])
    return found


_UNIQUE_LOCAL = ipaddress.IPv6Network('fc00::/7')


def _pick_ipv6(addresses: list[str]) -> str | None:
    """The one ``ipv6_address`` of a port, as Ironic has one field.

    Global first (what the port is reached by from elsewhere), then
    unique-local and site-local (fec0::/10, which QEMU's user network
    still advertises), then link-local; loopback, multicast and what
    does not parse are never reported. Ties keep the kernel's order.
    """
    ranked = []
    for n, text in enumerate(addresses):
        try:
            address = ipaddress.IPv6Address(text)
        except ValueError:
            continue
        if address.is_loopback or address.is_multicast or \
                address.is_unspecified:
            continue
        if address.is_link_local:
            rank = 2
        elif address.is_site_local or address in _UNIQUE_LOCAL:
            rank = 1
        else:
            rank = 0
        ranked.append((rank, n, address.compressed))
    return min(ranked)[2] if ranked else None


def _infiniband_mac(address: str) -> tuple[str | None, str | None]:
    """(MAC, DHCP client-id) derived from a 20-byte IPoIB address.

    The GUID is the last 8 bytes; Mellanox firmware forms the port MAC
    from its first 3 and last 3 bytes.
    """
    parts = address.lower().split(':')
    if len(parts) != 20:
        return None, None
    guid = parts[12:]
    mac = macs.parse_nic(':'.join(guid[:3] + guid[5:]))
    return mac, _IB_CLIENT_ID_PREFIX + ':'.join(guid)


def _numa_node(root: SystemRoot, slot: str | None) -> int | None:
    if not slot:
        return None
    node = to_int(root.read(f'/sys/bus/pci/devices/{slot}/numa_node'))
    return node if node is not None and node >= 0 else None


def _bond(root: SystemRoot, name: str) -> dict[str, Any] | None:
    base = f'{_NET}/{name}'
    master = root.link_name(f'{base}/master')
    if root.is_dir(f'{base}/bonding'):
        mode = (root.read(f'{base}/bonding/mode') or '').split()
        return {'mode': mode[0] if mode else None,
                'slaves': (root.read(f'{base}/bonding/slaves')
                           or '').split(),
                'master': None}
    if master:
        return {'mode': None, 'slaves': [], 'master': master}
    return None


def _biosdevname(root: SystemRoot, name: str,
                 state: dict[str, bool]) -> str | None:
    """The BIOS name of a port, when biosdevname is in the image."""
    if state.get('missing'):
        return None
    try:
        result = root.run(f'biosdevname-{name}', ['biosdevname', '-i', name])
    except CommandNotFound:
        state['missing'] = True
        return None
    except Exception:
        return None
    # Exit status 4 means "this is a virtual machine": no BIOS names.
    if not result.ok:
        return None
    return result.stdout.strip() or None


def _describe(root: SystemRoot, name: str, facts: dict[str, Any],
              ips: dict[str, list[str]], options: Options,
              state: dict[str, bool]) -> tuple[dict | None, dict]:
    """(inventory interface or None, plugin_data nic) for one port."""
    base = f'{_NET}/{name}'
    physical = root.exists(f'{base}/device')
    current = (root.read(f'{base}/address') or '').lower() or None
    permanent = facts.get('permanent_mac')
    link_type = _LINK_TYPES.get(to_int(root.read(f'{base}/type')) or -1)
    device_path = root.realpath(f'{base}/device') if physical else ''
    usb = '/usb' in device_path
    vendor = root.read(f'{base}/device/vendor') if physical else None
    speed = to_int(root.read(f'{base}/speed'))
    carrier = root.read(f'{base}/carrier') == '1'
    pci_address = (pci_bus.slot_of(root, f'{base}/device')
                   if physical and not usb else None)
    driver = (root.link_name(f'{base}/device/driver') if physical
              else None) or facts.get('driver')

    mac, client_id = macs.parse_nic(permanent or current), None
    if link_type == 'infiniband':
        mac = None
        if vendor == _MELLANOX:
            mac, client_id = _infiniband_mac(current or '')

    excluded = None
    if not physical:
        excluded = 'not-physical'
    elif usb and not options.include_usb_nics:
        excluded = 'usb'
    elif mac is None:
        excluded = 'invalid-mac'

    nic = {
        'name': name,
        'mac_address': current,
        'permanent_mac_address': permanent,
        'link_type': link_type,
        'driver': driver,
        'driver_version': facts.get('driver_version'),
        'firmware_version': facts.get('firmware_version'),
        'speed_mbps': speed if speed and speed > 0 else None,
        'duplex': root.read(f'{base}/duplex'),
        'mtu': to_int(root.read(f'{base}/mtu')),
        'operstate': root.read(f'{base}/operstate'),
        'has_carrier': carrier,
        'pci_address': pci_address,
        'numa_node_id': _numa_node(root, pci_address),
        'usb': usb,
        'bond': _bond(root, name),
        'excluded': excluded,
    }
    if excluded:
        return None, nic
    interface = {
        'name': name,
        'mac_address': mac,
        'ipv4_address': next(iter(ips.get('ipv4') or []), None),
        'ipv6_address': _pick_ipv6(ips.get('ipv6') or []),
        'has_carrier': carrier,
        'lldp': None,
        'vendor': vendor,
        'product': root.read(f'{base}/device/device'),
        'client_id': client_id,
        'biosdevname': _biosdevname(root, name, state),
        'speed_mbps': nic['speed_mbps'],
        'pxe_enabled': False,
        'pci_address': nic['pci_address'],
        'driver': driver,
    }
    return interface, nic


def collect(root: SystemRoot, options: Options) -> Contribution:
    """The inventory ``interfaces``; plugin_data ``nics``."""
    names = [n for n in root.listdir(_NET) if n != 'lo']
    facts = root.probe('ethtool', lambda: ethtool.query(names)) or {}
    addresses = root.probe('net_if_addrs', _addresses) or {}
    interfaces: list[dict[str, Any]] = []
    nics: list[dict[str, Any]] = []
    state: dict[str, Any] = {}
    for name in names:
        interface, nic = _describe(root, name, facts.get(name, {}),
                                   addresses.get(name, {}), options, state)
        nics.append(nic)
        if interface:
            interfaces.append(interface)

    errors = []
    pxe = bootif_mac(root, options)
    if pxe:
        for interface in interfaces:
            interface['pxe_enabled'] = interface['mac_address'] == pxe
        if not any(i['pxe_enabled'] for i in interfaces):
            errors.append(f'boot interface {pxe} is not among the '
                          f'physical interfaces')
    if not interfaces:
        errors.append('no physical network interface with a valid MAC')
    return Contribution(inventory={'interfaces': interfaces},
                        plugin_data={'nics': nics}, errors=errors)
