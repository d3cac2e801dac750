"""hwbus-collect: print this machine's hardware document, publish nothing.

The first thing a new user runs, and the way to record a machine for a
test (``--record DIR``) or replay one (``--root DIR``). It runs in the
ramdisk too, so it uses argparse and the standard library's logging rather
than oslo.config and oslo.log.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from hwbus import inventory, version
from hwbus.inventory import render
from hwbus.ramdisk.collectors import runner
from hwbus.ramdisk.collectors.base import Options
from hwbus.ramdisk.probes.sysroot import DEFAULT_COMMAND_TIMEOUT, SystemRoot


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog='hwbus-collect',
        description='Collect this machine\'s hardware inventory in the '
                    'ironic-python-agent format and print it.')
    parser.add_argument('--root', metavar='DIR', default='/',
                        help='replay a recorded machine instead of reading '
                             'this one (DIR/proc, DIR/sys, DIR/cmd/*.out)')
    parser.add_argument('--record', metavar='DIR',
                        help='also record everything read into DIR, in the '
                             'layout --root replays')
    parser.add_argument('--format', choices=render.FORMATS, default='json',
                        help='output format (default: json)')
    parser.add_argument('--collectors', metavar='NAME[,NAME...]',
                        help='run only these collectors (default: all '
                             'installed); --list-collectors shows them')
    parser.add_argument('--version', action='version',
                        version=f'%(prog)s {version.version_string()}')
    parser.add_argument('--list-collectors', action='store_true',
                        help='list installed collectors and exit')
    parser.add_argument('--lldp-timeout', type=float, default=0.0,
                        metavar='SECONDS',
                        help='listen for LLDP on all up ports for this '
                             'long (default: 0, off)')
    parser.add_argument('--include-usb-nics', action='store_true',
                        help='list USB network devices as interfaces')
    parser.add_argument('--bootif', metavar='MAC',
                        help='the MAC this machine booted from (default: '
                             'BOOTIF on the kernel command line)')
    parser.add_argument('--command-timeout', type=float,
                        default=DEFAULT_COMMAND_TIMEOUT, metavar='SECONDS',
                        help='kill any tool that runs longer than this')
    parser.add_argument('--deadline', type=float,
                        default=runner.DEFAULT_DEADLINE,
                        metavar='SECONDS',
                        help='stop waiting for collectors after this long')
    parser.add_argument('--output', '-o', metavar='FILE',
                        help='write the document to FILE instead of stdout')
    parser.add_argument('--strict', action='store_true',
                        help='exit with status 3 when any collector '
                             'recorded an error')
    parser.add_argument('--debug', action='store_true',
                        help='log every step on stderr')
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format='%(asctime)s %(levelname)s %(name)s: %(message)s',
        stream=sys.stderr)

    if args.list_collectors:
        for name, entry in sorted(runner.available().items()):
            print(f'{name:12} {entry.value}')
        return 0
    if args.record and args.root != '/':
        print('hwbus-collect: --record reads the live system; it cannot '
              'be combined with --root', file=sys.stderr)
        return 2
    if args.root != '/' and not os.path.isdir(args.root):
        print(f'hwbus-collect: no recorded machine at {args.root}',
              file=sys.stderr)
        return 2

    root = SystemRoot(args.root, record_to=args.record,
                      command_timeout=args.command_timeout)
    options = Options(lldp_timeout=args.lldp_timeout,
                      include_usb_nics=args.include_usb_nics,
                      bootif=args.bootif)
    names = ([n.strip() for n in args.collectors.split(',') if n.strip()]
             if args.collectors else None)
    try:
        document = runner.collect(root, options, names,
                                  deadline=args.deadline)
    except runner.UnknownCollector as exc:
        print(f'hwbus-collect: {exc}', file=sys.stderr)
        return 2

    problems = inventory.problems_once(document)
    if problems:
        # collect() repairs what collectors break; reaching this is a bug.
        print('hwbus-collect: the document does not match the schema:\n  '
              + '\n  '.join(problems), file=sys.stderr)
    try:
        text = render.render(document, args.format)
    except RuntimeError as exc:
        print(f'hwbus-collect: {exc}', file=sys.stderr)
        return 2
    if args.output:
        with open(args.output, 'w', encoding='utf-8') as f:
            f.write(text + '\n')
    else:
        try:
            print(text, flush=True)
        except BrokenPipeError:
            # The reader (head, less) has what it wanted: not an error.
            # Later writes to the closed pipe are silenced.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
    for error in document['plugin_data']['errors']:
        logging.getLogger('hwbus.collect').info(
            '%s: %s', error['collector'], error['message'])
    if problems:
        return 1
    if args.strict and document['plugin_data']['errors']:
        return 3
    return 0


if __name__ == '__main__':
    sys.exit(main())
