"""System identity, boot mode, PCI, GPUs and NUMA."""

import pytest

from hwbus.ramdisk.collectors import boot, gpus, numa, pci, system
from hwbus.ramdisk.collectors.base import Options
from tests.unit.machine import Machine

DMI_ID = {'sys_vendor': 'Dell Inc.', 'product_name': 'PowerEdge R740',
          'product_serial': 'CZ2X9Y2', 'product_sku': 'SKU=0715;ModelName=',
          'product_uuid': '4C4C4544-0050-3210-8058-C3C04F395932',
          'bios_vendor': 'Dell Inc.', 'bios_version': '2.12.2',
          'bios_date': '07/09/2021'}


def test_system_identity_from_sysfs_without_running_dmidecode(tmp_path):
    m = Machine(tmp_path).files('/sys/class/dmi/id', DMI_ID)
    m.file('/proc/sys/kernel/hostname', 'node-17\n')
    part = system.collect(m.root(), Options())
    assert part.inventory == {
        'system_vendor': {
            'product_name': 'PowerEdge R740', 'serial_number': 'CZ2X9Y2',
            'manufacturer': 'Dell Inc.', 'sku': 'SKU=0715;ModelName=',
            'uuid': '4c4c4544-0050-3210-8058-c3c04f395932',
            'firmware': {'vendor': 'Dell Inc.', 'version': '2.12.2',
                         'build_date': '07/09/2021'}},
        'hostname': 'node-17'}
    assert part.errors == []


def test_system_identity_falls_back_to_dmidecode(tmp_path):
    m = Machine(tmp_path).cmd('dmidecode', """\
Handle 0x0000, DMI type 0, 26 bytes
BIOS Information
\tVendor: HPE
\tVersion: U30
\tRelease Date: 05/21/2019

Handle 0x0001, DMI type 1, 27 bytes
System Information
\tManufacturer: HPE
\tProduct Name: ProLiant DL380 Gen10
\tSerial Number: MXQ9220ABC
""")
    got = system.collect(m.root(), Options()).inventory['system_vendor']
    assert (got['manufacturer'], got['product_name'], got['serial_number'],
            got['firmware']['version']) == (
        'HPE', 'ProLiant DL380 Gen10', 'MXQ9220ABC', 'U30')


def test_no_identity_at_all_is_an_error_with_empty_strings(tmp_path):
    part = system.collect(Machine(tmp_path).root(), Options())
    assert part.inventory['system_vendor']['manufacturer'] == ''
    assert part.errors


def test_uefi_with_secure_boot(tmp_path):
    m = Machine(tmp_path).file(
        '/sys/firmware/efi/efivars/'
        'SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c',
        b'\x06\x00\x00\x00\x01')
    part = boot.collect(m.root(), Options(bootif='AA:BB:CC:DD:EE:FF'))
    assert part.inventory['boot'] == {'current_boot_mode': 'uefi',
                                      'pxe_interface': 'aa:bb:cc:dd:ee:ff'}
    assert part.plugin_data['boot_details'] == {'secure_boot': True}


@pytest.mark.parametrize('raw, expected', [
    (b'\x06\x00\x00\x00\x00', False),  # UEFI, Secure Boot off
    (b'\x06\x00\x00', None),  # truncated: UEFI did not say
    (None, None),  # no SecureBoot variable at all
])
def test_uefi_secure_boot_off_or_unknown(tmp_path, raw, expected):
    m = Machine(tmp_path).file('/sys/firmware/efi/fw_platform_size', b'64')
    if raw is not None:
        m.file('/sys/firmware/efi/efivars/'
               'SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c', raw)
    part = boot.collect(m.root(), Options())
    assert part.inventory['boot']['current_boot_mode'] == 'uefi'
    assert part.plugin_data['boot_details'] == {'secure_boot': expected}


def test_legacy_bios(tmp_path):
    part = boot.collect(Machine(tmp_path).root(), Options())
    assert part.inventory['boot']['current_boot_mode'] == 'bios'
    assert part.plugin_data['boot_details'] == {'secure_boot': False}


