"""hwbus's BMC user: parsing, the slot policy, and never leaking the
password, against a fake BMC that answers as ipmitool prints."""

import copy
import dataclasses
import logging
import random
import string

import pytest

from hwbus.ramdisk.bmc_account import passwords
from hwbus.ramdisk.bmc_account.ensure import ensure_account
from hwbus.ramdisk.bmc_account.parse import (
    UserSlot,
    parse_channel_access,
    parse_channel_info,
    parse_user_list,
    parse_user_summary,
    parse_user_test,
)
from hwbus.ramdisk.bmc_account.slots import find_user, free_slots
from hwbus.ramdisk.probes.sysroot import (
    CommandNotFound,
    CommandResult,
    CommandTimeout,
    SystemRoot,
)

PREFIX = ['ipmitool', '-I', 'lanplus', '-H', 'bmc', '-U', 'admin', '-P',
          'admin-pw']
HPM = 'Get HPM.x Capabilities request failed, compcode = d4\n'


@dataclasses.dataclass
class Slot:
    name: str = ''
    password: str = ''
    messaging: bool = False
    privilege: int = 0xf
    status: str = 'disabled'


class FakeBmc:
    """A BMC behind ipmitool: run() takes what SystemRoot.run takes.

    :param stores: bytes of a password it keeps (ipmi_sim: 16).
    :param honest_test: whether ``user test`` compares at all.
    :param max_password: the longest password form it accepts.
    """

    PRIVILEGES = {1: 'CALLBACK', 2: 'USER', 3: 'OPERATOR',
                  4: 'ADMINISTRATOR', 0xf: 'NO ACCESS'}

    def __init__(self, max_ids=10, lan=(1,), stores=20, honest_test=True,
                 max_password=20, access_mode='always available',
                 refuse=(), timeout=()):
        self.slots = {i: Slot() for i in range(1, max_ids + 1)}
        self.slots[1] = Slot(messaging=True, privilege=2, status='enabled')
        self.slots[2] = Slot('admin', 'admin-pw', True, 4, 'enabled')
        self.lan = {ch: access_mode for ch in lan}
        self.stores, self.honest_test = stores, honest_test
        self.max_password = max_password
        self.refuse, self.timeout = set(refuse), set(timeout)
        self.calls = []

    def run(self, name, argv, timeout=None, redact=()):
        assert list(argv[:len(PREFIX)]) == PREFIX
        args = list(argv[len(PREFIX):])
        self.calls.append((name, args))
        verb = ' '.join(a for a in args[:3] if not a.isdigit())
        if verb in self.timeout:
            raise CommandTimeout('ipmitool did not finish within 10 s')
        if verb in self.refuse:
            return CommandResult(1, '', HPM + 'IPMI command failed: '
                                 'Insufficient privilege level\n')
        return getattr(self, '_' + verb.replace(' ', '_').replace(
            '-', ''))(*args[len(verb.split()):])

    def _channel_info(self, ch):
        if int(ch) not in self.lan:
            return CommandResult(1, '', 'Get Channel Info command failed: '
                                 'Requested sensor, data, or record not '
                                 'found\n')
        return CommandResult(0, f'''Channel 0x{ch} info:
  Channel Medium Type   : 802.3 LAN
  Volatile(active) Settings
    Access Mode         : {self.lan[int(ch)]}
  Non-Volatile Settings
    Access Mode         : always available
''')

    def _user_summary(self, ch):
        return CommandResult(0, f'Maximum IDs\t    : {len(self.slots)}\n'
                             'Enabled User Count  : 2\n')

    def _c_user_list(self, ch):
        return CommandResult(0, ''.join(
            f'{i},{s.name},true,false,{str(s.messaging).lower()},'
            f'{self.PRIVILEGES[s.privilege]}\n'
            for i, s in self.slots.items()))

    def _channel_getaccess(self, ch, user_id):
        s = self.slots[int(user_id)]
        return CommandResult(0, f'''Maximum User IDs     : {len(self.slots)}
User ID              : {user_id}
User Name            : {s.name}
IPMI Messaging       : {"enabled" if s.messaging else "disabled"}
Privilege Level      : {self.PRIVILEGES[s.privilege]}
Enable Status        : {s.status}
''')

    def _user_set_name(self, user_id, name):
        self.slots[int(user_id)].name = name
        return CommandResult(0, '')

    def _user_set_password(self, user_id, password, length):
        if int(length) > self.max_password:
            return CommandResult(1, '', 'IPMI command failed: Request data '
                                 'length invalid\nSet User Password command '
                                 f'failed (user {user_id})\n')
        self.slots[int(user_id)].password = password[:self.stores]
        return CommandResult(0, 'Set User Password command successful '
                             f'(user {user_id})\n')

    def _user_test(self, user_id, length, password):
        if not self.honest_test or \
                self.slots[int(user_id)].password == password:
            return CommandResult(0, 'Success\n')
        return CommandResult(1, 'Failure: password incorrect\n')

    def _user_enable(self, user_id):
        slot = self.slots[int(user_id)]
        slot.status, slot.messaging = 'enabled', True
        return CommandResult(0, '')

    def _channel_setaccess(self, ch, user_id, *options):
        assert 'privilege=4' in options and 'ipmi=on' in options
        self.slots[int(user_id)].privilege = 4
        return CommandResult(0, f'Set User Access (channel {ch} id '
                             f'{user_id}) successful.\n')

    def _lan_set(self, ch, *options):
        self.lan[int(ch)] = 'always available'
        return CommandResult(0, '')

    def verbs(self):
        return [' '.join(a for a in args[:3] if not a.isdigit())
                for _, args in self.calls]


