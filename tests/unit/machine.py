"""Building small recorded machines for collector tests."""

from __future__ import annotations

import json
import os
import pathlib

from hwbus.ramdisk.probes.sysroot import SystemRoot


class Machine:
    """A recording directory written by hand, in the --record layout."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path
        (path / 'cmd').mkdir(parents=True, exist_ok=True)

    def file(self, where: str, text: str | bytes = '') -> Machine:
        dest = self.path / where.lstrip('/')
        dest.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            dest.write_bytes(text)
        else:
            dest.write_text(text)
        return self

    def files(self, base: str, values: dict[str, str]) -> Machine:
        for name, text in values.items():
            self.file(f'{base}/{name}', text + '\n')
        return self

    def link(self, where: str, target: str) -> Machine:
        dest = self.path / where.lstrip('/')
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, dest)
        return self

    def dir(self, where: str) -> Machine:
        (self.path / where.lstrip('/')).mkdir(parents=True, exist_ok=True)
        return self

    def cmd(self, name: str, out: str, rc: int = 0,
            err: str = '') -> Machine:
        (self.path / 'cmd' / f'{name}.out').write_text(out)
        if rc:
            (self.path / 'cmd' / f'{name}.rc').write_text(f'{rc}\n')
        if err:
            (self.path / 'cmd' / f'{name}.err').write_text(err)
        return self

    def probe(self, name: str, value: object) -> Machine:
        (self.path / 'cmd' / f'{name}.json').write_text(json.dumps(value))
        return self

    def timeout(self, name: str) -> Machine:
        (self.path / 'cmd' / f'{name}.timeout').write_text('')
        return self

    def nic(self, name: str, mac: str, pci: str = '0000:3b:00.0',
            driver: str = 'i40e', vendor: str = '0x8086',
            device: str = '0x1572', carrier: str = '1', speed: str = '10000',
            usb: bool = False, link_type: str = '1',
            numa: str = '0') -> Machine:
        if usb:
            devpath = '/sys/devices/pci0000:00/0000:00:14.0/usb1/1-3/1-3:1.0'
        else:
            devpath = f'/sys/devices/pci0000:3a/0000:3a:00.0/{pci}'
        self.files(devpath, {'vendor': vendor, 'device': device,
                             'numa_node': numa})
        self.link(f'{devpath}/driver', f'../../../../bus/pci/drivers/{driver}')
        if not usb:
            self.link(f'/sys/bus/pci/devices/{pci}',
                      f'../../../devices/pci0000:3a/0000:3a:00.0/{pci}')
        netdir = f'{devpath}/net/{name}'
        self.files(netdir, {'address': mac, 'carrier': carrier,
                            'speed': speed, 'type': link_type, 'mtu': '1500',
                            'operstate': 'up' if carrier == '1' else 'down',
                            'duplex': 'full'})
        # The kernel writes these links un-normalised, ending in the name.
        self.link(f'{netdir}/device',
                  '../../../' + os.path.basename(devpath))
        self.link(f'/sys/class/net/{name}',
                  os.path.relpath(netdir, '/sys/class/net'))
        return self

    def root(self) -> SystemRoot:
        return SystemRoot(str(self.path))


def json_paths(node, list_items: int | None = None, path=()):
    """Every path into a JSON document, root first; at most ``list_items``
    items of each list (all when None). For mutation tests."""
    yield path
    if isinstance(node, dict):
        for key, value in node.items():
            yield from json_paths(value, list_items, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node[:list_items]):
            yield from json_paths(value, list_items, (*path, index))
