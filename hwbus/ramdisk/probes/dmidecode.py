"""Reading the full output of plain ``dmidecode``.

dmidecode runs once per collection (it walks the whole SMBIOS table either
way) and several collectors read the result: system identity, memory size,
processor sockets, the IPMI device. Everything here is pure text handling so
that the 50 real servers under tests/fixtures/dmidecode replay exactly.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

from hwbus.ramdisk.probes.sysroot import CommandError, SystemRoot

# SMBIOS structure types hwbus reads.
BIOS, SYSTEM, BASEBOARD, CHASSIS, PROCESSOR = 0, 1, 2, 3, 4
MEMORY_ARRAY, MEMORY_DEVICE, IPMI_DEVICE = 16, 17, 38
HOST_INTERFACE = 42
# Type 126 marks a structure the firmware disabled; it repeats real types'
# layouts and must not be counted.
INACTIVE = 126

# Values dmidecode itself prints when the firmware left a field empty or
# invalid. Strings the firmware vendor typed ("To be filled by O.E.M.") are
# kept: they are what the machine says, and lookups decide what to trust.
_NOT_A_VALUE = frozenset({
    'Not Specified', 'Not Provided', 'Not Present', 'Not Available',
    'Unknown', 'None', 'Other', '<OUT OF SPEC>', '<BAD INDEX>',
    'No Module Installed', 'Not Installed', 'Unspecified',
})

_HANDLE_RE = re.compile(
    r'^Handle 0x([0-9A-Fa-f]+), DMI type (\d+), (\d+) bytes$')
_SIZE_RE = re.compile(r'^(\d+(?:\.\d+)?)\s*(bytes|kB|KB|MB|GB|TB)$')
_MB_PER_UNIT = {'bytes': 1 / 2**20, 'kB': 1 / 1024, 'KB': 1 / 1024,
                'MB': 1, 'GB': 1024, 'TB': 1024 * 1024}


@dataclasses.dataclass
class Structure:
    """One SMBIOS structure as dmidecode printed it."""

    handle: int
    type: int
    title: str
    fields: dict[str, str]
    lists: dict[str, list[str]]

    def get(self, key: str) -> str | None:
        """A field's value, None when absent or a dmidecode non-value."""
        value = self.fields.get(key)
        if value is None or value in _NOT_A_VALUE:
            return None
        return value


def parse(text: str) -> list[Structure]:
    """Split dmidecode output into structures.

    Tolerates what real machines print: OEM types with hex dumps, trailing
    white space in vendor strings, list-valued keys (Characteristics),
    several versions of dmidecode, and truncated or garbled output (lines
    that fit nothing are skipped, never raised on).
    """
    structures: list[Structure] = []
    current: Structure | None = None
    list_key: str | None = None
    expect_title = False
    for raw in text.splitlines():
        line = raw.rstrip()
        match = _HANDLE_RE.match(line)
        if match:
            current = Structure(int(match.group(1), 16),
                                int(match.group(2)), '', {}, {})
            structures.append(current)
            list_key, expect_title = None, True
            continue
        if current is None or not line:
            continue
        if expect_title and not line.startswith('\t'):
            current.title = line.strip()
            expect_title = False
            continue
        expect_title = False
        if line.startswith('\t\t'):
            if list_key is not None:
                current.lists[list_key].append(line.strip())
            continue
        if line.startswith('\t'):
            key, sep, value = line.strip().partition(':')
            if not sep:
                continue
            value = value.strip()
            if value:
                current.fields.setdefault(key, value)
                list_key = None
            else:
                current.lists.setdefault(key, [])
                list_key = key
    return structures


def size_mb(value: str | None) -> int | None:
    """MiB in a dmidecode size ("16 GB", "16384 MB", "2048 kB")."""
    if not value:
        return None
    match = _SIZE_RE.match(value.strip())
    if not match:
        return None
    return round(float(match.group(1)) * _MB_PER_UNIT[match.group(2)])


def _int(value: str | None) -> int | None:
    if not value:
        return None
    match = re.match(r'^(\d+)', value)
    return int(match.group(1)) if match else None