def ensure(bmc, **kwargs):
    kwargs.setdefault('mode', 'create')
    return ensure_account(bmc, ipmitool=PREFIX, **kwargs)


# -- parsing ----------------------------------------------------------

def test_user_list_keeps_names_with_commas_and_skips_what_is_no_row():
    slots = parse_user_list('ID,Name\n1,,true,false,false,NO ACCESS\n'
                            '3,a,b,c,true,true,true,ADMINISTRATOR\n'
                            '4,x,maybe,false,true,USER\n'
                            '99,big,true,false,true,USER\n'
                            '3,again,true,false,false,USER\n')
    assert slots == [
        UserSlot(1, '', True, False, False, 'NO ACCESS'),
        UserSlot(3, 'a,b,c', True, True, True, 'ADMINISTRATOR')]


def test_parsers_are_total_on_hostile_output():
    rng = random.Random(7)
    alphabet = string.printable + ',:\x00\xff\u2028'
    for _ in range(2000):
        text = ''.join(rng.choice(alphabet)
                       for _ in range(rng.randrange(80)))
        parse_user_list(text)
        parse_user_summary(text)
        parse_channel_info(text)
        parse_channel_access(text)
        parse_user_test(text)


def test_summary_channel_info_and_access_read_what_matters():
    assert parse_user_summary('Maximum IDs\t    : 63\n') == 63
    assert parse_user_summary('Maximum IDs : 0\n') is None
    assert parse_user_summary('Maximum IDs : lots\n') is None
    info = FakeBmc(access_mode='disabled')._channel_info('1').stdout
    assert parse_channel_info(info) == {'medium': '802.3 LAN',
                                        'access_mode': 'disabled'}
    access = parse_channel_access(
        'User Name : hwbus\nPrivilege Level : ADMINISTRATOR\n'
        'IPMI Messaging : enabled\nEnable Status : unknown\n')
    assert access == {'name': 'hwbus', 'privilege': 'ADMINISTRATOR',
                      'ipmi_messaging': True, 'enabled': None}
    assert parse_user_test('Success\n') is True
    assert parse_user_test('Failure: wrong password size\n') is False
    assert parse_user_test('Unknown error\n') is None


# -- the slot policy --------------------------------------------------

def _slots(*rows):
    return [UserSlot(i, name, True, False, messaging, 'USER')
            for i, name, messaging in rows]


def test_slots_1_and_2_are_never_free_nor_ours():
    slots = _slots((1, '', False), (2, 'hwbus', True), (3, 'ops', True),
                   (4, '', True), (5, 'old', False), (6, '', False),
                   (7, '', False))
    assert free_slots(slots) == [6, 7]
    assert free_slots(slots, max_ids=6) == [6]
    assert find_user(slots, 'hwbus') is None
    assert find_user(slots + _slots((9, 'hwbus', False)), 'hwbus').id == 9


def test_fresh_account_is_the_first_free_slot_with_20_characters():
    bmc = FakeBmc(lan=(1, 2))
    result = ensure(bmc)
    assert result.errors == []
    assert (result.user_id, result.action, result.channels) == (
        3, 'created', [1, 2])
    assert len(result.password) == 20
    assert set(result.password) <= set(passwords.PASSWORD_ALPHABET)
    assert result.verified and 'refuses a wrong one' in result.verified_how
    assert (result.privilege, result.enabled) == ('ADMINISTRATOR', True)
    slot = bmc.slots[3]
    assert (slot.name, slot.password, slot.status) == (
        'hwbus', result.password, 'enabled')
    assert bmc.verbs().count('channel setaccess') == 2
    assert 'lan set' not in bmc.verbs()  # already always available
    assert result.ok


