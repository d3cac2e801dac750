"""ensure_account: the steps that find or make hwbus's BMC user.

In order: the LAN channels, the user list, then (mode create) a slot, a
password the BMC proves it kept, administrator access on every LAN
channel, and a read-back of what the BMC now reports. The package's
docstring (hwbus.ramdisk.bmc_account) states the policy.
"""

from __future__ import annotations

import logging
import re
import traceback
from collections.abc import Sequence

from hwbus import bmc
from hwbus.ramdisk.bmc_account import passwords
from hwbus.ramdisk.bmc_account.parse import (
    UserSlot,
    parse_channel_access,
    parse_channel_info,
    parse_user_list,
    parse_user_summary,
    parse_user_test,
)
from hwbus.ramdisk.bmc_account.result import AccountResult
from hwbus.ramdisk.bmc_account.session import Session, _Stop
from hwbus.ramdisk.bmc_account.slots import FIRST_SLOT, find_user, free_slots
from hwbus.ramdisk.probes.sysroot import SystemRoot

LOG = logging.getLogger(__name__)

MODES = ('create', 'keep')
DEFAULT_USERNAME = bmc.USERNAME
# The privilege hwbus's user gets: 4 is ADMINISTRATOR, what Ironic needs
# for power, boot device and user management.
ADMINISTRATOR = 4
ADMINISTRATOR_NAME = 'ADMINISTRATOR'
# Channels looked at for LAN when none are given; vendors use 1-3, the
# spec allows 1-11 for media, and ipmi collectors stop at 8.
CHANNELS = range(1, 9)
# Seconds each ipmitool command may take; in-band answers take well under
# a second, a wedged BMC never answers.
DEFAULT_TIMEOUT = 10.0
_USERNAME_RE = re.compile(r'^[A-Za-z0-9._-]{1,16}$')


def ensure_account(root: SystemRoot, *, mode: str,
                   ipmitool: Sequence[str] = ('ipmitool',),
                   username: str = DEFAULT_USERNAME,
                   channels: Sequence[int] | None = None,
                   timeout: float = DEFAULT_TIMEOUT) -> AccountResult:
    """Create or reset (mode create) or find (mode keep) hwbus's BMC user.

    :param ipmitool: the command and its interface options; the default
        talks in-band, tests add ``-I lanplus -H ...``.
    :param channels: LAN channels to give the user access on; default:
        every channel from 1 to 8 whose medium is 802.3 LAN.
    :param timeout: seconds each ipmitool command may take.

    Never raises: every failure is a line in the result's ``errors``.
    """
    result = AccountResult(username=username, mode=mode)
    session = Session(root, ipmitool, timeout)
    try:
        if mode not in MODES:
            raise _Stop(f'unknown BMC account mode {mode!r}: '
                        f'one of {", ".join(MODES)}')
        if not _USERNAME_RE.match(username):
            raise _Stop(f'BMC user name {username!r} is not 1-16 letters, '
                        'digits, ".", "_" or "-"')
        _ensure(session, result, channels)
    except _Stop as stop:
        result.errors.append(str(stop))
    except Exception as exc:
        # A bug here must not cost the inventory. Where it happened is
        # logged, not its message: that could hold a password.
        where = traceback.extract_tb(exc.__traceback__)[-1]
        LOG.error('BMC account: unexpected %s at %s:%s in %s',
                  type(exc).__name__, where.filename, where.lineno,
                  where.name)
        result.errors.append(f'unexpected {type(exc).__name__} while '
                             'managing the BMC account')
    result.errors = [session.scrub(line) for line in result.errors]
    for line in result.errors:
        LOG.warning('BMC account: %s', line)
    LOG.info('BMC account %s: %s slot %s, channels %s, verified %s',
             username, result.action, result.user_id, result.channels,
             result.verified)
    return result