def _speed(value: str | None) -> int | None:
    """MT/s or MHz in "2666 MT/s", "2400 MHz"; None for "Unknown"."""
    return _int(value)


def _first(structures: list[Structure], kind: int) -> Structure | None:
    return next((s for s in structures if s.type == kind), None)


def _bios(s: Structure | None) -> dict[str, Any]:
    s = s or Structure(0, BIOS, '', {}, {})
    return {'vendor': s.get('Vendor'), 'version': s.get('Version'),
            'release_date': s.get('Release Date'),
            'revision': s.get('BIOS Revision'),
            'firmware_revision': s.get('Firmware Revision')}


def _system(s: Structure | None) -> dict[str, Any]:
    s = s or Structure(0, SYSTEM, '', {}, {})
    return {'manufacturer': s.get('Manufacturer'),
            'product_name': s.get('Product Name'),
            'version': s.get('Version'),
            'serial_number': s.get('Serial Number'),
            'uuid': s.get('UUID'), 'sku': s.get('SKU Number'),
            'family': s.get('Family'), 'wake_up_type': s.get('Wake-up Type')}


def _baseboard(s: Structure | None) -> dict[str, Any]:
    s = s or Structure(0, BASEBOARD, '', {}, {})
    return {'manufacturer': s.get('Manufacturer'),
            'product_name': s.get('Product Name'),
            'version': s.get('Version'),
            'serial_number': s.get('Serial Number'),
            'asset_tag': s.get('Asset Tag')}


def _chassis(s: Structure | None) -> dict[str, Any]:
    s = s or Structure(0, CHASSIS, '', {}, {})
    return {'manufacturer': s.get('Manufacturer'), 'type': s.get('Type'),
            'serial_number': s.get('Serial Number'),
            'asset_tag': s.get('Asset Tag'),
            'height_u': _int(s.get('Height'))}


def _processor(s: Structure) -> dict[str, Any]:
    status = s.fields.get('Status') or ''
    # SMBIOS 3.0 moved counts above 255 to "Core Count 2" and friends.
    cores = _int(s.get('Core Count 2')) or _int(s.get('Core Count'))
    enabled = _int(s.get('Core Enabled 2')) or _int(s.get('Core Enabled'))
    threads = (_int(s.get('Thread Count 2'))
               or _int(s.get('Thread Count')))
    return {
        'socket': s.get('Socket Designation'),
        'manufacturer': s.get('Manufacturer'),
        'version': s.get('Version'),
        'family': s.get('Family'),
        'cores': cores, 'enabled_cores': enabled, 'threads': threads,
        'max_speed_mhz': _speed(s.get('Max Speed')),
        'current_speed_mhz': _speed(s.get('Current Speed')),
        'populated': status.startswith('Populated'),
        'status': status or None,
    }


def _is_persistent(s: Structure) -> bool:
    """An NVDIMM / Optane module: storage, not RAM, unless it says so."""
    technology = (s.fields.get('Memory Technology') or '').lower()
    if 'persistent' in technology or 'nvdimm' in technology:
        return True
    non_volatile = size_mb(s.get('Non-Volatile Size'))
    volatile = size_mb(s.get('Volatile Size'))
    return bool(non_volatile) and not volatile


def _dimm(s: Structure) -> dict[str, Any]:
    rank = _int(s.get('Rank'))
    width, data = _int(s.get('Total Width')), _int(s.get('Data Width'))
    return {
        'locator': s.get('Locator'),
        'bank_locator': s.get('Bank Locator'),
        'size_mb': size_mb(s.get('Size')),
        'type': s.get('Type'),
        'type_detail': s.get('Type Detail'),
        'form_factor': s.get('Form Factor'),
        'speed_mts': _speed(s.get('Speed')),
        'configured_speed_mts': _speed(
            s.get('Configured Memory Speed')
            or s.get('Configured Clock Speed')),
        'manufacturer': s.get('Manufacturer'),
        'part_number': s.get('Part Number'),
        'serial_number': s.get('Serial Number'),
        'rank': rank,
        # ECC modules carry 8 check bits on top of the data width.
        'ecc': (width > data) if width and data else None,
        'technology': s.get('Memory Technology'),
        'persistent': _is_persistent(s),
    }


