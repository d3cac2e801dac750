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

from hwbus import binding, bmc, ironic, lldp
from hwbus.consumer.appliers import Applied, Context, bmcinfo

GIB = 1024 ** 3
NAME_RE = re.compile(r'^[a-zA-Z0-9._~-]{1,255}$')
# Ironic's [inspector] cpu_capabilities default: CPU flag → capability.
CPU_CAPABILITIES = {'vmx': 'cpu_vt', 'svm': 'cpu_vt', 'aes': 'cpu_aes',
                    'pse': 'cpu_hugepages', 'pdpe1gb': 'cpu_hugepages_1g',
                    'smx': 'cpu_txt'}


def properties_for(context: Context) -> dict[str, Any]:
    """The scheduling properties Ironic's inspection hooks set (memory,
    architecture, root-device): the same values, so that a node looks
    the same whichever applier brought it in."""
    inv = context.inventory
    props: dict[str, Any] = {}
    architecture = (inv.get('cpu') or {}).get('architecture')
    if architecture:
        props['cpu_arch'] = architecture
    memory = (inv.get('memory') or {}).get('physical_mb')
    if memory:
        props['memory_mb'] = memory
    root = context.plugin_data.get('root_disk') or {}
    if root.get('size', 0) // GIB:
        props['local_gb'] = max(root['size'] // GIB - 1, 0)
    return props


def capabilities_for(context: Context) -> dict[str, str]:
    """What Ironic's cpu-capabilities and boot-mode hooks add."""
    flags = set((context.inventory.get('cpu') or {}).get('flags') or [])
    found = {name: 'true' for flag, name in CPU_CAPABILITIES.items()
             if flag in flags}
    mode = (context.inventory.get('boot') or {}).get('current_boot_mode')
    if mode:
        found['boot_mode'] = mode
    return found


def pxe_enabled(interface: dict[str, Any], boot: str | None) -> bool:
    """The boot NIC only, as Ironic's ports hook marks it (no port is
    when the ramdisk does not know which NIC it booted from)."""
    return bool(boot) and interface.get('mac_address') == boot


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
        driver = bmc.hardware_type(self.settings.driver, context.plugin_data)
        attrs: dict[str, Any] = {
            'driver': driver,
            'extra': {binding.DISCOVERED_BY: context.boot_id}}
        name = self._name(context)
        if name:
            attrs['name'] = name
        if self.settings.resource_class:
            attrs['resource_class'] = self.settings.resource_class
        if self.settings.conductor_group:
            attrs['conductor_group'] = self.settings.conductor_group
        info = bmcinfo.fields(driver, context, self.settings)
        address = bmc.address_of(context.inventory, getattr(
            getattr(self.settings, 'bmc', None), 'networks', None))
        if not info and address and bmc.family(driver) == bmc.IPMI:
            info = {'ipmi_address': address}
        if info:
            attrs['driver_info'] = info
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
            if context.bmc_secret is not None and node.driver_info:
                result.changes.append(
                    f'bmc credentials set for user '
                    f'{context.bmc_secret.username} '
                    f'({", ".join(sorted(node.driver_info))})')
        else:
            bmcinfo.set_credentials(self.baremetal, node, context,
                                    self.settings, result)
        result.node = node.id
        self._patch(node, context, result)
        self._ports(node, context, result)
        self._traits(node, result)
        self._manage(node, context, result)
        return result

    def _manage(self, node: Any, context: Context, result: Applied) -> None:
        """[enroll] manage: a node discovery enrolled and just gave BMC
        credentials goes to manageable (Ironic validates power control
        with them). Nodes an operator enrolled are theirs to manage."""
        if not (self.settings.manage and context.bmc_secret is not None):
            return
        with ironic.calling('node get'):
            current = self.baremetal.get_node(node.id)
        if current.provision_state != bmcinfo.ENROLL or \
                not binding.discovered(current) or \
                not bmc.has_credentials(current):
            return
        bmcinfo.manage(self.baremetal, current,
                       self.settings.manage_timeout, result)

    def _patch(self, node: Any, context: Context, result: Applied) -> None:
        patch = []
        current = node.properties or {}
        for key, value in properties_for(context).items():
            if current.get(key) != value:
                patch.append({'op': 'add', 'path': f'/properties/{key}',
                              'value': value})
        caps = dict(c.split(':', 1) for c in str(
            current.get('capabilities') or '').split(',') if ':' in c)
        merged = {**caps, **capabilities_for(context)}
        if merged != caps:
            patch.append({'op': 'add', 'path': '/properties/capabilities',
                          'value': ','.join(f'{k}:{v}' for k, v in
                                            merged.items())})
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
            link = lldp.api_link(
                interface.get('lldp') or (context.plugin_data.get(
                    'lldp_raw') or {}).get(interface.get('name')))
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
