"""Real servers for the functional tests, one of each per session."""

import pytest

from tests.servers.ironic import IronicServer


@pytest.fixture(scope='session')
def ironic(tmp_path_factory):
    server = IronicServer(tmp_path_factory.mktemp('ironic')).start()
    yield server
    server.stop()


@pytest.fixture
def clean_ironic(ironic):
    """The shared Ironic with no nodes, before and after the test."""
    ironic.delete_all_nodes()
    yield ironic
    ironic.delete_all_nodes()
