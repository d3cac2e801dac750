"""hwbus-collect on this machine agrees with the kernel's own numbers."""

import pathlib
import subprocess

import pytest

from hwbus import inventory
from hwbus.ramdisk.collectors import runner
from hwbus.ramdisk.probes.sysroot import SystemRoot


@pytest.fixture(scope='module')
def document():
    return runner.collect(SystemRoot('/'))


def test_document_is_valid(document):
    inventory.validate(document)


def test_cpu_count_matches_nproc(document):
    nproc = subprocess.run(['nproc', '--all'], capture_output=True,
                           text=True, check=True).stdout
    assert document['inventory']['cpu']['count'] == int(nproc)


def test_memory_total_matches_meminfo(document):
    for line in pathlib.Path('/proc/meminfo').read_text().splitlines():
        if line.startswith('MemTotal:'):
            kib = int(line.split()[1])
    assert document['inventory']['memory']['total'] == kib * 1024


def test_disk_sizes_match_sys_block(document):
    for disk in document['inventory']['disks']:
        name = disk['name'].removeprefix('/dev/')
        sectors = int(pathlib.Path(f'/sys/block/{name}/size').read_text())
        assert disk['size'] == sectors * 512


def test_every_physical_nic_is_listed_with_its_address(document):
    listed = {i['name']: i['mac_address']
              for i in document['inventory']['interfaces']}
    for net in pathlib.Path('/sys/class/net').iterdir():
        if not (net / 'device').exists() or '/usb' in str(
                (net / 'device').resolve()):
            continue
        assert net.name in listed
        # The permanent MAC, which equals the current one unless changed.
        assert listed[net.name] in ((net / 'address').read_text().strip(),)


def test_system_identity_matches_sys_class_dmi_id(document):
    dmi = pathlib.Path('/sys/class/dmi/id')
    vendor = document['inventory']['system_vendor']
    if not dmi.exists():
        assert vendor['manufacturer'] == ''
        return
    assert vendor['manufacturer'] == (dmi / 'sys_vendor').read_text().strip()
    assert vendor['product_name'] == (
        dmi / 'product_name').read_text().strip()
    assert vendor['firmware']['version'] == (
        dmi / 'bios_version').read_text().strip()
