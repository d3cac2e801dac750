"""Figures a test run measures (never asserts), printed at the end.

A suite keeps one ``Figures``; its tests record one dict each through
the ``figure`` fixture the suite's conftest makes with ``fixture()``, and
the conftest's ``pytest_terminal_summary`` calls ``summary()``, which
prints a table and appends the rows to .cache/figures/<name>.jsonl.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

import pytest

from hwbus.localstack.common import CACHE


class Figures:
    def __init__(self, name: str, first: str, columns: Sequence[str],
                 width: int = 40) -> None:
        self.name, self.first, self.columns = name, first, columns
        self.width = width
        self.rows: list[dict] = []

    def fixture(self) -> Callable:
        figures = self

        @pytest.fixture
        def figure(request):
            def record(**numbers) -> dict:
                numbers.setdefault('test', request.node.name)
                figures.rows.append(numbers)
                print('FIGURE', json.dumps(numbers))
                return numbers

            return record

        return figure

    def summary(self, terminalreporter) -> None:
        if not self.rows:
            return
        terminalreporter.section(f'{self.name} figures')
        width = self.width
        terminalreporter.write_line(
            f'{self.first:{width}} ' + ' '.join(
                f'{c:>10}' for c in self.columns))
        for row in self.rows:
            terminalreporter.write_line(
                f'{str(row.get(self.first, "-"))[:width]:{width}} ' +
                ' '.join(f'{row.get(c, "-")!s:>10}' for c in self.columns))
        out = CACHE / 'figures'
        out.mkdir(parents=True, exist_ok=True)
        with open(out / f'{self.name}.jsonl', 'a') as handle:
            for row in self.rows:
                handle.write(json.dumps(row) + '\n')
