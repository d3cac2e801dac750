"""A network namespace joined to this host by a veth pair.

A process run inside it (``wrap``) reaches the host only through the
veth, at ``host_ip``; servers that must be reachable from it listen on
that address. ``cut()`` takes the namespace's end down, as a pulled
cable would: connections stall, nothing is reset. Needs root.
"""

from __future__ import annotations

import secrets
import subprocess


def _ip(*args: str) -> None:
    subprocess.run(['ip', *args], check=True, capture_output=True,
                   timeout=30)


class Namespace:
    def __init__(self) -> None:
        tag = secrets.token_hex(3)
        self.name = f'hwbus-{tag}'
        self.host_dev, self.ns_dev = f'hwb{tag}h', f'hwb{tag}n'
        net = 16 + secrets.randbelow(200)
        self.host_ip, self.ns_ip = f'10.213.{net}.1', f'10.213.{net}.2'

    def create(self) -> Namespace:
        _ip('netns', 'add', self.name)
        _ip('link', 'add', self.host_dev, 'type', 'veth', 'peer', 'name',
            self.ns_dev, 'netns', self.name)
        _ip('addr', 'add', f'{self.host_ip}/30', 'dev', self.host_dev)
        _ip('link', 'set', self.host_dev, 'up')
        _ip('-n', self.name, 'addr', 'add', f'{self.ns_ip}/30', 'dev',
            self.ns_dev)
        _ip('-n', self.name, 'link', 'set', self.ns_dev, 'up')
        _ip('-n', self.name, 'link', 'set', 'lo', 'up')
        return self

    def wrap(self) -> tuple[str, ...]:
        return ('ip', 'netns', 'exec', self.name)

    def cut(self) -> None:
        _ip('-n', self.name, 'link', 'set', self.ns_dev, 'down')

    def restore(self) -> None:
        _ip('-n', self.name, 'link', 'set', self.ns_dev, 'up')

    def destroy(self) -> None:
        subprocess.run(['ip', 'netns', 'del', self.name], check=False,
                       capture_output=True, timeout=30)
