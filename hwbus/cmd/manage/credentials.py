"""hwbus-manage credentials list|revoke|sweep: the per-boot
credentials."""

from __future__ import annotations

import json
from typing import Any

from hwbus.cmd import wiring
from hwbus.cmd.manage import output
from hwbus.conf import CONF
from hwbus.store import State


def add_parser(subparsers: Any) -> None:
    creds = subparsers.add_parser('credentials', help='per-boot credentials')
    actions = creds.add_subparsers(dest='action', required=True)
    listing = actions.add_parser('list')
    listing.add_argument('--state', action='append',
                         choices=[s.value for s in State])
    listing.add_argument('--mac')
    listing.add_argument('--node')
    listing.add_argument('--format', choices=['table', 'json'],
                         default='table')
    revoke = actions.add_parser('revoke')
    revoke.add_argument('boot_id', nargs='+')
    actions.add_parser('sweep')
    creds.set_defaults(func=do_credentials)


def do_credentials() -> int:
    action = CONF.command.action
    if action == 'list':
        store = wiring.store()
        wanted = set(CONF.command.state or [])
        # An issued credential past its expiry lists as expired even
        # before a sweep: ask the store for both, filter what is shown.
        states = [State(s) for s in wanted | (
            {State.ISSUED.value} if State.EXPIRED.value in wanted else set())]
        rows = [c.to_dict() for c in store.list(
            states=states, mac=CONF.command.mac, node=CONF.command.node)]
        rows = [r for r in rows if not wanted or r['state'] in wanted]
        if CONF.command.format == 'json':
            print(json.dumps(rows, indent=2))
        else:
            print(output.table(rows, ['boot_id', 'username', 'state',
                                      'mac', 'node', 'expires_at',
                                      'issued_by']))
        return 0
    credentials = wiring.credentials()
    if action == 'revoke':
        for boot_id in CONF.command.boot_id:
            credential = credentials.revoke(boot_id)
            print(f'{boot_id}: {credential.state}, broker user '
                  f'{credential.username} deleted')
        return 0
    result = credentials.sweep()
    print(f'expired {len(result.expired)}, finished '
          f'{len(result.finished)} revocations, deleted '
          f'{len(result.orphans)} orphan broker users')
    return 0
