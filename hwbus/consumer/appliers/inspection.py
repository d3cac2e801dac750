"""``inspection``: hand the inventory to Ironic's own inspection.

``POST /v1/continue_inspection`` (API 1.84+) with the inventory and the
plugin data, exactly what ironic-python-agent sends. A node waiting in
``inspect wait`` continues; an unknown one is enrolled by Ironic's
auto-discovery when that is on. Ironic's inspection hooks and rules run
as usual. Ironic deduplicates nothing here: a redelivered message re-runs
the same hooks on the same data, or, when the first attempt already took
the node out of inspection, is refused with 404; then the node that owns
the boot's MAC is the one the first attempt reached.
"""

from __future__ import annotations

from typing import Any

from hwbus import ironic
from hwbus.consumer.appliers import Applied, Context


class InspectionApplier:
    name = 'inspection'

    def __init__(self, conf: Any, connection: Any) -> None:
        self.connection = connection

    def apply(self, context: Context) -> Applied:
        body = dict(context.plugin_data)
        body['inventory'] = context.inventory
        with ironic.calling('continue_inspection'):
            response = self.connection.baremetal.post(
                '/continue_inspection', json=body, microversion='1.84',
                raise_exc=False)
        if response.status_code == 404 and context.redelivered:
            node = self._node_of(context)
            if node:
                return Applied(node=node, matched_by='redelivery',
                               changes=['applied by an earlier delivery'])
        if response.status_code == 404:
            raise ironic.NodeNotFound(
                'continue_inspection: Ironic found no node to continue (it '
                'looks up only nodes in "inspect wait", or enrols unknown '
                'ones when auto-discovery is on); known nodes outside '
                'inspection need the "enroll" applier')
        if response.status_code not in (200, 202):
            raise ironic.status_error(response.status_code,
                                      'continue_inspection', response.text)
        node = (response.json().get('node') or {}).get('uuid')
        return Applied(node=node, matched_by='ironic-lookup',
                       changes=['inspection continued'])

    def _node_of(self, context: Context) -> str | None:
        mac = context.boot_mac or (context.macs or [None])[0]
        if not mac:
            return None
        with ironic.calling('port lookup'):
            # The short listing has no node: ask for the details.
            for port in self.connection.baremetal.ports(details=True,
                                                        address=mac):
                return port.node_id
        return None
