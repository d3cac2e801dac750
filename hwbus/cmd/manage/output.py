"""How hwbus-manage prints rows for a person to read."""

from __future__ import annotations

from typing import Any


def table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    widths = {c: max([len(c)] + [len(str(r.get(c) or '-')) for r in rows])
              for c in columns}
    lines = ['  '.join(c.upper().ljust(widths[c]) for c in columns)]
    lines += ['  '.join(str(r.get(c) or '-').ljust(widths[c])
                        for c in columns) for r in rows]
    return '\n'.join(line.rstrip() for line in lines)
