"""A few Ironic nodes and ports in memory, shaped like openstacksdk's."""

from __future__ import annotations

import types


def node(uuid: str, state: str = 'enroll', driver_info=None, extra=None,
         name=None) -> types.SimpleNamespace:
    return types.SimpleNamespace(id=uuid, name=name, provision_state=state,
                                 driver_info=driver_info or {},
                                 extra=extra or {}, properties={},
                                 traits=[])


class Response:
    def __init__(self, status_code: int, body=None) -> None:
        self.status_code = status_code
        self._body = body
        self.text = ''

    def json(self):
        return self._body


class Baremetal:
    """nodes: node() objects; ports: {mac: node uuid}; inventories:
    {node uuid: stored inventory document}."""

    def __init__(self, nodes=(), ports=None, inventories=None) -> None:
        self.by_id = {n.id: n for n in nodes}
        self.port_owner = dict(ports or {})
        self.inventories = dict(inventories or {})
        self.posted: list[tuple[str, dict]] = []
        self.port_queries = 0
        self.post_status = 202

    def find_node(self, ident, ignore_missing=True):
        for n in self.by_id.values():
            if ident in (n.id, n.name):
                return n
        return None

    def get_node(self, ident):
        return self.find_node(ident)

    def nodes(self, fields=None, **query):
        return list(self.by_id.values())

    def ports(self, address=None, fields=None, **query):
        self.port_queries += 1
        if address is None:
            return [types.SimpleNamespace(address=mac, node_id=owner)
                    for mac, owner in self.port_owner.items()]
        owner = self.port_owner.get(address)
        return [] if owner is None else [types.SimpleNamespace(
            address=address, node_id=owner)]

    def get(self, path, microversion=None, raise_exc=True):
        uuid = path.split('/')[2]
        if uuid in self.inventories:
            return Response(200, self.inventories[uuid])
        return Response(404)

    def post(self, path, json=None, microversion=None, raise_exc=True):
        self.posted.append((path, json))
        if self.post_status != 202:
            return Response(self.post_status)
        uuid = path.partition('node_uuid=')[2] or 'new-node'
        return Response(202, {'node': {'uuid': uuid}})
