"""Running collectors: failures, hangs and bad data cost only their part."""

import time

import pytest

from hwbus import inventory
from hwbus.ramdisk.collectors import runner
from hwbus.ramdisk.collectors.base import Contribution, Options
from tests.unit.machine import Machine


def _with(monkeypatch, **funcs):
    monkeypatch.setattr(runner, 'load', lambda names=None: dict(funcs))


def _cpu(root, options):
    return Contribution(inventory={'cpu': {
        'model_name': 'X', 'frequency': '1', 'count': 4,
        'architecture': 'x86_64', 'flags': [], 'socket_count': 1}})


def test_a_collector_that_raises_is_recorded_and_the_rest_is_kept(
        tmp_path, monkeypatch):
    def broken(root, options):
        raise OSError('the disk controller went away')
    _with(monkeypatch, cpu=_cpu, disks=broken)
    document = runner.collect(Machine(tmp_path).root())
    assert document['inventory']['cpu']['count'] == 4
    assert document['inventory']['disks'] == []
    assert document['plugin_data']['errors'] == [
        {'collector': 'disks',
         'message': 'OSError: the disk controller went away'}]
    inventory.validate(document)


def test_a_collector_that_hangs_is_abandoned_at_the_deadline(
        tmp_path, monkeypatch):
    def hangs(root, options):
        time.sleep(60)
    _with(monkeypatch, cpu=_cpu, dmi=hangs)
    started = time.monotonic()
    document = runner.collect(Machine(tmp_path).root(), deadline=0.5)
    assert time.monotonic() - started < 5
    assert document['inventory']['cpu']['count'] == 4
    (error,) = document['plugin_data']['errors']
    assert error['collector'] == 'dmi'
    assert 'did not finish' in error['message']
    inventory.validate(document)


def test_data_that_breaks_the_schema_is_dropped_and_blamed(
        tmp_path, monkeypatch):
    def liar(root, options):
        return Contribution(inventory={'memory': {'total': 'lots'}},
                            plugin_data={'site_extra': {'ok': True}})
    _with(monkeypatch, cpu=_cpu, memory=liar)
    document = runner.collect(Machine(tmp_path).root())
    assert document['inventory']['memory'] == {'total': None,
                                               'physical_mb': None}
    assert document['plugin_data']['site_extra'] == {'ok': True}
    (error,) = document['plugin_data']['errors']
    assert error['collector'] == 'memory'
    assert error['message'].startswith('dropped inventory.memory')
    inventory.validate(document)


def test_a_collector_returning_the_wrong_type_is_an_error(
        tmp_path, monkeypatch):
    _with(monkeypatch, cpu=lambda root, options: {'cpu': 1})
    document = runner.collect(Machine(tmp_path).root())
    assert 'not a Contribution' in document['plugin_data']['errors'][0][
        'message']


def test_a_plugin_that_cannot_be_imported_is_an_error(tmp_path, monkeypatch):
    _with(monkeypatch, cpu=_cpu, site=ImportError('no module named x'))
    document = runner.collect(Machine(tmp_path).root())
    assert document['plugin_data']['errors'] == [
        {'collector': 'site', 'message': 'ImportError: no module named x'}]


def test_thousands_of_errors_are_capped(tmp_path, monkeypatch):
    def noisy(root, options):
        return Contribution(errors=[f'e{n}' for n in range(5000)])
    _with(monkeypatch, noisy=noisy)
    document = runner.collect(Machine(tmp_path).root())
    errors = document['plugin_data']['errors']
    assert len(errors) == runner.MAX_ERRORS
    assert errors[-1]['message'] == '4801 more errors not shown'
    inventory.validate(document)


def test_lldp_frames_are_copied_onto_their_interfaces(tmp_path, monkeypatch):
    def nics(root, options):
        return Contribution(inventory={'interfaces': [
            {'name': n, 'mac_address': f'00:11:22:33:44:0{i}',
             'ipv4_address': None, 'ipv6_address': None,
             'has_carrier': True, 'lldp': None, 'vendor': None,
             'product': None, 'client_id': None, 'biosdevname': None,
             'speed_mbps': None, 'pxe_enabled': False, 'pci_address': None,
             'driver': None} for i, n in enumerate(('eno1', 'eno2'))]})

    def lldp(root, options):
        return Contribution(plugin_data={'lldp_raw': {'eno1': [[5, '61']]}})
    _with(monkeypatch, interfaces=nics, lldp=lldp)
    document = runner.collect(Machine(tmp_path).root(),
                              Options(lldp_timeout=1))
    assert [i['lldp'] for i in document['inventory']['interfaces']] == [
        [[5, '61']], []]


def test_unknown_collector_names_are_refused():
    with pytest.raises(runner.UnknownCollector):
        runner.load(['cpu', 'warp-drive'])


def test_all_builtin_collectors_are_installed_in_order():
    names = list(runner.load())
    assert names[:len(runner.DEFAULT_COLLECTORS)] == list(
        runner.DEFAULT_COLLECTORS)
