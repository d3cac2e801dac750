"""hwbus-collect on the command line."""

import json

import pytest

from hwbus.cmd import collect
from tests.unit.machine import Machine


@pytest.fixture
def machine(tmp_path):
    m = Machine(tmp_path / 'm').nic('eno1', '3c:fd:fe:a0:00:01')
    m.file('/proc/cpuinfo', 'processor\t: 0\nmodel name\t: Test CPU\n\n')
    m.file('/proc/meminfo', 'MemTotal: 1024 kB\n')
    return m


def test_replays_a_recorded_machine_as_json(machine, capsys):
    assert collect.main(['--root', str(machine.path)]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document['inventory']['interfaces'][0]['mac_address'] == \
        '3c:fd:fe:a0:00:01'


@pytest.mark.parametrize('fmt', ['table', 'yaml'])
def test_other_formats(machine, capsys, fmt):
    assert collect.main(['--root', str(machine.path), '--format', fmt]) == 0
    assert '3c:fd:fe:a0:00:01' in capsys.readouterr().out


def test_only_the_named_collectors_run(machine, capsys):
    assert collect.main(['--root', str(machine.path),
                         '--collectors', 'interfaces']) == 0
    document = json.loads(capsys.readouterr().out)
    assert document['plugin_data']['collection']['collectors'] == [
        'interfaces']
    assert document['inventory']['cpu']['count'] == 0


def test_unknown_collector_is_a_usage_error(machine, capsys):
    assert collect.main(['--root', str(machine.path),
                         '--collectors', 'warp']) == 2
    assert 'unknown collector' in capsys.readouterr().err


def test_strict_fails_when_something_could_not_be_collected(machine):
    assert collect.main(['--root', str(machine.path), '--strict']) == 3


def test_missing_recording_and_record_with_root_are_usage_errors(tmp_path):
    assert collect.main(['--root', str(tmp_path / 'nope')]) == 2
    assert collect.main(['--root', str(tmp_path), '--record',
                         str(tmp_path / 'r')]) == 2


def test_output_file(machine, tmp_path):
    out = tmp_path / 'doc.json'
    assert collect.main(['--root', str(machine.path), '-o', str(out)]) == 0
    assert json.loads(out.read_text())['inventory']


def test_list_collectors(capsys):
    assert collect.main(['--list-collectors']) == 0
    assert 'hwbus.ramdisk.collectors.disks:collect' in capsys.readouterr().out
