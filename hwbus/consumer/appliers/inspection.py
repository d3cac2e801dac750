"""``inspection``: hand the inventory to Ironic's own inspection.

``POST /v1/continue_inspection`` (API 1.84+) with the inventory and the
plugin data, exactly what ironic-python-agent sends, so Ironic's
inspection hooks and rules run as usual. Which node it may continue is
the binding rule's (hwbus.binding), checked first: the node the
credential is bound to, or the one owning its MAC, is named to Ironic
(``node_uuid``), and Ironic checks the inventory's MACs and BMC address
against it as well; a boot of a machine Ironic does not know is enrolled
by Ironic's auto-discovery when that is on.

Ironic deduplicates nothing: a redelivered message whose first delivery
already took the node out of ``inspect wait`` was applied by that
delivery, and is acknowledged as such.
"""

from __future__ import annotations

from typing import Any

from hwbus import binding, ironic, lldp
from hwbus.consumer.appliers import Applied, Context, bmcinfo


def usable_lldp(plugin_data: dict[str, Any],
                inventory: dict[str, Any]) -> dict[str, Any]:
    """continue_inspection's body, with only the LLDP TLVs Ironic can
    parse: one it cannot fails the node's whole inspection there
    (hwbus.lldp). What was dropped is said in plugin_data's errors."""
    inventory = dict(inventory)
    body = dict(plugin_data)
    dropped = 0
    interfaces = []
    for interface in inventory.get('interfaces') or []:
        tlvs = interface.get('lldp')
        if tlvs:
            kept = lldp.usable(tlvs)
            dropped += len(tlvs) - len(kept)
            interface = dict(interface, lldp=kept)
        interfaces.append(interface)
    inventory['interfaces'] = interfaces
    raw = plugin_data.get('lldp_raw')
    if isinstance(raw, dict):
        body['lldp_raw'] = {name: lldp.usable(tlvs)
                            for name, tlvs in raw.items()}
        dropped += sum(len(t or []) - len(body['lldp_raw'][n])
                       for n, t in raw.items())
    if dropped:
        body['errors'] = [*plugin_data.get('errors', []), {
            'collector': 'hwbus-consumer',
            'message': f'dropped {dropped} LLDP TLVs Ironic cannot parse'}]
    body['inventory'] = inventory
    return body


class InspectionApplier:
    name = 'inspection'

    def __init__(self, settings: Any, connection: Any) -> None:
        self.settings = settings
        self.connection = connection
        self.binding = binding.Binding(connection, settings.states)

    def apply(self, context: Context) -> Applied:
        redelivered = context.redelivered
        target = self.binding.resolve(context.boot, context.inventory,
                                      redelivered=redelivered)
        node = target.node
        if redelivered and node is not None and \
                node.provision_state not in self.binding.states:
            done = Applied(node=node.id, matched_by='redelivery',
                           changes=['applied by an earlier delivery'])
            # The earlier delivery may have stopped between Ironic's
            # continue_inspection and the credentials (auto-discovery).
            self._credentials(node, context, done)
            return done
        result = Applied(matched_by=target.matched_by or 'ironic-discovery',
                         changes=[])
        if node is not None:
            # Before continue_inspection: the node is in "inspect wait",
            # not locked by the conductor's inspection processing.
            self._credentials(node, context, result)
        body = usable_lldp(context.plugin_data, context.inventory)
        path = '/continue_inspection'
        if node is not None:
            path += f'?node_uuid={node.id}'
        with ironic.calling('continue_inspection'):
            response = self.binding.baremetal.post(
                path, json=body, microversion='1.84', raise_exc=False)
        if response.status_code == 404:
            raise ironic.NodeNotFound(self._not_found(node))
        if response.status_code not in (200, 202):
            raise ironic.status_error(response.status_code,
                                      'continue_inspection', response.text)
        result.node = (response.json().get('node') or {}).get('uuid')
        result.changes.insert(0, 'inspection continued')
        if node is None and result.node and context.bmc_secret is not None:
            # Ironic enrolled the machine just now ([auto_discovery]).
            with ironic.calling('node get'):
                created = self.binding.baremetal.get_node(result.node)
            self._credentials(created, context, result)
        return result

    def _credentials(self, node: Any, context: Context,
                     result: Applied) -> None:
        bmcinfo.set_credentials(self.binding.baremetal, node, context,
                                self.settings, result)

    @staticmethod
    def _not_found(node: Any) -> str:
        if node is None:
            return ('continue_inspection: Ironic enrolled no node for this '
                    'new machine (enable its [auto_discovery], or use the '
                    '"enroll" applier)')
        return (f'continue_inspection: Ironic refused node {node.id} (it '
                f'continues only nodes in "inspect wait" whose ports and '
                f'BMC address agree with the inventory)')
