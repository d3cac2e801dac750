"""The disks collector: sysfs, lsblk and udev, and the root disk guess."""

import json

from hwbus.ramdisk.collectors import disks
from hwbus.ramdisk.collectors.base import Options
from tests.unit.machine import Machine

GIB = 2**30


def _disk(m, name, sectors, rotational='0', dev='8:0'):
    base = f'/sys/devices/pci0000:00/0000:00:17.0/ata1/host0/{name}'
    m.files(f'/sys/block/{name}', {'size': str(sectors), 'dev': dev,
                                   'removable': '0', 'ro': '0'})
    m.files(f'/sys/block/{name}/queue',
            {'rotational': rotational, 'logical_block_size': '512',
             'physical_block_size': '4096'})
    m.files(f'/sys/block/{name}/device', {'model': 'SAMSUNG MZ7LH480',
                                          'vendor': 'ATA', 'rev': 'HXT7'})
    del base
    return m


def _lsblk(*devices):
    return json.dumps({'blockdevices': list(devices)})


def test_sizes_types_and_identity(tmp_path):
    m = Machine(tmp_path)
    _disk(m, 'sda', 937703088)
    _disk(m, 'sdb', 3907029168, rotational='1', dev='8:16')
    m.files('/sys/block/loop0', {'size': '100'})
    m.files('/sys/block/zram0', {'size': '100'})
    m.cmd('lsblk', _lsblk(
        {'kname': 'sda', 'type': 'disk', 'model': 'SAMSUNG MZ7LH480HAHQ',
         'size': 937703088 * 512, 'rota': False, 'serial': 'S45PNA0M',
         'wwn': '0x5002538e40a1b2c3', 'vendor': 'ATA     ',
         'hctl': '0:0:0:0', 'log-sec': 512, 'phy-sec': 4096,
         'tran': 'sata', 'rm': False, 'ro': False},
        {'kname': 'sdb', 'type': 'disk', 'model': 'ST2000NM0055',
         'size': 3907029168 * 512, 'rota': True, 'serial': 'ZC20ABCD',
         'wwn': None, 'vendor': 'ATA', 'hctl': '1:0:0:0', 'log-sec': 512,
         'phy-sec': 4096, 'tran': 'sas', 'rm': False, 'ro': False}))
    m.file('/run/udev/data/b8:0',
           'E:ID_WWN=0x5002538e40a1b2c3\n'
           'E:ID_WWN_WITH_EXTENSION=0x5002538e40a1b2c3\n'
           'E:ID_SERIAL_SHORT=S45PNA0M\n'
           'E:ID_PATH=pci-0000:00:17.0-ata-1\n')
    part = disks.collect(m.root(), Options())
    sda, sdb = part.inventory['disks']
    assert sda == {
        'name': '/dev/sda', 'model': 'SAMSUNG MZ7LH480HAHQ',
        'size': 937703088 * 512, 'rotational': False,
        'wwn': '0x5002538e40a1b2c3',
        'wwn_with_extension': '0x5002538e40a1b2c3',
        'wwn_vendor_extension': None, 'serial': 'S45PNA0M',
        'vendor': 'ATA', 'hctl': '0:0:0:0',
        'by_path': '/dev/disk/by-path/pci-0000:00:17.0-ata-1',
        'logical_sectors': 512, 'physical_sectors': 4096, 'tran': 'sata'}
    assert sdb['rotational'] is True and sdb['by_path'] is None
    assert part.plugin_data['root_disk']['name'] == '/dev/sda'
    details = part.plugin_data['disk_details']
    assert details[0]['firmware_revision'] == 'HXT7'
    assert part.errors == []


def test_without_lsblk_sysfs_alone_gives_the_disks(tmp_path):
    m = _disk(Machine(tmp_path), 'sda', 20971520, rotational='1')
    part = disks.collect(m.root(), Options())
    (disk,) = part.inventory['disks']
    assert disk['size'] == 10 * GIB and disk['rotational'] is True
    assert disk['model'] == 'SAMSUNG MZ7LH480' and disk['vendor'] == 'ATA'
    assert part.errors == ['lsblk: lsblk is not installed']


def test_old_lsblk_string_booleans_are_understood(tmp_path):
    m = _disk(Machine(tmp_path), 'sda', 20971520)
    m.cmd('lsblk', _lsblk({'kname': 'sda', 'type': 'disk', 'rota': '1',
                           'rm': '0', 'ro': '1', 'size': '10737418240'}))
    part = disks.collect(m.root(), Options())
    assert part.inventory['disks'][0]['rotational'] is True
    assert part.plugin_data['disk_details'][0]['read_only'] is True


def test_lsblk_garbage_falls_back_with_an_error(tmp_path):
    m = _disk(Machine(tmp_path), 'sda', 20971520).cmd('lsblk', '{nope')
    part = disks.collect(m.root(), Options())
    assert len(part.inventory['disks']) == 1
    assert 'no usable JSON' in part.errors[0]


def test_empty_card_readers_and_cdroms_are_not_disks(tmp_path):
    m = _disk(Machine(tmp_path), 'sdc', 0)
    _disk(m, 'sr0', 2000)
    m.cmd('lsblk', _lsblk({'kname': 'sdc', 'type': 'disk'},
                          {'kname': 'sr0', 'type': 'rom'}))
    assert disks.collect(m.root(), Options()).inventory['disks'] == []


def test_root_disk_is_the_smallest_of_at_least_4_gib():
    def d(name, gib):
        return {'name': name, 'size': int(gib * GIB)}
    assert disks.guess_root_disk([d('/dev/sdb', 100), d('/dev/sda', 3.9),
                                  d('/dev/sdc', 8)])['name'] == '/dev/sdc'
    assert disks.guess_root_disk([d('/dev/sdb', 8), d('/dev/sda', 8)])[
        'name'] == '/dev/sda'
    assert disks.guess_root_disk([d('/dev/sda', 1)]) is None
