"""The Ironic node an operator names with --node."""

from __future__ import annotations

from typing import Any

from hwbus.cmd import wiring


def find_node(ident: str) -> tuple[Any, Any]:
    """(baremetal proxy, node) for a node name or UUID Ironic knows."""
    from hwbus import ironic

    baremetal = ironic.baremetal(wiring.ironic_connection())
    with ironic.calling('node lookup'):
        node = baremetal.find_node(ident, ignore_missing=True)
    if node is None:
        raise ironic.NodeNotFound(f'Ironic knows no node {ident}: check '
                                  f'--node ("baremetal node list")')
    return baremetal, node


def node_uuid(ident: str) -> str:
    """A node's UUID from a name or UUID: the archive keeps UUIDs."""
    import uuid

    try:
        return str(uuid.UUID(ident))
    except ValueError:
        pass
    return find_node(ident)[1].id
