"""A credential is good for its own machine only: the binding rule.

Everything inside a signed inventory is the machine's claim (its MACs,
serial, BMC address). A credential was bound, when it was issued, to a
node (``hwbus-manage issue --node``) or to a MAC (the boot server, for
anyone who asks). So:

* the **target** of a boot is the node its credential was bound to, or
  the node that owns its bound MAC as a port, or none (a new machine);
* no claim can choose another node: an inventory MAC that is a port of
  another node (``mac-conflict``), a BMC address that is another node's
  (``bmc-conflict``), or a serial number another node was discovered with
  (``identity-conflict``) refuses the inventory;
* a target discovered before as a different machine (system serial,
  system UUID or BMC MAC differ) is quarantined for an operator
  (``identity-conflict``), never silently merged;
* a target in a state nobody opened for discovery is never written
  (``node-state``): an applier names its states, and a MAC-bound
  credential (which proves nothing about who asked) may only write a node
  that awaits discovery: in ``inspect wait``, or enrolled by discovery
  itself and still in ``enroll``.

The boot server asks ``awaits_discovery`` too, before it issues a
credential for a MAC that Ironic knows. Every comparison is exact, on
normalised values.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import urllib.parse
from collections.abc import Iterable
from typing import Any

from hwbus import bmc, ironic
from hwbus.errors import PermanentError, TransientError

LOG = logging.getLogger(__name__)

# node.extra keys hwbus writes: the boot that enrolled the node (only on
# nodes discovery created) and the identity discovery saw.
DISCOVERED_BY = 'hwbus_boot_id'
IDENTITY = 'hwbus_identity'
INSPECT_WAIT = 'inspect wait'
# More MACs than this in one inventory: one port listing, not a query each.
BULK_LOOKUP = 16
ENROLL = 'enroll'
IDENTITY_FIELDS = ('serial', 'system_uuid', 'bmc_mac')
PLACEHOLDERS = {'', 'to be filled by o.e.m.', 'default string',
                'system serial number', 'not specified', 'not applicable',
                '0', '0123456789', '1234567890', 'none', 'n/a',
                '00000000-0000-0000-0000-000000000000',
                '03000200-0400-0500-0006-000700080009',
                'ffffffff-ffff-ffff-ffff-ffffffffffff',
                '00:00:00:00:00:00'}


class BindingError(PermanentError):
    """The inventory may not be written where its claims point."""


class MacConflict(BindingError):
    reason = 'mac-conflict'


class BmcConflict(BindingError):
    reason = 'bmc-conflict'


class IdentityConflict(BindingError):
    reason = 'identity-conflict'


class NodeClosed(BindingError):
    reason = 'node-state'


def _known(value: Any) -> str | None:
    """A stripped identity value, or None for blanks and placeholders."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    return None if text.lower() in PLACEHOLDERS else text


def serial_of(inventory: dict[str, Any]) -> str | None:
    return _known((inventory.get('system_vendor') or {}).get(
        'serial_number'))


def identity_of(inventory: dict[str, Any]) -> dict[str, str]:
    """Who the machine says it is, as far as it knows."""
    vendor = inventory.get('system_vendor') or {}
    found = {'serial': serial_of(inventory),
             'system_uuid': _known(vendor.get('uuid')),
             'bmc_mac': _known(inventory.get('bmc_mac'))}
    if found['system_uuid']:
        found['system_uuid'] = found['system_uuid'].lower()
    if found['bmc_mac']:
        found['bmc_mac'] = found['bmc_mac'].lower()
    return {k: v for k, v in found.items() if v}


def differences(recorded: dict[str, Any],
                claimed: dict[str, str]) -> list[str]:
    """Identity fields both know that disagree (a field one side lacks is
    no disagreement: firmware may start reporting it)."""
    return [f'{k} {recorded[k]!r} → {claimed[k]!r}' for k in IDENTITY_FIELDS
            if recorded.get(k) and claimed.get(k)
            and recorded[k] != claimed[k]]


