"""Recorded machines replay to their hand-checked documents, exactly."""

import json
import pathlib

import pytest

from hwbus import inventory
from hwbus.ramdisk.collectors import runner
from hwbus.ramdisk.probes.sysroot import SystemRoot

MACHINES = pathlib.Path(__file__).parents[1] / 'fixtures' / 'machines'
NAMES = sorted(p.name for p in MACHINES.iterdir()
               if (p / 'expected.json').exists())


def _replay(name):
    document = runner.collect(SystemRoot(str(MACHINES / name)))
    document['plugin_data'].pop('collection')
    return document


def test_there_are_real_servers_with_sockets_numa_disks_and_nics():
    assert {'dell-r740', 'supermicro-1029u', 'huawei-taishan-2280',
            'this-vm'} <= set(NAMES)


@pytest.mark.parametrize('name', NAMES)
def test_machine_replays_to_its_expected_document(name):
    expected = json.loads((MACHINES / name / 'expected.json').read_text())
    got = _replay(name)
    inventory.validate(got)
    assert got['inventory'] == expected['inventory']
    assert got['plugin_data'] == expected['plugin_data']


def _inv(name):
    return json.loads((MACHINES / name / 'expected.json').read_text())


def test_dell_r740_facts():
    document = _inv('dell-r740')
    inv, plugin = document['inventory'], document['plugin_data']
    assert inv['cpu']['count'] == 2 * 12 * 2
    assert inv['cpu']['socket_count'] == 2
    assert inv['memory']['physical_mb'] == 4 * 16384
    assert [d['name'] for d in inv['disks']] == ['/dev/sda', '/dev/sdb']
    assert [i['name'] for i in inv['interfaces'] if i['pxe_enabled']] == [
        'eno1']
    assert 'enp0s20f0u14u3' not in [i['name'] for i in inv['interfaces']]
    assert inv['bmc_address'] == '10.10.0.101'
    assert len(plugin['numa_topology']['ram']) == 2
    assert plugin['gpus'] == []  # the Matrox is the iDRAC's framebuffer
    assert plugin['errors'] == []


def test_supermicro_1029u_facts():
    document = _inv('supermicro-1029u')
    inv, plugin = document['inventory'], document['plugin_data']
    assert inv['cpu']['count'] == 72
    # 12 x 32 GB of RAM; the 8 Optane modules are storage, not RAM.
    assert inv['memory']['physical_mb'] == 12 * 32768
    assert plugin['dmi']['memory']['persistent_mb'] == 8 * 129408
    assert plugin['root_disk']['name'] == '/dev/sda'  # the 64 GB SATA DOM
    ib0 = next(i for i in inv['interfaces'] if i['name'] == 'ib0')
    assert ib0['mac_address'] == 'b8:59:9f:d1:7e:50'
    assert ib0['client_id'].endswith('b8:59:9f:03:00:d1:7e:50')
    # The Redfish host interface shares one MAC across all Supermicros.
    assert 'be:3a:f2:b6:05:9f' not in [i['mac_address']
                                       for i in inv['interfaces']]
    assert [g['product_id'] for g in plugin['gpus']] == ['1eb8']
    assert inv['bmc_v6address'] == '2001:db8:10::102'


def test_huawei_taishan_facts():
    document = _inv('huawei-taishan-2280')
    inv, plugin = document['inventory'], document['plugin_data']
    assert inv['cpu']['architecture'] == 'aarch64'
    assert inv['cpu']['model_name'] == 'Kunpeng 920-4826'  # from DMI
    assert inv['cpu']['count'] == 96 and inv['cpu']['socket_count'] == 2
    assert len(plugin['numa_topology']['ram']) == 4
    assert plugin['dmi']['ipmi'] is None and inv['bmc_address']
    assert plugin['gpus'] == []  # the Hi1710 is the iBMC's framebuffer


def test_qemu_guest_is_exactly_what_qemu_was_given():
    """Recorded by the real ramdisk (tools/build-ramdisk) under QEMU.

    The command line is in tests/fixtures/machines/README.md; every figure
    below is one QEMU was told, so the e2e test can expect the same.
    """
    document = _inv('qemu-guest')
    inv, plugin = document['inventory'], document['plugin_data']
    assert inv['cpu']['count'] == 2
    assert inv['memory']['physical_mb'] == 1024
    assert [(d['name'], d['size'], d['serial']) for d in inv['disks']] == [
        ('/dev/vda', 10 * 1024 ** 3, 'HWBUSDISK1'),
        ('/dev/vdb', 4 * 1024 ** 3, 'HWBUSDISK2')]
    assert [(i['mac_address'], i['pxe_enabled'])
            for i in inv['interfaces']] == [
        ('52:54:00:12:34:56', True), ('52:54:00:12:34:57', False)]
    assert inv['boot'] == {'current_boot_mode': 'bios',
                           'pxe_interface': '52:54:00:12:34:56'}
    assert inv['bmc_address'] is None
    assert plugin['errors'] == []
