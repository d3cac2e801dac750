"""hwbus-manage history --node N: a node's hardware changes between
boots."""

from __future__ import annotations

from typing import Any

from hwbus.cmd import wiring
from hwbus.cmd.manage.nodes import node_uuid
from hwbus.conf import CONF


def add_parser(subparsers: Any) -> None:
    hist = subparsers.add_parser(
        'history', help='hardware changes of a node between boots')
    hist.add_argument('--node', required=True)
    hist.add_argument('--limit', type=int, default=20)
    hist.set_defaults(func=do_history)


def do_history() -> int:
    """What changed in a node's hardware from one boot to the next."""
    from hwbus.consumer import history

    node = node_uuid(CONF.command.node)
    # One more than shown: the oldest row shown is then compared with the
    # boot before it, and only the very first is "first inventory".
    records = list(reversed(wiring.store().inventories(
        node=node, limit=CONF.command.limit + 1)))
    if not records:
        print(f'no archived inventory for node {CONF.command.node}')
        return 0
    previous = None
    if len(records) > CONF.command.limit:
        previous = history.document_of(records.pop(0))
    for record in records:
        document = history.document_of(record)
        when = record.applied_at.isoformat(timespec='seconds')
        if previous is None:
            print(f'{when} boot {record.boot_id}: first inventory')
        else:
            changes = history.diff(previous, document) or ['no change']
            print(f'{when} boot {record.boot_id}:')
            for line in changes:
                print(f'    {line}')
        for line in history.applied_changes(record):
            print(f'    applied: {line}')
        previous = document
    return 0