def _memory(structures: list[Structure]) -> dict[str, Any]:
    arrays = [s for s in structures if s.type == MEMORY_ARRAY
              and (s.fields.get('Use') or 'System Memory') == 'System Memory']
    array_handles = {s.handle for s in arrays}
    slots, devices = 0, []
    for s in structures:
        if s.type != MEMORY_DEVICE:
            continue
        array = s.fields.get('Array Handle', '')
        # Devices of a non-system array (flash, video) are not RAM.
        if array_handles and _int_hex(array) not in array_handles:
            continue
        slots += 1
        dimm = _dimm(s)
        if dimm['size_mb']:
            devices.append(dimm)
    max_capacity = sum(size_mb(s.get('Maximum Capacity')) or 0
                       for s in arrays) or None
    ecc = next((s.get('Error Correction Type') for s in arrays
                if s.get('Error Correction Type')), None)
    return {
        'total_mb': sum(d['size_mb'] for d in devices
                        if not d['persistent']),
        'persistent_mb': sum(d['size_mb'] for d in devices
                             if d['persistent']),
        'slots': slots,
        'max_capacity_mb': max_capacity,
        'error_correction': ecc,
        'devices': devices,
    }


def _int_hex(value: str) -> int | None:
    try:
        return int(value, 16)
    except ValueError:
        return None


def _ipmi(s: Structure | None) -> dict[str, Any] | None:
    if s is None:
        return None
    return {'interface_type': s.get('Interface Type'),
            'specification_version': s.get('Specification Version'),
            'base_address': s.get('Base Address'),
            'i2c_address': s.get('I2C Slave Address')}


def decode(text: str) -> dict[str, Any]:
    """The DMI tables hwbus reports, in the plugin_data ``dmi`` shape."""
    return _decode(parse(text))


def _decode(structures: list[Structure]) -> dict[str, Any]:
    structures = [s for s in structures if s.type != INACTIVE]
    processors = [_processor(s) for s in structures if s.type == PROCESSOR
                  and s.fields.get('Type', 'Central Processor')
                  == 'Central Processor']
    return {
        'bios': _bios(_first(structures, BIOS)),
        'system': _system(_first(structures, SYSTEM)),
        'baseboard': _baseboard(_first(structures, BASEBOARD)),
        'chassis': _chassis(_first(structures, CHASSIS)),
        'processors': processors,
        'memory': _memory(structures),
        'ipmi': _ipmi(_first(structures, IPMI_DEVICE)),
        'redfish_host_interface': any(
            _redfish(s) for s in structures if s.type == HOST_INTERFACE),
    }


def _redfish(s: Structure) -> bool:
    """A Management Controller Host Interface offering Redfish over IP
    (protocol 04): the BMC speaks Redfish, reachable from the host too."""
    values = [*s.fields.values(), *(v for items in s.lists.values()
                                    for v in items)]
    return any('redfish' in value.lower() for value in values)


class NoDMI(CommandError):
    """The machine has no SMBIOS table, or dmidecode could not read it."""

    reason = 'no-dmi'


def read(root: SystemRoot) -> dict[str, Any]:
    """Run dmidecode once per root and decode it; shared by collectors.

    :raises CommandError: dmidecode is missing, hung, failed, or printed
        no structures (a VM without SMBIOS, a board with a broken table).
    """
    return root.memo('dmidecode', lambda: _read(root))


def _read(root: SystemRoot) -> dict[str, Any]:
    result = root.run('dmidecode', ['dmidecode'])
    structures = parse(result.stdout)
    if not structures:
        said = (result.stderr or result.stdout).strip().splitlines()
        detail = said[-1] if said else f'exit status {result.returncode}'
        raise NoDMI(f'dmidecode found no SMBIOS structures: {detail}')
    return _decode(structures)
