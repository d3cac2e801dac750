"""``enroll``: create the boot's node, or set up the one it is bound to.

For sites whose Ironic has no inspection, or whose nodes are not in
``inspect wait``. Which node a boot may write is the binding rule's
(hwbus.binding): the credential's node, or the node owning its MAC when
that node awaits discovery, or a new one; never a node found by another
MAC, the BMC address or the serial, and only in ``[enroll] states``. The
node records the identity discovery saw (``extra.hwbus_identity``), so a
later boot of the same MAC as another machine is quarantined. Every write
is computed as a difference first, so applying the same inventory twice
writes nothing the second time.
"""

from __future__ import annotations

import re
from typing import Any

from hwbus import binding, ironic
from hwbus.consumer.appliers import Applied, Context

GIB = 1024 ** 3
NAME_RE = re.compile(r'^[a-zA-Z0-9._~-]{1,255}$')
def properties_for(context: Context) -> dict[str, Any]:
    """Ironic's scheduling properties, as its inspection would set them."""
    inv = context.inventory
    props: dict[str, Any] = {}
    cpu = inv.get('cpu') or {}
    if cpu.get('count'):
        props['cpus'] = cpu['count']
    if cpu.get('architecture'):
        props['cpu_arch'] = cpu['architecture']
    memory = (inv.get('memory') or {}).get('physical_mb')
    if memory:
        props['memory_mb'] = memory
    root = context.plugin_data.get('root_disk') or {}
    if root.get('size'):
        props['local_gb'] = max(root['size'] // GIB - 1, 0)
    return props


def _lldp_id(value: bytes) -> str:
    """Chassis or port ID TLV value: subtype 4/3 is a MAC, else text."""
    subtype, rest = value[0], value[1:]
    if subtype in (3, 4) and len(rest) == 6:
        return ':'.join(f'{b:02x}' for b in rest)
    return rest.decode('utf-8', 'replace')


def lldp_link(interface: dict[str, Any],
              plugin_data: dict[str, Any]) -> dict[str, str]:
    """local_link_connection from one NIC's raw LLDP TLVs, if heard."""
    tlvs = interface.get('lldp') or (plugin_data.get('lldp_raw') or {}).get(
        interface.get('name'), [])
    link: dict[str, str] = {}
    for kind, hexvalue in tlvs or []:
        try:
            value = bytes.fromhex(hexvalue)
        except (TypeError, ValueError):
            continue
        if not value:
            continue
        if kind == 1:
            link['switch_id'] = _lldp_id(value)
        elif kind == 2:
            link['port_id'] = _lldp_id(value)
        elif kind == 5:
            link['switch_info'] = value.decode('utf-8', 'replace')
    return link if 'switch_id' in link and 'port_id' in link else {}


def pxe_enabled(interface: dict[str, Any], boot: str | None) -> bool:
    """The boot NIC when the ramdisk knows it; otherwise every Ethernet
    NIC with a link (an InfiniBand port or a dead link cannot PXE)."""
    if boot:
        return interface.get('mac_address') == boot
    return bool(interface.get('has_carrier')) and \
        not interface.get('client_id')


class EnrollApplier:
    name = 'enroll'

    def __init__(self, settings: Any, connection: Any) -> None:
        self.settings = settings
        self.connection = connection
        self.binding = binding.Binding(connection, self.settings.states)

    @property
    def baremetal(self) -> Any:
        return ironic.baremetal(self.connection)

    # -- create ---------------------------------------------------------
    def _name(self, context: Context) -> str | None:
        vendor = context.inventory.get('system_vendor') or {}
        fields = {'serial': binding.serial_of(context.inventory) or '',
                  'vendor': vendor.get('manufacturer') or '',
                  'product': vendor.get('product_name') or '',
                  'mac': (context.boot_mac or '').replace(':', '-'),
                  'boot_id': context.boot_id}
        try:
            name = self.settings.name_template.format(**fields).strip()
        except (KeyError, ValueError, IndexError):
            return None
        name = re.sub(r'\s+', '-', name)
        return name if NAME_RE.match(name) else None

    def create(self, context: Context) -> Any:
        attrs: dict[str, Any] = {
            'driver': self.settings.driver,
            'extra': {binding.DISCOVERED_BY: context.boot_id}}
        name = self._name(context)
        if name:
            attrs['name'] = name
        if self.settings.resource_class:
            attrs['resource_class'] = self.settings.resource_class
        if self.settings.conductor_group:
            attrs['conductor_group'] = self.settings.conductor_group
        bmc = context.inventory.get('bmc_address')
        if bmc and self.settings.driver == 'ipmi':
            attrs['driver_info'] = {'ipmi_address': bmc}
        with ironic.calling('node create'):
            return self.baremetal.create_node(**attrs)

    # -- update ---------------------------------------------------------
    def apply(self, context: Context) -> Applied:
        target = self.binding.resolve(context.boot, context.inventory)
        node = target.node
        result = Applied(matched_by=target.matched_by)
        if node is None:
            if not self.settings.create_nodes:
                raise ironic.NodeNotFound(
                    'no node matches this inventory and [enroll] '
                    'create_nodes is off')
            node = self.create(context)
            result.created = True
            result.changes.append('node created')
        result.node = node.id
        self._patch(node, context, result)
        self._ports(node, context, result)
        self._traits(node, result)
        return result

    def _patch(self, node: Any, context: Context, result: Applied) -> None:
        patch = []
        current = node.properties or {}
        for key, value in properties_for(context).items():
            if current.get(key) != value:
                patch.append({'op': 'add', 'path': f'/properties/{key}',
                              'value': value})
        mode = (context.inventory.get('boot') or {}).get('current_boot_mode')
        caps = dict(c.split(':', 1) for c in str(
            current.get('capabilities') or '').split(',') if ':' in c)
        if mode and caps.get('boot_mode') != mode:
            caps['boot_mode'] = mode
            patch.append({'op': 'add', 'path': '/properties/capabilities',
                          'value': ','.join(f'{k}:{v}' for k, v in
                                            sorted(caps.items()))})
        extra = node.extra or {}
        serial = binding.serial_of(context.inventory)
        if serial and extra.get('system_serial') != serial:
            patch.append({'op': 'add', 'path': '/extra/system_serial',
                          'value': serial})
        recorded = extra.get(binding.IDENTITY)
        identity = {**(recorded if isinstance(recorded, dict) else {}),
                    **binding.identity_of(context.inventory)}
        if identity and identity != recorded:
            patch.append({'op': 'add', 'path': f'/extra/{binding.IDENTITY}',
                          'value': identity})
        if patch:
            with ironic.calling('node update'):
                self.baremetal.patch_node(node, patch)
            result.changes += [p['path'] for p in patch]

    def _ports(self, node: Any, context: Context, result: Applied) -> None:
        with ironic.calling('port list'):
            existing = {p.address for p in self.baremetal.ports(
                node_id=node.id, fields=['address'])}
        boot = context.boot_mac
        for interface in context.inventory.get('interfaces', []):
            mac = interface.get('mac_address')
            if not mac or mac in existing:
                continue
            if not self.settings.all_ports and boot and mac != boot:
                continue
            attrs: dict[str, Any] = {'node_id': node.id, 'address': mac,
                                     'pxe_enabled': pxe_enabled(interface,
                                                                boot)}
            if interface.get('client_id'):  # InfiniBand, as Ironic wants it
                attrs['extra'] = {'client-id': interface['client_id']}
            link = lldp_link(interface, context.plugin_data)
            if link:
                attrs['local_link_connection'] = link
            with ironic.calling('port create'):
                self.baremetal.create_port(**attrs)
            existing.add(mac)
            result.changes.append(f'port {mac}')

    def _traits(self, node: Any, result: Applied) -> None:
        missing = [t for t in self.settings.traits
                   if t not in (node.traits or [])]
        for trait in missing:
            with ironic.calling('trait add'):
                self.baremetal.add_node_trait(node, trait)
            result.changes.append(f'trait {trait}')
