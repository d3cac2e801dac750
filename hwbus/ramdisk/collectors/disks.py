"""Block devices Ironic can deploy to.

The device list and sizes come from /sys/block, so they are right even
where lsblk is missing or too old. Identity (model, serial, WWN, transport)
comes from one ``lsblk --json`` run, as in ironic-python-agent, and the
udev database adds the WWN extension and the by-path name where udev runs.
"""

from __future__ import annotations

import json
import re
from typing import Any

from hwbus.ramdisk.collectors.base import Contribution, Options, to_int
from hwbus.ramdisk.probes.sysroot import CommandError, SystemRoot

# Kernel devices that are never hardware an operator deploys to.
_VIRTUAL_RE = re.compile(r'^(loop|ram|zram|nbd|fd|sr|dm-|drbd|rbd)\d*')
# The smallest disk ironic-python-agent picks as the root disk: 4 GiB.
ROOT_DISK_MIN_BYTES = 4 * 2**30
_LSBLK_COLUMNS = ('KNAME,TYPE,MODEL,SIZE,ROTA,SERIAL,WWN,VENDOR,HCTL,'
                  'LOG-SEC,PHY-SEC,TRAN,RM,RO')


def _lsblk(root: SystemRoot, errors: list[str]) -> dict[str, dict]:
    """lsblk's view by kernel name; empty when lsblk cannot tell."""
    try:
        result = root.run('lsblk', ['lsblk', '--json', '--bytes', '--all',
                                    '--nodeps', '-o', _LSBLK_COLUMNS])
    except CommandError as exc:
        errors.append(f'lsblk: {exc}')
        return {}
    if not result.ok:
        errors.append(f'lsblk exited {result.returncode}: '
                      f'{result.stderr.strip()[:200]}')
        return {}
    try:
        devices = json.loads(result.stdout)['blockdevices']
        return {d['kname']: d for d in devices
                if isinstance(d, dict) and d.get('kname')}
    except (ValueError, KeyError, TypeError) as exc:
        errors.append(f'lsblk printed no usable JSON: {exc}')
        return {}


def _udev(root: SystemRoot, name: str) -> dict[str, str]:
    """udev's properties for a block device (E: lines of its db entry)."""
    dev = root.read(f'/sys/block/{name}/dev')
    if not dev:
        return {}
    props = {}
    for line in (root.read(f'/run/udev/data/b{dev}') or '').splitlines():
        if line.startswith('E:'):
            key, _, value = line[2:].partition('=')
            props[key] = value
    return props


def _text(value: Any) -> str | None:
    """lsblk's strings, trimmed; None for empty or JSON null."""
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def _flag(value: Any) -> bool | None:
    """lsblk JSON booleans: true/false, or "1"/"0" before util-linux 2.33."""
    if isinstance(value, bool):
        return value
    if value in ('1', '0'):
        return value == '1'
    return None


def _is_candidate(root: SystemRoot, name: str) -> bool:
    if _VIRTUAL_RE.match(name):
        return False
    # Software RAID has no device link but is a disk Ironic can use.
    return name.startswith('md') or root.exists(f'/sys/block/{name}/device')


def _by_path(root: SystemRoot, udev: dict[str, str],
             links: dict[str, str], name: str) -> str | None:
    if udev.get('ID_PATH'):
        return f'/dev/disk/by-path/{udev["ID_PATH"]}'
    return links.get(name)


def _by_path_links(root: SystemRoot) -> dict[str, str]:
    links: dict[str, str] = {}
    for entry in root.listdir('/dev/disk/by-path'):
        target = root.readlink(f'/dev/disk/by-path/{entry}')
        if target and '-part' not in entry:
            links.setdefault(target.rsplit('/', 1)[-1],
                             f'/dev/disk/by-path/{entry}')
    return links