def _ensure(session: Session, result: AccountResult,
            channels: Sequence[int] | None) -> None:
    lan = _lan_channels(session, channels)
    result.channels = sorted(lan)
    first = result.channels[0]
    max_ids = None
    if result.mode == 'create':
        summary = session.must(f'ipmitool-user-summary-{first}',
                               ['user', 'summary', str(first)],
                               f'report its user slots on channel {first}')
        max_ids = parse_user_summary(summary.stdout)
    listing = session.must(f'ipmitool-user-list-{first}',
                           ['-c', 'user', 'list', str(first)],
                           f'list its users on channel {first}')
    slots = parse_user_list(listing.stdout)
    if not slots:
        raise _Stop(f"the BMC's user list of channel {first} has no rows")
    existing = find_user(slots, result.username)

    if result.mode == 'keep':
        if existing is None:
            raise _Stop(f'no user named {result.username!r} in slots '
                        f'{FIRST_SLOT} and up; nothing was changed '
                        '(mode keep)')
        result.user_id, result.action = existing.id, 'kept'
        _read_back(session, result, first)
        return

    if existing is not None:
        user_id = existing.id
    else:
        user_id = _take_free_slot(session, slots, max_ids, first,
                                  result.username)
        session.must(f'ipmitool-user-set-name-{user_id}',
                     ['user', 'set', 'name', str(user_id),
                      result.username],
                     f'set the user name of slot {user_id}')
    result.user_id = user_id
    _set_password(session, result, user_id)
    result.action = 'reset' if existing is not None else 'created'
    for channel in result.channels:
        step = session.run(
            f'ipmitool-channel-setaccess-{channel}-{user_id}',
            ['channel', 'setaccess', str(channel), str(user_id),
             'callin=on', 'ipmi=on', 'link=on',
             f'privilege={ADMINISTRATOR}'],
            f'give slot {user_id} administrator access on channel '
            f'{channel}')
        if not step.ok:
            result.errors.append(session.refused(
                f'give slot {user_id} administrator access on channel '
                f'{channel}', step))
    session.must(f'ipmitool-user-enable-{user_id}',
                 ['user', 'enable', str(user_id)], f'enable slot {user_id}')
    for channel in result.channels:
        _lan_access(session, result, channel, lan[channel])
    _read_back(session, result, first)
    if result.privilege not in (None, ADMINISTRATOR_NAME):
        result.errors.append(
            f'slot {user_id} reports privilege {result.privilege} '
            f'on channel {first}, not {ADMINISTRATOR_NAME}')


def _lan_channels(session: Session,
                  channels: Sequence[int] | None) -> dict[int, dict]:
    """LAN channels by number, with what ``channel info`` says of each.

    ``channel info`` is the check ``ipmitool lan print`` makes first (the
    medium must be 802.3 LAN), in one command instead of twenty.
    """
    found, first_failure = {}, ''
    for channel in CHANNELS if channels is None else channels:
        step = session.run(f'ipmitool-channel-info-{channel}',
                           ['channel', 'info', str(channel)],
                           f'describe channel {channel}')
        if not step.ok:
            if channels is not None:
                raise _Stop(session.refused(f'describe channel {channel}',
                                            step))
            first_failure = first_failure or \
                f'channel {channel}: {session.detail(step)}'
            continue
        info = parse_channel_info(step.stdout)
        if info['medium'] == '802.3 LAN':
            found[channel] = info
        elif channels is not None:
            raise _Stop(f'channel {channel} is not a LAN channel '
                        f'({info["medium"] or "no medium given"})')
    if not found:
        raise _Stop('no LAN channel among channels 1-8'
                    + (f' ({first_failure})' if first_failure else ''))
    return found


