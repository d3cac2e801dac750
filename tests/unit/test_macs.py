"""hwbus.macs: the one rule for MACs that both sides use."""

import pytest

from hwbus import macs


@pytest.mark.parametrize('text, want', [
    ('52:54:00:ab:cd:ef', '52:54:00:ab:cd:ef'),
    ('52:54:00:AB:CD:EF', '52:54:00:ab:cd:ef'),
    ('52-54-00-ab-cd-ef', '52:54:00:ab:cd:ef'),
    ('525400ABCDEF', '52:54:00:ab:cd:ef'),
    ('  52:54:00:ab:cd:ef\n', '52:54:00:ab:cd:ef'),
    ('01:00:5e:00:00:01', '01:00:5e:00:00:01'),
    ('00:00:00:00:00:00', '00:00:00:00:00:00'),
])
def test_parse_gives_the_canonical_form(text, want):
    assert macs.parse(text) == want


@pytest.mark.parametrize('text', [
    None, '', '   ', 'garbage', 'zz:54:00:ab:cd:ef', '52:54:00:ab:cd',
    '52:54:00:ab:cd:ef:01', '52:54:00:ab:cd:e', '5254.00ab.cdef',
    '52:54:00:ab:cd:ef\nx', '52 54 00 ab cd ef', '525400abcde',
    # FireWire (8 bytes) and InfiniBand (20 bytes) link addresses.
    '00:11:22:33:44:55:66:77',
    'a0:00:02:20:fe:80:00:00:00:00:00:00:7c:fe:90:03:00:29:26:52',
    '\uff15\uff12:54:00:ab:cd:ef', 'x' * 1000,
])
def test_parse_refuses_what_is_no_6_byte_address(text):
    assert macs.parse(text) is None


@pytest.mark.parametrize('mac, multicast, nic', [
    ('52:54:00:ab:cd:ef', False, True),
    ('3c:fd:fe:a0:00:01', False, True),
    ('02:00:00:00:00:01', False, True),    # locally administered is fine
    ('01:00:5e:00:00:01', True, False),    # IPv4 multicast
    ('33:33:00:00:00:01', True, False),    # IPv6 multicast
    ('ff:ff:ff:ff:ff:ff', True, False),    # broadcast
    ('00:00:00:00:00:00', False, False),
])
def test_what_a_nic_can_carry(mac, multicast, nic):
    assert macs.is_multicast(mac) is multicast
    assert macs.is_nic_address(mac) is nic


def test_parse_nic_is_parse_and_the_predicate():
    assert macs.parse_nic('52-54-00-AB-CD-EF') == '52:54:00:ab:cd:ef'
    assert macs.parse_nic('01:00:5e:00:00:01') is None
    assert macs.parse_nic('00-00-00-00-00-00') is None
    assert macs.parse_nic('garbage') is None
    assert macs.parse_nic(None) is None