def normalize_address(value: Any) -> str | None:
    """A BMC address for comparison: an IP in its compressed form, else a
    lower-case host name; URLs give their host. None for nothing."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if '//' in text:
        try:
            text = urllib.parse.urlsplit(text).hostname or ''
        except ValueError:
            return None
    text = text.strip('[]').lower()
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return text or None
    return None if address.is_unspecified else address.compressed


# driver_internal_info key where Ironic caches the BMC addresses its own
# inspection lookup matches (host names resolved) for nodes it inspects.
LOOKUP_CACHE = 'lookup_bmc_addresses'


def bmc_addresses_of(node: Any) -> set[str]:
    """Every BMC address a node is known by: its ``*_address`` driver
    fields, and the addresses Ironic resolved them to for its own lookup
    (a host name, or a form like "167837955", matches there by IP)."""
    values = [v for k, v in (node.driver_info or {}).items()
              if k.endswith('_address')]
    cached = (getattr(node, 'driver_internal_info', None) or {}).get(
        LOOKUP_CACHE) or []
    if isinstance(cached, list):
        values += cached
    return {a for a in map(normalize_address, values) if a}


def discovered(node: Any) -> bool:
    """Discovery enrolled this node (hwbus's enroll applier marks it)."""
    return bool((node.extra or {}).get(DISCOVERED_BY))


def awaits_discovery(node: Any, baremetal: Any = None) -> bool:
    """May a boot nobody authenticated (a MAC-bound credential) report
    for this node? In ``inspect wait``, or enrolled by discovery and not
    taken further by anyone (so that the real machine behind a spoofed
    first report can still report, and the conflict surfaces).

    Nodes Ironic's own auto-discovery enrolled carry the mark in their
    stored plugin data; ``baremetal`` lets this look there.
    """
    if node.provision_state == INSPECT_WAIT:
        return True
    if node.provision_state != ENROLL:
        return False
    if discovered(node):
        return True
    if baremetal is None:
        return False
    stored = stored_inventory(baremetal, node) or {}
    return bool((stored.get('plugin_data') or {}).get('auto_discovered'))


def stored_inventory(baremetal: Any, node: Any) -> dict[str, Any] | None:
    """The inventory Ironic keeps for a node (API 1.81), if any."""
    with ironic.calling('node inventory'):
        response = baremetal.get(f'/nodes/{node.id}/inventory',
                                 microversion='1.81', raise_exc=False)
    if response.status_code != 200:
        return None
    try:
        return response.json()
    except ValueError:
        return None


@dataclasses.dataclass
class Target:
    """The node a boot may write (None: a new one) and why it is that one."""

    node: Any | None
    matched_by: str | None = None


class Binding:
    """Find a boot's target in Ironic and check the inventory against it.

    ``connection``: an openstacksdk connection (its baremetal proxy is
    made on first use); ``states``: provision states in which the applier
    may write a node.
    """

    def __init__(self, connection: Any, states: Iterable[str]) -> None:
        self.connection = connection
        self.states = set(states)

    @property
    def baremetal(self) -> Any:
        return ironic.baremetal(self.connection)

    def resolve(self, credential: Any, inventory: dict[str, Any],
                redelivered: bool = False) -> Target:
        """The target, after every check; raises a BindingError.

        ``redelivered``: this very message reached Ironic before, so a
        target that left the open states may be its own doing; then the
        state is not checked (the applier decides what that means).
        """
        target = self.target(credential)
        self._check_claims(inventory, target)
        if target.node is not None:
            self._check_identity(inventory, target.node)
            if not redelivered:
                self._check_state(credential, target.node)
        return target

    def refusal_for(self, mac: str) -> str | None:
        """Why the boot server must not issue a credential for ``mac``
        (None: it may). A MAC Ironic knows is issued only when its node
        awaits discovery. When Ironic cannot answer, the credential is
        issued: the consumer applies the same rule before any write, and
        machines must still boot while Ironic is down."""
        try:
            owner = self._owner(mac)
            if owner is None:
                return None
            with ironic.calling('node get'):
                node = self.baremetal.get_node(owner)
            if awaits_discovery(node, self.baremetal):
                return None
        except TransientError as exc:
            LOG.warning('could not ask Ironic about %s (%s); issuing: the '
                        'consumer checks the binding before any write', mac,
                        exc)
            return None
        return (f'{mac} is a port of node {node.id} (provision state '
                f'"{node.provision_state}"), which does not await discovery')

    def bmc_mode_for(self, mac: str, account: str,
                     rotate: bool) -> str | None:
        """hwbus.bmc= for a boot of ``mac`` (hwbus.bmc.issue_mode on the
        node owning it). When Ironic cannot answer, the machine is taken
        as new ("create"): the consumer then writes the new password to
        the node and records it, so nothing changes unseen."""
        if account != bmc.CREATE:
            return None
        node = None
        try:
            owner = self._owner(mac)
            if owner is not None:
                with ironic.calling('node get'):
                    node = self.baremetal.get_node(owner)
        except TransientError as exc:
            LOG.warning('could not ask Ironic whether %s has BMC '
                        'credentials (%s); a new BMC password is minted',
                        mac, exc)
        return bmc.issue_mode(account, rotate, node)

    # -- the target -----------------------------------------------------
    def target(self, credential: Any) -> Target:
        bm = self.baremetal
        if credential.node:
            with ironic.calling('node lookup'):
                node = bm.find_node(credential.node, ignore_missing=True)
            if node is None:
                raise ironic.NodeNotFound(
                    f'the credential is bound to node {credential.node}, '
                    f'which Ironic does not know')
            return Target(node, 'credential-node')
        if credential.mac:
            owner = self._owner(credential.mac)
            if owner is not None:
                with ironic.calling('node get'):
                    return Target(bm.get_node(owner), f'mac {credential.mac}')
        return Target(None)

    def _owners(self, macs: set[str]) -> dict[str, str]:
        """{mac: node uuid} for the MACs that are some node's ports.

        One port query per MAC for an ordinary machine; beyond
        ``BULK_LOOKUP`` MACs one listing of every port instead, so the
        Ironic calls one inventory costs stay bounded whatever it claims.
        """
        if len(macs) <= BULK_LOOKUP:
            found = {mac: self._owner(mac) for mac in macs}
            return {mac: owner for mac, owner in found.items() if owner}
        with ironic.calling('port list'):
            return {p.address: p.node_id for p in self.baremetal.ports(
                fields=['address', 'node_uuid']) if p.address in macs}

    def _owner(self, mac: str) -> str | None:
        """The node that has ``mac`` as a port, by UUID."""
        with ironic.calling('port lookup'):
            for port in self.baremetal.ports(address=mac,
                                             fields=['address', 'node_uuid']):
                return port.node_id
        return None

    # -- the checks -----------------------------------------------------
    def _check_claims(self, inventory: dict[str, Any],
                      target: Target) -> None:
        """No MAC, BMC address or serial of the inventory is another
        node's."""
        own = target.node.id if target.node is not None else None
        macs = {i.get('mac_address') for i in inventory.get('interfaces')
                or []} - {None}
        for mac, owner in sorted(self._owners(macs).items()):
            if owner != own:
                raise MacConflict(
                    f'{mac} is a port of node {owner}, '
                    f'{_which(own)}; an inventory may only carry MACs of '
                    f'its own node')
        addresses = {a for a in (normalize_address(inventory.get(key))
                                 for key in ('bmc_address', 'bmc_v6address'))
                     if a}
        serial = serial_of(inventory)
        if not (addresses or serial):
            return
        with ironic.calling('node list'):
            nodes = list(self.baremetal.nodes(
                fields=['uuid', 'driver_info', 'driver_internal_info',
                        'extra']))
        for node in nodes:
            if node.id == own:
                continue
            shared = addresses & bmc_addresses_of(node)
            if shared:
                raise BmcConflict(
                    f'BMC address {min(shared)} belongs to node '
                    f'{node.id}, {_which(own)}')
            extra = node.extra or {}
            recorded = {extra.get('system_serial'),
                        (extra.get(IDENTITY) or {}).get('serial')}
            if serial and serial in recorded:
                raise IdentityConflict(
                    f'serial number {serial!r} is that of node {node.id}, '
                    f'{_which(own)}')

    def _check_identity(self, inventory: dict[str, Any], node: Any) -> None:
        recorded = (node.extra or {}).get(IDENTITY)
        if not isinstance(recorded, dict):
            stored = stored_inventory(self.baremetal, node)
            recorded = identity_of(stored.get('inventory') or {}) \
                if stored else {}
        changed = differences(recorded, identity_of(inventory))
        if changed:
            raise IdentityConflict(
                f'node {node.id} was discovered before as another machine '
                f'({"; ".join(changed)}); if the hardware was replaced, '
                f'clear the node\'s extra/{IDENTITY} (or its stored '
                f'inventory) and replay this dead letter')

    def _check_state(self, credential: Any, node: Any) -> None:
        if node.provision_state not in self.states:
            raise NodeClosed(
                f'node {node.id} is in provision state '
                f'"{node.provision_state}"; discovery writes only nodes in '
                f'{", ".join(sorted(self.states))} (the applier\'s '
                f'"states" option)')
        if not credential.node and not awaits_discovery(node,
                                                        self.baremetal):
            raise NodeClosed(
                f'node {node.id} owns {credential.mac} but does not await '
                f'discovery (it is not in "inspect wait", nor a node '
                f'discovery enrolled): a credential issued for a MAC may '
                f'not write it; issue one for the node instead '
                f'("hwbus-manage issue --node")')


def _which(own: str | None) -> str:
    return f'not of node {own}' if own else 'and this boot is a new machine'