def test_existing_user_keeps_its_slot_and_gets_a_new_password():
    bmc = FakeBmc()
    bmc.slots[5] = Slot('hwbus', 'old-password', True, 2, 'enabled')
    result = ensure(bmc)
    assert (result.user_id, result.action) == (5, 'reset')
    assert bmc.slots[5].password == result.password != 'old-password'
    assert bmc.slots[5].privilege == 4
    assert 'user set name' not in bmc.verbs()


def test_an_empty_slot_reported_enabled_is_not_taken():
    bmc = FakeBmc()
    bmc.slots[3].status = 'enabled'
    assert ensure(bmc).user_id == 4
    assert bmc.slots[3] == Slot(status='enabled')


def test_no_free_slot_is_one_clear_error_and_nothing_changes():
    bmc = FakeBmc(max_ids=4)
    bmc.slots[3] = Slot('ops', 'x', True, 3, 'enabled')
    bmc.slots[4] = Slot('', '', True, 2, 'enabled')
    snapshot = copy.deepcopy(bmc.slots)
    result = ensure(bmc)
    assert result.errors == ["no free user slot for 'hwbus': slots 3-4 are "
                             'all in use; nothing was changed']
    assert bmc.slots == snapshot
    assert not any(v.startswith(('user set', 'user enable', 'channel set'))
                   for v in bmc.verbs())
    assert result.user_id is None and result.password is None


def test_a_bmc_refusing_20_characters_gets_16():
    bmc = FakeBmc(max_password=16)
    result = ensure(bmc)
    assert len(result.password) == 16 and result.verified
    assert bmc.slots[3].password == result.password
    assert result.errors == []


def test_a_password_test_that_accepts_anything_leaves_16_unverified():
    """ipmi_sim: keeps 16 of 20 bytes and its test says yes to all."""
    bmc = FakeBmc(stores=16, honest_test=False)
    result = ensure(bmc)
    assert len(result.password) == 16
    assert bmc.slots[3].password == result.password
    assert not result.verified
    assert 'accepts a wrong password' in result.verified_how
    assert result.errors == []


def test_refused_user_name_is_one_line_and_the_slot_is_untouched():
    bmc = FakeBmc(refuse={'user set name'})
    result = ensure(bmc)
    assert result.errors == [
        'the BMC refused to set the user name of slot 3: IPMI command '
        'failed: Insufficient privilege level']
    assert bmc.slots[3] == Slot()
    assert bmc.verbs()[-1] == 'user set name'


def test_a_disabled_lan_channel_is_turned_on():
    bmc = FakeBmc(access_mode='disabled')
    result = ensure(bmc)
    assert 'lan set' in bmc.verbs() and bmc.lan[1] == 'always available'
    assert result.errors == []


def test_refused_lan_access_on_a_disabled_channel_is_an_error():
    bmc = FakeBmc(access_mode='disabled', refuse={'lan set'})
    result = ensure(bmc)
    assert result.errors == [
        'LAN channel 1 is disabled and the BMC refused to make it always '
        'available: IPMI command failed: Insufficient privilege level']
    assert result.password and result.user_id == 3


def test_keep_mode_only_reads():
    bmc = FakeBmc()
    bmc.slots[4] = Slot('hwbus', 'ironic-knows-it', True, 4, 'enabled')
    result = ensure(bmc, mode='keep')
    assert (result.user_id, result.action, result.password) == (
        4, 'kept', None)
    assert result.privilege == 'ADMINISTRATOR' and result.enabled
    assert set(bmc.verbs()) <= {'channel info', '-c user list',
                                'channel getaccess'}
    assert ensure(FakeBmc(), mode='keep').errors == [
        "no user named 'hwbus' in slots 3 and up; nothing was changed "
        '(mode keep)']


def test_a_bmc_that_stops_answering_costs_one_error_and_no_exception():
    result = ensure(FakeBmc(timeout={'user enable'}))
    assert result.errors == ['the BMC did not answer within 10 s when asked '
                             'to enable slot 3']
    assert result.user_id == 3 and result.password


