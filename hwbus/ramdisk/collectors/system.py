"""Who made the machine: vendor, product, serial, UUID, firmware; hostname.

/sys/class/dmi/id holds the answers without running anything; dmidecode
fills the gaps on kernels that do not export it. Firmware strings are kept
exactly as the machine reports them ("To Be Filled By O.E.M." included):
deciding which are placeholders is the job of whoever looks machines up.
"""

from __future__ import annotations

from typing import Any

from hwbus.ramdisk.collectors.base import Contribution, Options
from hwbus.ramdisk.probes import dmidecode
from hwbus.ramdisk.probes.sysroot import CommandError, SystemRoot

_DMI_ID = '/sys/class/dmi/id'
# inventory field -> (sysfs attribute, dmidecode section, dmidecode key)
_FIELDS = {
    'product_name': ('product_name', 'system', 'product_name'),
    'serial_number': ('product_serial', 'system', 'serial_number'),
    'manufacturer': ('sys_vendor', 'system', 'manufacturer'),
    'sku': ('product_sku', 'system', 'sku'),
    'uuid': ('product_uuid', 'system', 'uuid'),
}
_FIRMWARE = {
    'vendor': ('bios_vendor', 'bios', 'vendor'),
    'version': ('bios_version', 'bios', 'version'),
    'build_date': ('bios_date', 'bios', 'release_date'),
}


def _fill(root: SystemRoot, fields: dict[str, tuple[str, str, str]],
          dmi: dict[str, Any] | None) -> dict[str, str | None]:
    values: dict[str, str | None] = {}
    for name, (attr, section, key) in fields.items():
        value = root.read(f'{_DMI_ID}/{attr}')
        if not value and dmi:
            value = dmi[section].get(key)
        values[name] = value or None
    return values


def collect(root: SystemRoot, options: Options) -> Contribution:
    """The inventory ``system_vendor`` and ``hostname``."""
    dmi = None
    if not root.read(f'{_DMI_ID}/sys_vendor'):
        try:
            dmi = dmidecode.read(root)
        except CommandError:
            dmi = None  # the dmi collector reports why
    vendor = _fill(root, _FIELDS, dmi)
    firmware = _fill(root, _FIRMWARE, dmi)
    errors = []
    if not any(vendor.values()):
        errors.append('no system identity: neither /sys/class/dmi/id nor '
                      'dmidecode know the manufacturer or serial')
    system_vendor = {
        # ironic-python-agent reports unknown strings as "", sku/uuid null.
        'product_name': vendor['product_name'] or '',
        'serial_number': vendor['serial_number'] or '',
        'manufacturer': vendor['manufacturer'] or '',
        'sku': vendor['sku'],
        'uuid': vendor['uuid'].lower() if vendor['uuid'] else None,
        'firmware': {k: v or '' for k, v in firmware.items()},
    }
    return Contribution(
        inventory={'system_vendor': system_vendor,
                   'hostname': root.read('/proc/sys/kernel/hostname')},
        errors=errors)
