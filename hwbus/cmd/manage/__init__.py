"""hwbus-manage: what an operator does by hand.

    hwbus-manage check
    hwbus-manage db upgrade|version
    hwbus-manage setup-broker [--print-definitions]
    hwbus-manage issue --mac M [--node N] [--ttl 30m]
                       [--bmc create|keep|off] [--format cmdline|ipxe|json]
    hwbus-manage seal-key create --output FILE | show
    hwbus-manage credentials list|revoke BOOT_ID|sweep
    hwbus-manage replay --node N | history --node N
    hwbus-manage dead list|show ID|replay [ID|--reason R|--all]|purge [...]

Configuration comes from /etc/hwbus/hwbus.conf (or --config-file).
Secrets (the boot's password and key) are printed only by ``issue``, on
standard output, for the machine that boots; they never reach the log.

Each subcommand is the module of its name here (``seal-key`` is
``seal_key``): its ``add_parser`` declares its arguments, its ``do_*``
function does it. ``nodes`` finds the node --node names; ``output``
prints tables.
"""

from __future__ import annotations

import sys
from typing import Any

from oslo_config import cfg

from hwbus.cmd import guarded, setup_service
from hwbus.cmd.manage import (
    check,
    credentials,
    db,
    dead,
    history,
    issue,
    replay,
    seal_key,
    setup_broker,
)
from hwbus.conf import CONF

# The subcommands, in the order --help lists them.
COMMANDS = (check, db, setup_broker, issue, seal_key, credentials, replay,
            history, dead)


def add_command_parsers(subparsers: Any) -> None:
    for command in COMMANDS:
        command.add_parser(subparsers)


@guarded
def main(argv: list[str] | None = None) -> int:
    setup_service(argv, [cfg.SubCommandOpt(
        'command', title='Commands', handler=add_command_parsers)])
    try:
        return CONF.command.func()
    except ValueError as exc:  # what the operator typed (a duration, ids)
        print(f'hwbus-manage: {exc}', file=sys.stderr)
        return 2
