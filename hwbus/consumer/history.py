"""What changed in a machine's hardware between two applied inventories.

Compares the parts an operator replaces or loses: CPUs, RAM, every DIMM
(by slot), disks (by serial, else name), NICs (by MAC), the BMC and the
firmware. The result feeds ``hwbus-manage history`` and the
``hardware_changed`` notification.
"""

from __future__ import annotations

import json
from typing import Any

from hwbus import envelope
from hwbus.store import Inventory


def document_of(record: Inventory) -> dict[str, Any]:
    """The archived body, parsed (it was verified when it was applied)."""
    header = envelope.Header(record.user_id, record.boot_id,
                             record.message_id, record.content_encoding,
                             b'')
    return envelope.decode(header, record.body, max_size=64 * 1024 * 1024)


def applied_changes(record: Inventory) -> list[str]:
    """What applying this inventory did to the node (credentials set,
    manageable or why not), as the consumer recorded it."""
    try:
        changes = json.loads(record.changes or '[]')
    except ValueError:
        return []
    return [str(c) for c in changes] if isinstance(changes, list) else []


def summary(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    inv, plugin = document['inventory'], document['plugin_data']
    cpu = inv.get('cpu') or {}
    firmware = (inv.get('system_vendor') or {}).get('firmware') or {}
    dimms = ((plugin.get('dmi') or {}).get('memory') or {}).get('devices',
                                                                 [])
    return {
        'machine': {
            'cpus': cpu.get('count'), 'cpu_model': cpu.get('model_name'),
            'memory_mb': (inv.get('memory') or {}).get('physical_mb'),
            'bmc_address': inv.get('bmc_address'),
            'firmware': firmware.get('version'),
        },
        'dimm': {d.get('locator') or f'#{i}': f'{d.get("size_mb")} MB '
                 f'{d.get("part_number") or ""} {d.get("serial_number") or ""}'
                 .strip() for i, d in enumerate(dimms) if d.get('size_mb')},
        'disk': {(d.get('serial') or d.get('name')): f'{d.get("name")} '
                 f'{d.get("size")} bytes {d.get("model") or ""}'.strip()
                 for d in inv.get('disks', [])},
        'nic': {i['mac_address']: i.get('name')
                for i in inv.get('interfaces', []) if i.get('mac_address')},
    }


def diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Human lines, e.g. "dimm B2 gone (16384 MB ...)"; empty if alike."""
    a, b = summary(old), summary(new)
    lines = []
    for key in sorted(set(a['machine']) | set(b['machine'])):
        if a['machine'].get(key) != b['machine'].get(key):
            lines.append(f'{key}: {a["machine"].get(key)} -> '
                         f'{b["machine"].get(key)}')
    for part in ('dimm', 'disk', 'nic'):
        before, after = a[part], b[part]
        for key in sorted(set(before) - set(after)):
            lines.append(f'{part} {key} gone ({before[key]})')
        for key in sorted(set(after) - set(before)):
            lines.append(f'{part} {key} added ({after[key]})')
        for key in sorted(set(before) & set(after)):
            if before[key] != after[key]:
                lines.append(f'{part} {key}: {before[key]} -> {after[key]}')
    return lines
