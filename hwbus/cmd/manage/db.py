"""hwbus-manage db upgrade|version: the store's schema."""

from __future__ import annotations

from typing import Any

from hwbus.cmd import wiring
from hwbus.conf import CONF
from hwbus.store import Store


def add_parser(subparsers: Any) -> None:
    db = subparsers.add_parser('db', help='store schema')
    db.add_argument('action', choices=['upgrade', 'version'])
    db.set_defaults(func=do_db)


def do_db() -> int:
    store = Store(CONF.database.connection, auto_upgrade=False) \
        if CONF.command.action == 'version' else wiring.store()
    if CONF.command.action == 'upgrade':
        store.upgrade()
    print(store.revision() or 'empty')
    return 0
