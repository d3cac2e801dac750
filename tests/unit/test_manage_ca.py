"""hwbus.ca comes from [broker] ca_file: one certificate, the first."""

import pytest

from hwbus import keys
from hwbus.cmd import wiring
from hwbus.conf import CONF
from hwbus.localstack.tls import CA


@pytest.fixture
def ca_file(tmp_path):
    def use(text: str):
        path = tmp_path / 'ca.pem'
        path.write_text(text)
        CONF.set_override('ca_file', str(path), group='broker')
        return path

    yield use
    CONF.clear_override('ca_file', group='broker')


def _pem(ca: CA, tmp_path, name: str) -> str:
    return ca.write(tmp_path / name).read_text()


def test_a_bundle_pins_its_first_ca(ca_file, tmp_path):
    old, new = CA('old'), CA('new')
    ca_file(_pem(old, tmp_path, 'a') + _pem(new, tmp_path, 'b'))
    assert wiring.broker_ca() == keys.b64encode(old.der)


def test_a_file_without_a_certificate_is_an_error(ca_file):
    ca_file('not a certificate\n')
    with pytest.raises(ValueError, match='no PEM certificate'):
        wiring.broker_ca()
