"""The DMI decoder against 50 real servers and the quirks they carry."""

import json
import pathlib

import pytest

from hwbus.ramdisk.probes import dmidecode

FIXTURES = pathlib.Path(__file__).parent.parent / 'fixtures' / 'dmidecode'
EXPECTED = json.loads((FIXTURES / 'expected.json').read_text())


def _decode(name):
    return dmidecode.decode((FIXTURES / name).read_text(errors='replace'))


def test_every_real_server_is_in_the_expected_table():
    assert sorted(p.name for p in FIXTURES.glob('*.txt')) == sorted(EXPECTED)
    assert len(EXPECTED) == 50


@pytest.mark.parametrize('name', sorted(EXPECTED))
def test_real_server_decodes_as_hand_checked(name):
    want = EXPECTED[name]
    got = _decode(name)
    populated = [p for p in got['processors'] if p['populated']]
    devices = got['memory']['devices']
    assert got['system']['manufacturer'] == want['manufacturer']
    assert got['system']['product_name'] == want['product_name']
    assert got['system']['serial_number'] == want['serial_number']
    assert len(devices) == want['dimms']
    assert sorted({d['size_mb'] for d in devices}) == want['dimm_sizes_mb']
    assert got['memory']['total_mb'] == want['total_mb']
    assert got['memory']['persistent_mb'] == want['persistent_mb']
    assert got['memory']['slots'] == want['slots']
    assert len(populated) == want['sockets']
    assert sorted({p['cores'] for p in populated}, key=str) == \
        want['cores_per_socket']
    assert sorted({p['threads'] for p in populated}, key=str) == \
        want['threads_per_socket']
    assert [got['bios']['vendor'], got['bios']['version'],
            got['bios']['release_date']] == want['bios']
    assert (got['ipmi']['interface_type'] if got['ipmi'] else None) == \
        want['ipmi']


def test_sizes_in_every_unit_dmidecode_prints():
    assert dmidecode.size_mb('16 GB') == 16384
    assert dmidecode.size_mb('16384 MB') == 16384
    assert dmidecode.size_mb('2048 kB') == 2
    assert dmidecode.size_mb('1 TB') == 1048576
    assert dmidecode.size_mb('No Module Installed') is None
    assert dmidecode.size_mb('') is None


def test_optane_modules_are_not_counted_as_ram():
    got = _decode('Supermicro~SYS-1029~SYS-1029U-TRT~5BEDDF6C5270.txt')
    persistent = [d for d in got['memory']['devices'] if d['persistent']]
    assert len(persistent) == 8
    assert {d['size_mb'] for d in persistent} == {129408}
    assert got['memory']['total_mb'] == 12 * 32768


def test_memory_of_a_flash_array_is_not_ram():
    # DEPO X8DTU lists its 4 MB BIOS flash as a memory device of an array
    # whose Use is "Flash Memory"; a naive count says 65540 MB.
    got = _decode('DEPO_Computers~X8~X8DTU~3FF996EC5B0F.txt')
    assert got['memory']['total_mb'] == 65536
    assert all(d['size_mb'] != 4 for d in got['memory']['devices'])


def test_device_pointing_at_no_array_is_ignored():
    # The Phytium board repeats DIMM1 under handle 0x1009 with an Array
    # Handle (0x1008) that no structure has; the board has 2 slots.
    got = _decode('Phytium~FT-2000~FT-2000-4~2114858A8611.txt')
    assert got['memory']['slots'] == 2
    assert got['memory']['total_mb'] == 16384


SYNTHETIC = """\
# dmidecode 3.5
Getting SMBIOS data from sysfs.
SMBIOS 3.6.0 present.

Handle 0x0001, DMI type 1, 27 bytes
System Information
\tManufacturer: To Be Filled By O.E.M.
\tProduct Name: Big Box\x20\x20\x20\x20
\tSerial Number: Not Specified
\tUUID: 4C4C4544-0031-3510-8036-B8C04F4D4B32

Handle 0x0040, DMI type 4, 48 bytes
Processor Information
\tSocket Designation: CPU1
\tType: Central Processor
\tVersion: AMD EPYC 9654 96-Core Processor
\tStatus: Populated, Enabled
\tCore Count: 255
\tCore Count 2: 384
\tThread Count: 255
\tThread Count 2: 768
\tFlags:
\t\tFPU (Floating-point unit on-chip)
\t\tVME (Virtual mode extension)

Handle 0x0041, DMI type 4, 48 bytes
Processor Information
\tSocket Designation: CPU2
\tType: Central Processor
\tStatus: Unpopulated

Handle 0x0050, DMI type 126, 40 bytes
Inactive

Handle 0x0051, DMI type 17, 40 bytes
Memory Device
\tSize: 64 GB
\tLocator: DIMM_A1
"""


def test_fields_the_firmware_left_empty_are_none_but_vendor_text_stays():
    got = dmidecode.decode(SYNTHETIC)
    assert got['system']['manufacturer'] == 'To Be Filled By O.E.M.'
    assert got['system']['product_name'] == 'Big Box'
    assert got['system']['serial_number'] is None


def test_core_count_2_wins_over_the_255_marker():
    cpu = dmidecode.decode(SYNTHETIC)['processors'][0]
    assert (cpu['cores'], cpu['threads']) == (384, 768)


def test_unpopulated_socket_is_listed_but_not_populated():
    cpus = dmidecode.decode(SYNTHETIC)['processors']
    assert [c['populated'] for c in cpus] == [True, False]


def test_memory_device_without_an_array_table_still_counts():
    assert dmidecode.decode(SYNTHETIC)['memory']['total_mb'] == 65536


@pytest.mark.parametrize('text', [
    '', 'garbage\n\x00\x01\n', 'Handle 0xZZ, DMI type x, y bytes\n',
    'Handle 0x0001, DMI type 17, 40 bytes\n\tSize: lots\n',
    SYNTHETIC[:len(SYNTHETIC) // 3],
])
def test_nonsense_or_truncated_output_never_raises(text):
    got = dmidecode.decode(text)
    assert got['memory']['total_mb'] >= 0