def test_missing_ipmitool_and_bad_arguments_are_errors_not_exceptions():
    class NoTool(FakeBmc):
        def run(self, name, argv, timeout=None, redact=()):
            raise CommandNotFound('ipmitool is not installed')

    assert ensure(NoTool()).errors == [
        'ipmitool is not installed: cannot describe channel 1']
    bmc = FakeBmc()
    assert ensure(bmc, mode='replace').errors == [
        "unknown BMC account mode 'replace': one of create, keep"]
    assert 'is not 1-16' in ensure(bmc, username='a b').errors[0]
    assert bmc.calls == []


def test_a_bug_inside_is_reported_not_raised_nor_its_message_logged(
        caplog):
    class Broken(FakeBmc):
        def _user_summary(self, ch):
            raise KeyError('might-be-a-password')

    caplog.set_level(logging.DEBUG)
    assert ensure(Broken()).errors == [
        'unexpected KeyError while managing the BMC account']
    assert 'unexpected KeyError at ' in caplog.text
    assert 'might-be-a-password' not in caplog.text


def test_the_password_is_only_ever_on_the_set_and_test_command_lines(
        caplog):
    class Echoing(FakeBmc):
        """Puts its whole command line in every refusal."""

        def run(self, name, argv, timeout=None, redact=()):
            result = super().run(name, argv, timeout, redact)
            if argv[len(PREFIX):][:3] == ['user', 'set', 'password']:
                return CommandResult(1, ' '.join(argv), ' '.join(argv))
            return result

    caplog.set_level(logging.DEBUG)
    bmc = Echoing()
    result = ensure(bmc)
    assert result.password is None
    assert len(result.errors) == 1
    assert result.errors[0].startswith(
        'the BMC refused to set the password of slot 3: ipmitool')
    for _name, args in bmc.calls:
        if args[:3] == ['user', 'set', 'password'] or \
                args[:2] == ['user', 'test']:
            continue
        assert not any(len(a) in (16, 20) and a.isalnum() for a in args)
    generated = [args[4] for _, args in bmc.calls
                 if args[:3] == ['user', 'set', 'password']]
    assert [len(p) for p in generated] == [20, 16]
    for password in generated:
        assert password not in ' '.join(result.errors)
        assert password not in caplog.text
        assert not any(password in name for name, _ in bmc.calls)


def test_a_recording_never_holds_the_password(tmp_path, monkeypatch):
    """A tool that echoes its arguments, recorded by the real SystemRoot:
    the recording has the step names and outputs, never a password."""
    tool = tmp_path / 'ipmitool'
    tool.write_text('''#!/bin/sh
echo "args: $*" >&2
case "$*" in
*"channel info 1"*) printf '  Channel Medium Type : 802.3 LAN\\n'
    printf '    Access Mode : always available\\n' ;;
*"channel info"*) exit 1 ;;
*"user summary"*) echo "Maximum IDs : 4" ;;
*"user list"*) echo "1,,true,false,false,NO ACCESS"
    echo "2,admin,true,false,true,ADMINISTRATOR"
    echo "3,,true,false,false,NO ACCESS" ;;
*"channel getaccess"*) echo "Privilege Level : ADMINISTRATOR"
    echo "Enable Status : disabled" ;;
*"user test"*) echo "Success $*" ;;
*) echo "done: $*" ;;
esac
''')
    tool.chmod(0o755)
    generated = []
    real = passwords.new_password

    def remembered(length):
        generated.append(real(length))
        return generated[-1]

    monkeypatch.setattr(passwords, 'new_password', remembered)
    recording = tmp_path / 'recording'
    result = ensure_account(SystemRoot('/', record_to=str(recording)),
                            mode='create', ipmitool=[str(tool)])
    assert result.user_id == 3 and result.errors == []
    assert len(generated) >= 3
    files = [p for p in recording.rglob('*') if p.is_file()]
    assert any(p.name == 'ipmitool-user-set-password-3-20.out'
               for p in files)
    for path in files:
        text = path.read_text(errors='replace')
        assert not any(password in text for password in generated), path
    assert 'args: user set password 3 *** 20' in (
        recording / 'cmd' / 'ipmitool-user-set-password-3-20.err'
    ).read_text()


@pytest.mark.parametrize('length', [16, 20])
def test_passwords_are_letters_and_digits_of_the_asked_length(length):
    made = {passwords.new_password(length) for _ in range(50)}
    assert len(made) == 50
    assert all(len(p) == length and p.isalnum() and p.isascii()
               for p in made)
