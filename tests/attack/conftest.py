"""Attacks from the provisioning network, each ending in a figure.

The servers are the functional tests' real ones. An attack sends what an
attacker with credentials anyone can get from the boot server can send;
its figure says how many attempts were made, how many were accepted
(must be 0), what refused them, and the seconds from the attack to the
next legitimate boot being applied (measured, never asserted). Figures
are printed at the end and written to .cache/figures/attack.jsonl.
"""

from __future__ import annotations

import json

import pytest

from tests.functional.conftest import (  # noqa: F401 - fixtures
    broker,
    clean_ironic,
    ironic,
    rabbitmq,
)
from tests.servers.common import CACHE

FIGURES: list[dict] = []


def pytest_terminal_summary(terminalreporter) -> None:
    if not FIGURES:
        return
    terminalreporter.section('attack figures')
    terminalreporter.write_line(
        f'{"attack":44} {"tries":>5} {"taken":>5} {"next_good_s":>11}  '
        f'refused as')
    for f in FIGURES:
        terminalreporter.write_line(
            f'{f["attack"][:44]:44} {f["attempts"]:>5} {f["accepted"]:>5} '
            f'{f.get("next_good_s", "-")!s:>11}  {f["refused"]}')
    out = CACHE / 'figures'
    out.mkdir(parents=True, exist_ok=True)
    with open(out / 'attack.jsonl', 'a') as handle:
        for f in FIGURES:
            handle.write(json.dumps(f) + '\n')


@pytest.fixture
def figure(request):
    """Record this test's figure: figure(attack=..., attempts=...,
    accepted=..., refused=..., next_good_s=...)."""

    def record(**numbers) -> dict:
        numbers.setdefault('test', request.node.name)
        FIGURES.append(numbers)
        print('FIGURE', json.dumps(numbers))
        return numbers

    return record
