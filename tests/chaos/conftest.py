"""Faults under load, each test ending in a figure.

The servers are the functional tests' real ones; a figure is what an
operator would ask after the fault: of the inventories published, how
many were applied, dead-lettered, lost (must be 0), applied twice (must
be 0), and how long the system took to recover. Figures are printed at
the end of the run and written to .cache/figures/chaos.jsonl.
"""

from __future__ import annotations

import json

import pytest

from tests.chaos.tally import FIGURES
from tests.functional.conftest import (  # noqa: F401 - fixtures
    broker,
    clean_ironic,
    ironic,
    postgres,
    rabbitmq,
)
from tests.servers.common import CACHE


def pytest_terminal_summary(terminalreporter) -> None:
    if not FIGURES:
        return
    terminalreporter.section('chaos figures')
    columns = ('published', 'applied', 'dead', 'lost', 'twice',
               'recovery_s', 'drained_s', 'total_s')
    terminalreporter.write_line(
        f'{"fault":40} ' + ' '.join(f'{c:>10}' for c in columns))
    for figure in FIGURES:
        terminalreporter.write_line(
            f'{figure["fault"][:40]:40} ' + ' '.join(
                f'{figure.get(c, "-")!s:>10}' for c in columns))
    out = CACHE / 'figures'
    out.mkdir(parents=True, exist_ok=True)
    with open(out / 'chaos.jsonl', 'a') as f:
        for figure in FIGURES:
            f.write(json.dumps(figure) + '\n')


@pytest.fixture
def figure(request):
    """Record this test's figure: figure(fault=..., **numbers)."""

    def record(**numbers) -> dict:
        numbers.setdefault('test', request.node.name)
        FIGURES.append(numbers)
        print('FIGURE', json.dumps(numbers))
        return numbers

    return record
