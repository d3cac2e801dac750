"""BMC credentials into a node, for both appliers; and "manage".

The password reaches Ironic in one node PATCH (or in the node create),
nowhere else: ``Applied.changes`` names the fields, never their values,
and so do the history, the notifications and the log.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from hwbus import bmc, ironic
from hwbus.consumer.appliers import Applied, Context

LOG = logging.getLogger(__name__)

MANAGEABLE, VERIFYING, ENROLL = 'manageable', 'verifying', 'enroll'


def fields(driver: str | None, context: Context,
           settings: Any) -> dict[str, Any]:
    """driver_info for the boot's BMC account on a node of ``driver``
    ({} without an account, or for a driver that reads other fields)."""
    secret = context.bmc_secret
    kind = bmc.family(driver)
    if secret is None or kind is None:
        return {}
    return bmc.driver_info_for(kind, secret, context.inventory,
                               getattr(settings, 'bmc', None))


def set_credentials(baremetal: Any, node: Any, context: Context,
                    settings: Any, result: Applied) -> None:
    """Write the boot's BMC account into ``node``'s driver_info.

    A secret reaches the consumer only when the ramdisk set that password
    on the BMC (hwbus.bmc=create), so the node must get it even if it had
    credentials: they no longer work. That happens only when the issuer
    minted a new password, which it does for a node that holds
    credentials only when [bmc] rotate asks for it.
    """
    if context.bmc_secret is None:
        return
    info = fields(node.driver, context, settings)
    if not info:
        LOG.warning('node %s has hardware type %s, which reads no ipmi_* '
                    'or redfish_* fields: the BMC account of boot %s (user '
                    '%s) is not written to it', node.id, node.driver,
                    context.boot_id, context.bmc_secret.username)
        result.changes.append(f'bmc credentials not set: hardware type '
                              f'{node.driver} reads no ipmi/redfish fields')
        return
    current = node.driver_info or {}
    for key in [k for k in info if k.endswith('_address')]:
        if current.get(key) and current[key] != info[key]:
            # The node's address is the operator's (or its first
            # discovery's); an inventory's claim never moves it.
            LOG.warning('node %s keeps %s %s; boot %s reported %s',
                        node.id, key, current[key], context.boot_id,
                        info[key])
            result.changes.append(f'{key} kept ({current[key]}); the boot '
                                  f'reported {info[key]}')
            del info[key]
    patch = [{'op': 'add', 'path': f'/driver_info/{key}', 'value': value}
             for key, value in info.items()
             if key.endswith('_password') or current.get(key) != value]
    replaced = bmc.has_credentials(node)
    with ironic.calling('node update'):
        baremetal.patch_node(node, patch)
    result.changes.append(
        f'bmc credentials {"replaced" if replaced else "set"} for user '
        f'{context.bmc_secret.username} '
        f'({", ".join(sorted(info))})')


def manage(baremetal: Any, node: Any, timeout: float,
           result: Applied) -> None:
    """Ask Ironic to move ``node`` from enroll to manageable, which makes
    it validate power control through the BMC, and record its verdict.

    Never raises for Ironic's verdict: the inventory is applied whatever
    the BMC says; a refusal is the operator's to look at (the node stays
    in enroll with Ironic's last_error).
    """
    with ironic.calling('node manage'):
        baremetal.set_node_provision_state(node, 'manage')
    deadline = time.monotonic() + timeout
    state, error = VERIFYING, None
    while True:
        with ironic.calling('node get'):
            current = baremetal.get_node(node.id)
        state, error = current.provision_state, current.last_error
        if state != VERIFYING or time.monotonic() >= deadline:
            break
        time.sleep(min(2.0, max(deadline - time.monotonic(), 0.1)))
    if state == MANAGEABLE:
        result.changes.append('manageable (Ironic verified power control)')
    elif state == VERIFYING:
        result.changes.append(f'manage requested; still verifying after '
                              f'{timeout:.0f} s')
    else:
        LOG.warning('node %s did not become manageable: %s (%s)', node.id,
                    state, error)
        result.changes.append(f'manage failed: node is {state}: '
                              f'{str(error or "no error recorded")[:300]}')
