"""Faults under load, each test ending in a figure.

The servers are the functional tests' real ones; a figure is what an
operator would ask after the fault: of the inventories published, how
many were applied, dead-lettered, lost (must be 0), applied twice (must
be 0), and how long the system took to recover. Figures are printed at
the end of the run and written to .cache/figures/chaos.jsonl.
"""

from __future__ import annotations

from tests.chaos.tally import FIGURES
from tests.functional.conftest import (  # noqa: F401 - fixtures
    broker,
    clean_ironic,
    ironic,
    postgres,
    rabbitmq,
)

figure = FIGURES.fixture()


def pytest_terminal_summary(terminalreporter) -> None:
    FIGURES.summary(terminalreporter)
