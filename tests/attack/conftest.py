"""Attacks from the provisioning network, each ending in a figure.

The servers are the functional tests' real ones. An attack sends what an
attacker with credentials anyone can get from the boot server can send;
its figure says how many attempts were made, how many were accepted
(must be 0), what refused them, and the seconds from the attack to the
next legitimate boot being applied (measured, never asserted). Figures
are printed at the end and written to .cache/figures/attack.jsonl.
"""

from __future__ import annotations

from tests.figures import Figures
from tests.functional.conftest import (  # noqa: F401 - fixtures
    broker,
    clean_ironic,
    ironic,
    rabbitmq,
)

FIGURES = Figures('attack', 'attack', ('attempts', 'accepted',
                                       'next_good_s', 'refused'), width=44)
figure = FIGURES.fixture()


def pytest_terminal_summary(terminalreporter) -> None:
    FIGURES.summary(terminalreporter)
