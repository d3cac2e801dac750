"""hwbus's BMC user against a real emulated BMC (OpenIPMI's ipmi_sim).

ensure_account runs the same ipmitool commands it runs in-band, over
lanplus as the BMC's administrator; the outcome is checked over LAN the
way Ironic will use it: logging in with the returned password.
"""

import time

import pytest

from hwbus.localstack.bmc import BmcUser, EmulatedBmc, default_users
from hwbus.localstack.common import free_port
from hwbus.ramdisk.bmc_account.ensure import ensure_account
from hwbus.ramdisk.collectors.bmc import parse_lan_print
from hwbus.ramdisk.probes.sysroot import SystemRoot

ADMIN_PASSWORD = 'Adm1nPassw0rd4u'


@pytest.fixture
def make_bmc(tmp_path):
    started = []

    def make(extra_users=(), **kwargs):
        users = default_users(ADMIN_PASSWORD) + list(extra_users)
        bmc = EmulatedBmc(tmp_path / f'bmc{len(started)}', '127.0.0.1',
                          free_port(), users=users, **kwargs)
        started.append(bmc.start())
        return bmc

    yield make
    for bmc in started:
        bmc.stop()


def account(bmc, **kwargs):
    kwargs.setdefault('mode', 'create')
    return ensure_account(SystemRoot('/'), ipmitool=bmc.ipmitool_argv(),
                          **kwargs)


def _untouched_1_and_2(before, bmc):
    assert bmc.users()[:2] == before[:2]
    assert bmc.check_password(2, ADMIN_PASSWORD)


def test_fresh_account_logs_in_over_lan_as_administrator(make_bmc):
    bmc = make_bmc()
    before = bmc.users()
    started = time.monotonic()
    result = account(bmc)
    took = time.monotonic() - started
    assert result.errors == [], result.errors
    assert (result.user_id, result.action, result.channels) == (
        3, 'created', [1])
    assert bmc.check_password(3, result.password)
    assert bmc.check_password('hwbus', result.password)
    entry = bmc.user(3)
    assert (entry.name, entry.enabled, entry.privilege) == (
        'hwbus', True, 'ADMINISTRATOR')
    assert (result.privilege, result.enabled) == ('ADMINISTRATOR', True)
    _untouched_1_and_2(before, bmc)
    assert bmc.users()[3:] == before[3:]
    print(f'ensure_account against ipmi_sim: {took:.2f} s')


def test_ipmi_sim_password_test_proves_nothing_so_the_password_is_16(
        make_bmc):
    """ipmi_sim keeps 16 of a 20-byte password and its password test
    accepts anything: a 20-character password would not log in."""
    bmc = make_bmc()
    result = account(bmc)
    assert len(result.password) == 16 and result.password.isalnum()
    assert not result.verified
    assert 'accepts a wrong password' in result.verified_how
    bmc.ipmitool('user', 'set', 'password', '3', 'A' * 20, '20')
    assert not bmc.check_password(3, 'A' * 20)
    assert bmc.check_password(3, 'A' * 16)


def test_existing_hwbus_user_is_reused_with_a_new_password(make_bmc):
    bmc = make_bmc([BmcUser(3, 'ops', 'opsPassw0rd', 'operator'),
                    BmcUser(5, 'hwbus', 'oldPassw0rd', 'user')])
    before = bmc.users()
    assert bmc.check_password(5, 'oldPassw0rd', privilege='USER')
    result = account(bmc)
    assert result.errors == []
    assert (result.user_id, result.action) == (5, 'reset')
    assert bmc.check_password(5, result.password)
    assert not bmc.check_password(5, 'oldPassw0rd', privilege='USER')
    assert bmc.user(5).privilege == 'ADMINISTRATOR'
    assert bmc.user(3) == before[2]
    assert bmc.check_password(3, 'opsPassw0rd', privilege='OPERATOR')
    assert bmc.user(4) == before[3]
    _untouched_1_and_2(before, bmc)


def test_keep_mode_changes_nothing(make_bmc):
    bmc = make_bmc([BmcUser(4, 'hwbus', 'ironicKnowsIt', 'admin')])
    before = bmc.users()
    result = account(bmc, mode='keep')
    assert result.errors == []
    assert (result.user_id, result.action, result.password) == (
        4, 'kept', None)
    assert (result.privilege, result.enabled) == ('ADMINISTRATOR', True)
    assert bmc.users() == before
    assert bmc.check_password(4, 'ironicKnowsIt')


def test_keep_mode_without_the_user_says_so(make_bmc):
    bmc = make_bmc()
    before = bmc.users()
    result = account(bmc, mode='keep')
    assert result.errors == ["no user named 'hwbus' in slots 3 and up; "
                             'nothing was changed (mode keep)']
    assert bmc.users() == before


def test_a_full_user_table_is_a_clear_error_and_nothing_changes(make_bmc):
    bmc = make_bmc([BmcUser(i, f'user{i}', f'Passw0rd{i}', 'user')
                    for i in range(3, 64)])
    before = bmc.users()
    result = account(bmc)
    assert result.errors == ["no free user slot for 'hwbus': slots 3-63 "
                             'are all in use; nothing was changed']
    assert result.user_id is None and result.password is None
    assert bmc.users() == before
    assert bmc.check_password(40, 'Passw0rd40', privilege='USER')
    _untouched_1_and_2(before, bmc)


def test_a_bmc_refusing_user_creation_is_a_clear_error(make_bmc):
    """An operator session may read the user table but not change it."""
    bmc = make_bmc([BmcUser(3, 'oper', 'operPassw0rd', 'operator')])
    before = bmc.users()
    result = ensure_account(
        SystemRoot('/'), mode='create',
        ipmitool=bmc.ipmitool_argv('oper', 'operPassw0rd', 'OPERATOR'))
    assert result.errors == [
        'the BMC refused to set the user name of slot 4: Set User Name '
        'command failed (user 4, name hwbus): Insufficient privilege level']
    assert result.password is None
    assert bmc.users() == before
    _untouched_1_and_2(before, bmc)


def test_a_bmc_that_does_not_answer_costs_one_timeout(make_bmc):
    bmc = make_bmc()
    bmc.stop()
    started = time.monotonic()
    result = ensure_account(
        SystemRoot('/'), mode='create', timeout=1,
        ipmitool=[*bmc.ipmitool_argv(), '-N', '1', '-R', '1'],
        channels=[1])
    assert time.monotonic() - started < 5
    assert len(result.errors) == 1
    assert result.errors[0].startswith('the BMC ')
    assert 'channel 1' in result.errors[0]


def test_the_guest_reads_the_lan_configuration_it_was_given(make_bmc):
    bmc = make_bmc(lan_ip='10.20.30.40', lan_mac='52:54:00:aa:bb:cc')
    fields = parse_lan_print(bmc.ipmitool('lan', 'print', '1').stdout)
    assert fields['IP Address'] == '10.20.30.40'
    assert fields['MAC Address'] == '52:54:00:aa:bb:cc'
    assert fields['Subnet Mask'] == '255.255.255.0'
    assert fields['IP Address Source'] == 'Static Address'


def test_users_changed_over_ipmi_survive_a_restart(make_bmc):
    bmc = make_bmc()
    result = account(bmc)
    bmc.restart()
    assert bmc.check_password(result.user_id, result.password)
    assert bmc.user(result.user_id).name == 'hwbus'
