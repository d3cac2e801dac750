"""hwbus-manage seal-key create|show: the consumer's X25519 key that BMC
passwords are sealed to."""

from __future__ import annotations

import os
import sys
from typing import Any

from hwbus.cmd import wiring
from hwbus.conf import CONF


def add_parser(subparsers: Any) -> None:
    seal = subparsers.add_parser(
        'seal-key', help='the consumer\'s X25519 key that BMC passwords are '
                         'sealed to')
    seal.add_argument('action', choices=['create', 'show'],
                      help='create: write a new private key (mode 0600) '
                           'and print its public key; show: print the '
                           'public key of [sealing]')
    seal.add_argument('--output', help='file for the new private key')
    seal.set_defaults(func=do_seal_key)


def do_seal_key() -> int:
    """Create the consumer's sealing key, or print its public half."""
    from hwbus import keys, sealing

    if CONF.command.action == 'create':
        path = CONF.command.output
        if not path:
            print('hwbus-manage seal-key create: give --output FILE (then '
                  'set [sealing] private_key_file to it)', file=sys.stderr)
            return 2
        key = sealing.new_private_key()
        try:
            # O_EXCL: never overwrite a key that sealed secrets still open
            # with; 0600: the consumer's secret.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            print(f'hwbus-manage seal-key create: {path} exists; a key in '
                  f'use is never overwritten (rotate: create a new file, '
                  f'move the old one to [sealing] previous_key_files)',
                  file=sys.stderr)
            return 1
        with os.fdopen(fd, 'wb') as f:
            f.write(sealing.private_pem(key))
        print(keys.b64encode(sealing.public_bytes(key)))
        return 0
    public = wiring.seal_public()
    if public is None:
        print('hwbus-manage seal-key show: no key: set [sealing] '
              'private_key_file or public_key', file=sys.stderr)
        return 1
    print(keys.b64encode(public))
    return 0
