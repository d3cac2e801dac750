"""hwbus-manage replay --node N: re-apply a node's last archived
inventory."""

from __future__ import annotations

import sys
from typing import Any

from hwbus.cmd import wiring
from hwbus.cmd.manage.nodes import node_uuid
from hwbus.conf import CONF


def add_parser(subparsers: Any) -> None:
    replay = subparsers.add_parser(
        'replay', help='re-apply the last archived inventory of a node')
    replay.add_argument('--node', required=True)
    replay.set_defaults(func=do_replay)


def _archived_properties(record: Any) -> dict[str, Any]:
    from hwbus import envelope

    return {'content_type': envelope.CONTENT_TYPE,
            'content_encoding': record.content_encoding,
            'user_id': record.user_id, 'message_id': record.message_id,
            'headers': {envelope.HEADER_BOOT: record.boot_id,
                        envelope.HEADER_SIGNATURE: record.signature}}


def do_replay() -> int:
    """Re-apply the last archived inventory of a node (verified again)."""
    store = wiring.store()
    records = store.inventories(node=node_uuid(CONF.command.node),
                                limit=1)
    if not records:
        print(f'hwbus-manage: no archived inventory for node '
              f'{CONF.command.node}', file=sys.stderr)
        return 1
    record = records[0]
    outcome = wiring.pipeline().process(
        record.body, _archived_properties(record), replay=True)
    print(f'{record.message_id} (boot {record.boot_id}): {outcome.kind}'
          f'{" " + outcome.reason if outcome.reason else ""}'
          f'{" " + outcome.detail if outcome.detail else ""}')
    return 0 if outcome.kind == 'applied' else 1
