"""hwbus-manage dead list|show|replay|purge: the dead letters."""

from __future__ import annotations

import json
import sys
from typing import Any

from hwbus.cmd import wiring
from hwbus.cmd.manage import output
from hwbus.conf import CONF


def add_parser(subparsers: Any) -> None:
    dead = subparsers.add_parser('dead', help='dead letters')
    dead_actions = dead.add_subparsers(dest='action', required=True)
    dead_list = dead_actions.add_parser('list')
    dead_list.add_argument('--format', choices=['table', 'json'],
                           default='table')
    dead_show = dead_actions.add_parser('show')
    dead_show.add_argument('ids', nargs='+', metavar='ID')
    for name in ('replay', 'purge'):
        sub = dead_actions.add_parser(name)
        sub.add_argument('ids', nargs='*', metavar='ID',
                         help='message ids or boot ids')
        sub.add_argument('--reason', help='only dead letters of this reason')
        sub.add_argument('--all', action='store_true')
    dead.set_defaults(func=do_dead)


def do_dead() -> int:
    from hwbus.consumer import deadletters

    box = deadletters.DeadLetters(wiring.consumer_urls(),
                                  CONF.broker.dead_queue)
    try:
        action = CONF.command.action
        if action == 'show':
            ids = set(CONF.command.ids)
            shown = [d.full(CONF.broker.max_message_size) for d in box.list()
                     if ids & {d.message_id, d.boot_id}]
            if not shown:
                print(f'hwbus-manage: no dead letter with message or boot id '
                      f'{", ".join(sorted(ids))} ("hwbus-manage dead list" '
                      f'shows them)', file=sys.stderr)
                return 1
            print(json.dumps(shown, indent=2, default=str))
            return 0
        if action == 'list':
            rows = [d.row() for d in box.list()]
            if CONF.command.format == 'json':
                print(json.dumps(rows, indent=2))
            else:
                print(output.table(rows, ['message_id', 'reason',
                                          'user_id', 'dead_at', 'size',
                                          'detail']))
            return 0
        match = deadletters.matcher(CONF.command.ids, CONF.command.reason,
                                    CONF.command.all)
        if action == 'purge':
            gone = box.purge(match)
            print(f'purged {len(gone)} dead letters')
            return 0
        results = box.replay(match, wiring.pipeline())
        for dead, outcome in results:
            print(f'{dead.message_id}: {outcome.kind}'
                  f'{" " + outcome.reason if outcome.reason else ""}')
        return 0 if all(o.kind == 'applied' for _, o in results) else 1
    finally:
        box.close()
