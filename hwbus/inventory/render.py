"""Showing a hardware document to a person: JSON, YAML or a summary table."""

from __future__ import annotations

import json
from typing import Any

FORMATS = ('json', 'yaml', 'table')


def _size(num_bytes: int | None) -> str:
    if not num_bytes:
        return '-'
    value = float(num_bytes)
    for unit in ('B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'):
        if value < 1024 or unit == 'PiB':
            return f'{value:.0f} {unit}' if unit == 'B' else \
                f'{value:.1f} {unit}'
        value /= 1024
    return f'{value:.1f} PiB'


def _table(headers: list[str], rows: list[list[Any]]) -> list[str]:
    cells = [[str('-' if v is None else v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells])
              for i, h in enumerate(headers)]
    line = '  '.join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    out = [line.rstrip(), '  '.join('-' * w for w in widths)]
    for row in cells:
        out.append('  '.join(v.ljust(w) for v, w in zip(
            row, widths, strict=True)).rstrip())
    return out


def as_table(document: dict[str, Any]) -> str:
    """A summary an operator can read at a console."""
    inv, plugin = document['inventory'], document['plugin_data']
    vendor, cpu, memory = inv['system_vendor'], inv['cpu'], inv['memory']
    firmware = vendor['firmware']
    lines = [
        f'System     {vendor["manufacturer"]} {vendor["product_name"]} '
        f'(serial {vendor["serial_number"] or "-"})',
        f'Firmware   {firmware["vendor"]} {firmware["version"]} '
        f'{firmware["build_date"]}; boot {inv["boot"]["current_boot_mode"]}',
        f'CPU        {cpu["count"]} x {cpu["model_name"] or "?"} '
        f'({cpu["architecture"]}, {cpu["socket_count"] or "?"} sockets)',
        f'Memory     {_size(memory["total"])} usable, '
        f'{memory["physical_mb"] or "?"} MiB installed',
        f'BMC        {inv["bmc_address"] or "-"} '
        f'{inv["bmc_v6address"] or ""} {inv["bmc_mac"] or ""}'.rstrip(),
        f'Hostname   {inv["hostname"] or "-"}',
        '',
    ]
    lines += _table(
        ['disk', 'size', 'model', 'serial', 'rotational', 'tran'],
        [[d['name'], _size(d['size']), d['model'], d['serial'],
          'yes' if d['rotational'] else 'no', d['tran']]
         for d in inv['disks']])
    lines.append('')
    lines += _table(
        ['interface', 'mac', 'ipv4', 'carrier', 'speed', 'driver', 'pxe'],
        [[i['name'], i['mac_address'], i['ipv4_address'],
          'yes' if i['has_carrier'] else 'no', i['speed_mbps'], i['driver'],
          'yes' if i['pxe_enabled'] else '']
         for i in inv['interfaces']])
    skipped = [n for n in plugin.get('nics', []) if n.get('excluded')]
    if skipped:
        lines.append('not listed: ' + ', '.join(
            f'{n["name"]} ({n["excluded"]})' for n in skipped))
    if plugin.get('gpus'):
        lines += ['', 'GPUs: ' + ', '.join(
            f'{g["vendor"] or g["vendor_id"]} '
            f'{g["product"] or g["product_id"]}' for g in plugin['gpus'])]
    if plugin['errors']:
        lines += ['', 'Errors:']
        lines += [f'  {e["collector"]}: {e["message"]}'
                  for e in plugin['errors']]
    return '\n'.join(lines)


def render(document: dict[str, Any], fmt: str) -> str:
    """The document in one of FORMATS."""
    if fmt == 'json':
        return json.dumps(document, indent=2, sort_keys=True)
    if fmt == 'yaml':
        try:
            import yaml
        except ImportError as exc:
            raise RuntimeError('YAML output needs PyYAML, which this '
                               'system does not have') from exc
        return yaml.safe_dump(document, sort_keys=True,
                              default_flow_style=False).rstrip('\n')
    if fmt == 'table':
        return as_table(document)
    raise ValueError(f'unknown format {fmt!r}; choose from {FORMATS}')
