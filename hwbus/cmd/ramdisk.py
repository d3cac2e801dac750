"""hwbus-ramdisk: collect this machine and publish it for its one boot.

Runs inside the ramdisk, so argparse and standard logging, no oslo.
"""

from __future__ import annotations

import argparse
import logging
import os
import stat
import sys
from typing import Any

from hwbus import version
from hwbus.ramdisk import main as program


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='hwbus-ramdisk',
        description='Collect the hardware inventory, sign it with this '
                    'boot\'s key and publish it to the broker named on the '
                    'kernel command line, then power off, reboot or hand '
                    'over to ironic-python-agent.')
    parser.add_argument('--cmdline', metavar='TEXT',
                        help='kernel parameters to use instead of '
                             '/proc/cmdline (hwbus.url, hwbus.boot, '
                             'hwbus.key, ...)')
    parser.add_argument('--root', default='/', metavar='DIR',
                        help='collect a recorded machine instead of this '
                             'one (as hwbus-collect --root)')
    parser.add_argument('--after', choices=('poweroff', 'reboot', 'agent',
                                            'none'),
                        help='override hwbus.after')
    parser.add_argument('--collectors', metavar='NAME[,NAME...]',
                        help='run only these collectors')
    parser.add_argument('--deadline', type=float, metavar='SECONDS',
                        help='override hwbus.deadline for the publish')
    parser.add_argument('--console', metavar='FILE',
                        help='also log to this file (/dev/console)')
    parser.add_argument('--debug', action='store_true')
    parser.add_argument('--version', action='version',
                        version=f'%(prog)s {version.version_string()}')
    return parser


def same_device(stream: Any, path: str) -> bool:
    """Whether ``stream`` already writes to ``path``: /init's stderr is
    the console, and a second handler on it printed every line twice."""
    try:
        mine, theirs = os.fstat(stream.fileno()), os.stat(path)
    except (OSError, ValueError, AttributeError):
        return False
    if stat.S_ISCHR(mine.st_mode) and stat.S_ISCHR(theirs.st_mode):
        return mine.st_rdev == theirs.st_rdev
    return (mine.st_dev, mine.st_ino) == (theirs.st_dev, theirs.st_ino)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if args.console and not same_device(sys.stderr, args.console):
        try:
            handlers.append(logging.FileHandler(args.console, mode='a'))
        except OSError as exc:
            print(f'hwbus-ramdisk: cannot log to {args.console}: {exc}',
                  file=sys.stderr)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format='hwbus-ramdisk: %(asctime)s %(levelname)s %(message)s',
        handlers=handlers)
    # pika logs every reconnect at WARNING and worse; ours say it better.
    logging.getLogger('pika').setLevel(
        logging.DEBUG if args.debug else logging.CRITICAL)
    if args.cmdline is not None:
        cmdline = args.cmdline
    else:
        with open('/proc/cmdline', encoding='utf-8') as f:
            cmdline = f.read()
    names = ([n.strip() for n in args.collectors.split(',') if n.strip()]
             if args.collectors else None)
    return program.run(cmdline, root=args.root, after_action=args.after,
                       names=names, deadline=args.deadline)


if __name__ == '__main__':
    sys.exit(main())