def _pci(m, slot, vendor, device, cls, driver=None, numa='0'):
    m.files(f'/sys/bus/pci/devices/{slot}', {
        'vendor': vendor, 'device': device, 'class': cls,
        'revision': '0x01', 'subsystem_vendor': '0x10de',
        'subsystem_device': '0x1234', 'numa_node': numa})
    if driver:
        m.link(f'/sys/bus/pci/devices/{slot}/driver',
               f'../../../bus/pci/drivers/{driver}')
    return m


LSPCI = '''\
0000:03:00.0 "VGA compatible controller [0300]" "ASPEED Technology, Inc. \
[1a03]" "ASPEED Graphics Family [2000]" -r41 "Super Micro Computer Inc \
[15d9]" "Device [1b95]"
0000:3b:00.0 "3D controller [0302]" "NVIDIA Corporation [10de]" \
"GA100 [A100 PCIe 40GB] [20f1]" -ra1 "NVIDIA Corporation [10de]" \
"Device [145f]"
'''


def test_pci_devices_with_names_and_gpus_without_the_bmc_framebuffer(
        tmp_path):
    m = _pci(Machine(tmp_path), '0000:03:00.0', '0x1a03', '0x2000',
             '0x030000', numa='-1')
    _pci(m, '0000:3b:00.0', '0x10de', '0x20f1', '0x030200', 'nvidia', '1')
    m.cmd('lspci', LSPCI)
    devices = pci.collect(m.root(), Options()).plugin_data['pci_devices']
    assert devices[1] == {
        'bus': '0000:3b:00.0', 'vendor_id': '10de', 'product_id': '20f1',
        'class': '030200', 'revision': '01', 'subsystem_vendor_id': '10de',
        'subsystem_id': '1234', 'numa_node_id': 1, 'driver': 'nvidia',
        'vendor_name': 'NVIDIA Corporation',
        'product_name': 'GA100 [A100 PCIe 40GB]',
        'class_name': '3D controller'}
    assert devices[0]['numa_node_id'] is None
    found = gpus.collect(m.root(), Options()).plugin_data['gpus']
    assert found == [{'pci_address': '0000:3b:00.0', 'vendor_id': '10de',
                      'product_id': '20f1', 'vendor': 'NVIDIA Corporation',
                      'product': 'GA100 [A100 PCIe 40GB]',
                      'driver': 'nvidia', 'numa_node_id': 1}]


def test_pci_without_lspci_keeps_ids_and_says_why_names_are_missing(
        tmp_path):
    m = _pci(Machine(tmp_path), '0000:3b:00.0', '0x8086', '0x1572',
             '0x020000')
    part = pci.collect(m.root(), Options())
    assert part.plugin_data['pci_devices'][0]['vendor_name'] is None
    assert part.errors == ['PCI device names: lspci is not installed']


def test_numa_nodes_with_memory_cores_siblings_and_nics(tmp_path):
    m = Machine(tmp_path)
    for node, cpus in ((0, '0-1,4-5'), (1, '2-3,6-7')):
        m.file(f'/sys/devices/system/node/node{node}/cpulist', cpus + '\n')
        m.file(f'/sys/devices/system/node/node{node}/meminfo',
               f'Node {node} MemTotal:       65536000 kB\n')
    for cpu in range(8):
        core = cpu % 4
        m.files(f'/sys/devices/system/cpu/cpu{cpu}/topology', {
            'core_id': str(core % 2),
            'thread_siblings_list': f'{core},{core + 4}'})
    m.nic('eno1', '3c:fd:fe:a0:00:01', numa='1')
    got = numa.collect(m.root(), Options()).plugin_data['numa_topology']
    assert got['ram'] == [{'numa_node': 0, 'size_kb': 65536000},
                          {'numa_node': 1, 'size_kb': 65536000}]
    assert got['cpus'] == [
        {'cpu': 0, 'numa_node': 0, 'thread_siblings': [0, 4]},
        {'cpu': 1, 'numa_node': 0, 'thread_siblings': [1, 5]},
        {'cpu': 0, 'numa_node': 1, 'thread_siblings': [2, 6]},
        {'cpu': 1, 'numa_node': 1, 'thread_siblings': [3, 7]}]
    assert got['nics'] == [{'name': 'eno1', 'numa_node': 1}]
