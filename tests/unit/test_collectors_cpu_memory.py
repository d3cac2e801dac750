"""CPU and memory collectors on small recorded machines."""

from hwbus.ramdisk.collectors import cpu, memory
from hwbus.ramdisk.collectors.base import Options
from tests.unit.machine import Machine

CPUINFO_X86 = ''.join(
    f'processor\t: {n}\nvendor_id\t: GenuineIntel\n'
    f'model name\t: Intel(R) Xeon(R) Gold 6126 CPU @ 2.60GHz\n'
    f'cpu MHz\t\t: 1000.000\nphysical id\t: {n // 4}\n'
    f'microcode\t: 0x2006e05\nflags\t\t: fpu vmx sse4_2\n\n'
    for n in range(8))

DMI_ARM = """\
Handle 0x0004, DMI type 4, 48 bytes
Processor Information
\tSocket Designation: CPU01
\tType: Central Processor
\tVersion: Kunpeng 920-4826
\tStatus: Populated, Enabled
\tCore Count: 48
\tThread Count: 48

Handle 0x0005, DMI type 4, 48 bytes
Processor Information
\tSocket Designation: CPU02
\tType: Central Processor
\tVersion: Kunpeng 920-4826
\tStatus: Populated, Enabled
\tCore Count: 48
\tThread Count: 48

Handle 0x0010, DMI type 17, 40 bytes
Memory Device
\tSize: 32 GB
\tLocator: DIMM000
"""


def _topology(m, cpus, threads_per_core=2, cores_per_socket=2):
    for n in range(cpus):
        core = (n // threads_per_core) % cores_per_socket
        socket = n // (threads_per_core * cores_per_socket)
        m.files(f'/sys/devices/system/cpu/cpu{n}/topology',
                {'physical_package_id': str(socket), 'core_id': str(core)})
    m.file('/sys/devices/system/cpu/online', f'0-{cpus - 1}\n')


def test_x86_two_sockets_with_hyperthreads(tmp_path):
    m = Machine(tmp_path).file('/proc/cpuinfo', CPUINFO_X86)
    m.file('/proc/sys/kernel/arch', 'x86_64\n')
    m.file('/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq',
           '3700000\n')
    _topology(m, 8)
    part = cpu.collect(m.root(), Options())
    assert part.inventory['cpu'] == {
        'model_name': 'Intel(R) Xeon(R) Gold 6126 CPU @ 2.60GHz',
        'frequency': '3700.0000', 'count': 8, 'architecture': 'x86_64',
        'flags': ['fpu', 'vmx', 'sse4_2'], 'socket_count': 2}
    topo = part.plugin_data['cpu_topology']
    assert (topo['sockets'], topo['cores'], topo['threads'],
            topo['threads_per_core']) == (2, 4, 8, 2)
    assert topo['microcode'] == '0x2006e05'
    assert part.errors == []


def test_arm_without_model_name_takes_it_from_dmi(tmp_path):
    cpuinfo = ''.join(f'processor\t: {n}\nBogoMIPS\t: 200.00\n'
                      f'Features\t: fp asimd aes\nCPU implementer\t: 0x48\n\n'
                      for n in range(4))
    m = Machine(tmp_path).file('/proc/cpuinfo', cpuinfo)
    m.file('/proc/sys/kernel/arch', 'aarch64\n').cmd('dmidecode', DMI_ARM)
    m.file('/sys/devices/system/cpu/online', '0-3\n')
    for n in range(4):  # ARM firmware often reports package -1 in sysfs
        m.files(f'/sys/devices/system/cpu/cpu{n}/topology',
                {'physical_package_id': '-1', 'core_id': str(n)})
    got = cpu.collect(m.root(), Options()).inventory['cpu']
    assert got['model_name'] == 'Kunpeng 920-4826'
    assert got['socket_count'] == 2
    assert got['flags'] == ['fp', 'asimd', 'aes']
    assert got['architecture'] == 'aarch64'


def test_empty_proc_records_an_error_and_counts_zero(tmp_path):
    part = cpu.collect(Machine(tmp_path).root(), Options())
    assert part.inventory['cpu']['count'] == 0
    assert part.errors


def test_memory_total_from_meminfo_and_installed_from_dmi(tmp_path):
    m = Machine(tmp_path).file('/proc/meminfo',
                               'MemTotal:       32614244 kB\n')
    m.cmd('dmidecode', DMI_ARM)
    got = memory.collect(m.root(), Options())
    assert got.inventory['memory'] == {'total': 32614244 * 1024,
                                       'physical_mb': 32768}
    assert got.errors == []


def test_memory_without_dmi_counts_kernel_memory_blocks(tmp_path):
    m = Machine(tmp_path).file('/proc/meminfo', 'MemTotal: 1000000 kB\n')
    m.cmd('dmidecode', '# dmidecode 3.4\n# No SMBIOS nor DMI entry point '
                       'found, sorry.\n', rc=1)
    m.file('/sys/devices/system/memory/block_size_bytes', '8000000\n')
    for n in (0, 1, 2, 3, 4, 5, 6, 7):
        m.dir(f'/sys/devices/system/memory/memory{n}')
    got = memory.collect(m.root(), Options())
    assert got.inventory['memory']['physical_mb'] == 1024
    assert got.errors == []


def test_memory_with_nothing_known_says_so(tmp_path):
    got = memory.collect(Machine(tmp_path).root(), Options())
    assert got.inventory['memory'] == {'total': None, 'physical_mb': None}
    assert len(got.errors) == 2
