"""hwbus-manage issue: a credential for one boot, as kernel parameters.

The parameters hold the boot's password and key: they are printed on
standard output (or written into the node's driver_info) and never
logged.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from hwbus.cmd import wiring
from hwbus.cmd.manage.nodes import find_node
from hwbus.conf import CONF


def add_parser(subparsers: Any) -> None:
    issue = subparsers.add_parser(
        'issue', help='issue a credential for one boot and print its kernel '
                      'parameters (they hold secrets)')
    issue.add_argument('--mac', help='MAC the machine boots from')
    issue.add_argument('--node', help='Ironic node name or UUID')
    issue.add_argument('--ttl', help='validity, e.g. 30m (default: '
                                     '[credentials] ttl)')
    issue.add_argument('--after', choices=['poweroff', 'reboot', 'agent',
                                           'none'],
                       help='after-action (default: [ramdisk] after)')
    issue.add_argument('--format', choices=['cmdline', 'ipxe', 'json'],
                       default='cmdline')
    issue.add_argument('--write-node', action='store_true',
                       help='write the parameters into the node\'s '
                            'driver_info/kernel_append_params instead of '
                            'printing them, so that Ironic\'s own '
                            'inspection boots the hwbus ramdisk')
    issue.add_argument('--bmc', dest='bmc_mode',
                       choices=['create', 'keep', 'off'],
                       help='the BMC user for this boot (default: [bmc] '
                            'account, keeping the credentials of a node '
                            'that has some unless [bmc] rotate)')
    issue.set_defaults(func=do_issue)


def parse_duration(text: str) -> int:
    """Seconds from "90", "90s", "30m", "12h" or "2d"."""
    match = re.fullmatch(r'\s*(\d+)\s*([smhd]?)\s*', text)
    if not match:
        raise ValueError(f'{text!r} is not a duration like 30m or 3600')
    return int(match.group(1)) * {'': 1, 's': 1, 'm': 60, 'h': 3600,
                                  'd': 86400}[match.group(2)]


def do_issue() -> int:
    credentials = wiring.credentials()
    ttl = parse_duration(CONF.command.ttl) if CONF.command.ttl \
        else CONF.credentials.ttl
    if CONF.command.write_node and not CONF.command.node:
        print('hwbus-manage issue: --write-node needs --node',
              file=sys.stderr)
        return 2
    if not (CONF.command.mac or CONF.command.node):
        print('hwbus-manage issue: give --mac, --node or both',
              file=sys.stderr)
        return 2
    node: tuple[Any, Any] | None = None
    if CONF.command.write_node:
        # Find the node first: a credential for a node that does not
        # exist would stay live for nothing.
        node = find_node(CONF.command.node)
    issued = credentials.issue(
        mac=CONF.command.mac, node=CONF.command.node, ttl=ttl,
        after=CONF.command.after or CONF.ramdisk.after,
        lldp=CONF.ramdisk.lldp_timeout, bmc=_bmc_mode(node))
    record = issued.credential.to_dict()
    if CONF.command.write_node:
        try:
            _write_node(node or find_node(CONF.command.node),
                        issued.cmdline)
        except Exception:
            credentials.revoke(record['boot_id'])
            raise
        print(f'wrote the hwbus parameters of boot {record["boot_id"]} to '
              f'node {CONF.command.node} driver_info/kernel_append_params')
        return 0
    fmt = CONF.command.format
    if fmt == 'cmdline':
        print(issued.cmdline)
    elif fmt == 'ipxe':
        print('#!ipxe')
        print(f'# hwbus boot {record["boot_id"]}, expires '
              f'{record["expires_at"]}')
        print(f'set hwbus_args {issued.cmdline}')
    else:
        print(json.dumps({**record, 'kernel_params': issued.cmdline},
                         indent=2))
    return 0


def _bmc_mode(found: tuple[Any, Any] | None) -> str | None:
    """hwbus.bmc= for this boot: --bmc, else [bmc] account with the
    rotation rule applied to the node (--node, or the node owning
    --mac)."""
    from hwbus import binding, bmc

    asked = CONF.command.bmc_mode
    if asked is not None:
        return None if asked == 'off' else asked
    account, rotate = CONF.bmc.account, CONF.bmc.rotate
    if account == 'off':
        return None
    if CONF.command.node:
        node = (found or find_node(CONF.command.node))[1]
        return bmc.issue_mode(account, rotate, node)
    from hwbus.credentials import normalize_mac

    rule = binding.Binding(wiring.ironic_connection(), ())
    return rule.bmc_mode_for(normalize_mac(CONF.command.mac), account,
                             rotate)


def _write_node(found: tuple[Any, Any], cmdline: str) -> None:
    """Put the boot's parameters where Ironic's own boot will pass them.

    Existing kernel_append_params are kept, older hwbus.* words replaced.
    They hold this boot's password and key until the credential is used
    or expires, readable to whoever may read the node's driver_info.
    """
    from hwbus import ironic

    baremetal, node = found
    current = (node.driver_info or {}).get('kernel_append_params') or ''
    kept = [w for w in current.split() if not w.startswith('hwbus.')]
    with ironic.calling('node update'):
        baremetal.patch_node(node, [{
            'op': 'add', 'path': '/driver_info/kernel_append_params',
            'value': ' '.join([*kept, cmdline])}])