def _disk(root: SystemRoot, name: str, lsblk: dict[str, Any],
          udev: dict[str, str], links: dict[str, str]) -> dict[str, Any]:
    base = f'/sys/block/{name}'
    size = (to_int(root.read(f'{base}/size')) or 0) * 512
    rotational = _flag(lsblk.get('rota'))
    if rotational is None:
        rotational = root.read(f'{base}/queue/rotational') == '1'
    log_sec = to_int(str(lsblk.get('log-sec') or '')) or to_int(
        root.read(f'{base}/queue/logical_block_size'))
    phy_sec = to_int(str(lsblk.get('phy-sec') or '')) or to_int(
        root.read(f'{base}/queue/physical_block_size'))
    return {
        'name': f'/dev/{name}',
        'model': _text(lsblk.get('model')) or _text(
            root.read(f'{base}/device/model')),
        'size': size,
        'rotational': rotational,
        'wwn': _text(udev.get('ID_WWN')) or _text(lsblk.get('wwn')),
        'wwn_with_extension': _text(udev.get('ID_WWN_WITH_EXTENSION')),
        'wwn_vendor_extension': _text(udev.get('ID_WWN_VENDOR_EXTENSION')),
        'serial': (_text(udev.get('ID_SERIAL_SHORT'))
                   or _text(lsblk.get('serial'))
                   or _text(root.read(f'{base}/device/serial'))),
        'vendor': _text(lsblk.get('vendor')) or _text(
            root.read(f'{base}/device/vendor')),
        'hctl': _text(lsblk.get('hctl')),
        'by_path': _by_path(root, udev, links, name),
        'logical_sectors': log_sec,
        'physical_sectors': phy_sec,
        'tran': _text(lsblk.get('tran')),
    }


def _details(root: SystemRoot, name: str,
             lsblk: dict[str, Any]) -> dict[str, Any]:
    base = f'/sys/block/{name}'
    nvme = None
    if name.startswith('nvme'):
        nvme = {
            'controller': root.link_name(f'{base}/device'),
            'model': _text(root.read(f'{base}/device/model')),
            'firmware_revision': _text(
                root.read(f'{base}/device/firmware_rev')),
            'serial': _text(root.read(f'{base}/device/serial')),
        }
    removable = _flag(lsblk.get('rm'))
    read_only = _flag(lsblk.get('ro'))
    return {
        'name': f'/dev/{name}',
        'firmware_revision': (_text(root.read(f'{base}/device/rev'))
                              or (nvme or {}).get('firmware_revision')),
        'removable': (root.read(f'{base}/removable') == '1'
                      if removable is None else removable),
        'read_only': (root.read(f'{base}/ro') == '1'
                      if read_only is None else read_only),
        'nvme': nvme,
        'holders': root.listdir(f'{base}/holders'),
    }


def guess_root_disk(disks: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The disk ironic-python-agent deploys to without root device hints.

    Smallest first, then by name, the first of at least 4 GiB: reported so
    that inspection and deployment agree on the root disk.
    """
    fitting = [d for d in disks if d['size'] >= ROOT_DISK_MIN_BYTES]
    if not fitting:
        return None
    return min(fitting, key=lambda d: (d['size'], d['name']))


def collect(root: SystemRoot, options: Options) -> Contribution:
    """The inventory ``disks``; plugin_data ``disk_details``, ``root_disk``."""
    errors: list[str] = []
    names = [n for n in root.listdir('/sys/block') if _is_candidate(root, n)]
    lsblk = _lsblk(root, errors) if names else {}
    links = _by_path_links(root)
    disks, details = [], []
    for name in names:
        info = lsblk.get(name, {})
        kind = _text(info.get('type'))
        if kind and kind != 'disk' and not kind.startswith(
                ('raid', 'mpath')):
            continue
        disk = _disk(root, name, info, _udev(root, name), links)
        if not disk['size']:
            continue
        disks.append(disk)
        details.append(_details(root, name, info))
    return Contribution(
        inventory={'disks': disks},
        plugin_data={'disk_details': details,
                     'root_disk': guess_root_disk(disks)},
        errors=errors)