def _take_free_slot(session: Session, slots: list[UserSlot],
                    max_ids: int | None, channel: int,
                    username: str) -> int:
    """The first free slot whose enable status is not "enabled"."""
    for user_id in free_slots(slots, max_ids):
        step = session.run(f'ipmitool-channel-getaccess-{channel}-{user_id}',
                           ['channel', 'getaccess', str(channel),
                            str(user_id)],
                           f'describe slot {user_id}')
        if step.ok and parse_channel_access(step.stdout)['enabled'] \
                is not True:
            return user_id
    last = max_ids or max((s.id for s in slots), default=FIRST_SLOT)
    raise _Stop(f'no free user slot for {username!r}: slots {FIRST_SLOT}-'
                f'{last} are all in use; nothing was changed')


def _set_password(session: Session, result: AccountResult,
                  user_id: int) -> None:
    """Set a random password, 20 characters if the BMC keeps them.

    A BMC whose password test also accepts a wrong password cannot show
    that it kept all 20 bytes (ipmi_sim keeps 16 and says success to
    both), so the password becomes 16 characters, a length every IPMI
    BMC stores whole, and stays unverified.
    """
    refusal, problem = '', None
    for length in passwords.PASSWORD_LENGTHS:
        password = passwords.new_password(length)
        session.secrets.append(password)
        step = session.run(
            f'ipmitool-user-set-password-{user_id}-{length}',
            ['user', 'set', 'password', str(user_id), password,
             str(length)],
            f'set the password of slot {user_id}', secret=[password])
        if not step.ok:
            refusal = session.detail(step)
            continue
        # From here on the BMC holds this password, whatever follows.
        result.password, result.verified_how, problem = password, '', None
        accepted = _test(session, user_id, length, password, 'password')
        if accepted is None:
            result.verified_how = ('the BMC gave no answer to the password '
                                   'test')
            return
        if not accepted:
            problem = (f"the BMC's password test refuses the {length}-"
                       f'character password just set for slot {user_id}')
            result.verified_how = problem
            continue
        wrong = passwords.new_password(length)
        while wrong == password:
            wrong = passwords.new_password(length)
        session.secrets.append(wrong)
        if _test(session, user_id, length, wrong, 'control') is False:
            result.verified = True
            result.verified_how = (f'user test accepts the {length}-'
                                   'character password and refuses a '
                                   'wrong one')
            return
        result.verified_how = ("the BMC's password test accepts a wrong "
                               'password too, so it proves nothing')
    if result.password is None:
        raise _Stop(f'the BMC refused to set the password of slot '
                    f'{user_id}: {refusal}')
    if problem:
        result.errors.append(problem)


def _test(session: Session, user_id: int, length: int, password: str,
          which: str) -> bool | None:
    step = session.run(f'ipmitool-user-test-{user_id}-{length}-{which}',
                       ['user', 'test', str(user_id), str(length),
                        password],
                       f'test the password of slot {user_id}',
                       secret=[password])
    return parse_user_test(step.stdout)


def _lan_access(session: Session, result: AccountResult, channel: int,
                info: dict) -> None:
    """Make the channel always available, unless it already is."""
    if info.get('access_mode') == 'always available':
        return
    step = session.run(f'ipmitool-lan-set-access-{channel}',
                       ['lan', 'set', str(channel), 'access', 'on'],
                       f'turn on LAN access on channel {channel}')
    if not step.ok:
        result.errors.append(
            f'LAN channel {channel} is '
            f'{info.get("access_mode") or "of unknown access mode"} and '
            + session.refused('make it always available', step))


def _read_back(session: Session, result: AccountResult,
               channel: int) -> None:
    """The user's privilege and enable status, as the BMC reports them."""
    step = session.run(
        f'ipmitool-channel-getaccess-{channel}-{result.user_id}-after',
        ['channel', 'getaccess', str(channel), str(result.user_id)],
        f'describe slot {result.user_id}')
    if not step.ok:
        result.errors.append(session.refused(
            f'describe slot {result.user_id}', step))
        return
    access = parse_channel_access(step.stdout)
    result.privilege = access['privilege'] or None
    result.enabled = access['enabled'] if access['enabled'] is not None \
        else access['ipmi_messaging']
