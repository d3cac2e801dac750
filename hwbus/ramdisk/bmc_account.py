"""hwbus's own BMC user, created in-band with ipmitool.

Zero-touch enrolment needs BMC credentials nobody typed: the ramdisk, root
on the machine, makes a dedicated administrator (``hwbus``) through the
host interface, which needs no password, and the password travels sealed
to the consumer. The consumer then enrols the node with it.

Two modes:

``create``
    Find the user named ``hwbus`` (reuse its slot, new password) or the
    first free slot, and make it an enabled administrator on every LAN
    channel with a fresh random password.
``keep``
    Only find and report the existing user; nothing on the BMC changes
    (the consumer keeps the password Ironic already has).

Slots 1 (anonymous) and 2 (the vendor's administrator on most BMCs) and
any slot that holds another user are never changed. Every failure is one
line in ``AccountResult.errors`` and the function returns: the inventory
goes out whatever the BMC did. The password is on ipmitool's command line
(ipmitool takes it nowhere else without a terminal) but never in a step
name, an error, a log line or a recording (SystemRoot.run's ``redact``).
"""

from __future__ import annotations

import dataclasses
import logging
import re
import secrets
import traceback
from collections.abc import Iterable, Sequence
from typing import Any

from hwbus import bmc
from hwbus.ramdisk.probes.sysroot import (
    CommandError,
    CommandNotFound,
    CommandResult,
    CommandTimeout,
    SystemRoot,
)

LOG = logging.getLogger(__name__)

MODES = ('create', 'keep')
DEFAULT_USERNAME = bmc.USERNAME
PASSWORD_ALPHABET = bmc.PASSWORD_ALPHABET
PASSWORD_LENGTHS = bmc.PASSWORD_LENGTHS
# Slots below this are never changed: 1 is anonymous, 2 the vendor's admin.
FIRST_SLOT = 3
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
# Characters of the BMC's own words kept in one error line.
_DETAIL_CHARS = 200
# ipmitool's own chatter that says nothing about the command asked for.
_NOISE = ('Get HPM.x Capabilities request failed',)
_USERNAME_RE = re.compile(r'^[A-Za-z0-9._-]{1,16}$')
_FIELD_RE = re.compile(r'^\s*([^:]+?)\s*:\s*(.*?)\s*$')


# -- what ipmitool prints -----------------------------------------------

@dataclasses.dataclass(frozen=True)
class UserSlot:
    """One row of ``ipmitool -c user list CH``."""

    id: int
    name: str
    callin: bool
    link_auth: bool
    ipmi_messaging: bool
    privilege: str

    @property
    def looks_free(self) -> bool:
        """No name and no IPMI messaging: nobody uses it over the network.

        Whether it is enabled is only in ``channel getaccess``, asked
        before a slot is taken.
        """
        return not self.name and not self.ipmi_messaging


def _fields(text: str) -> dict[str, str]:
    """"Key : value" lines as a dict; the first of a repeated key wins."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        match = _FIELD_RE.match(line)
        if match:
            fields.setdefault(match.group(1), match.group(2))
    return fields


def parse_user_summary(text: str) -> int | None:
    """The BMC's number of user slots from ``ipmitool user summary``."""
    value = _fields(text).get('Maximum IDs', '')
    return int(value) if value.isdigit() and 0 < int(value) <= 63 else None


def parse_user_list(text: str) -> list[UserSlot]:
    """``ipmitool -c user list`` as slots, ordered by id, each id once.

    Parsed from the right: the last four fields are fixed words, so a
    name holding commas stays whole. Lines that are not rows are skipped.
    """
    slots: dict[int, UserSlot] = {}
    for line in text.splitlines():
        fields = line.split(',')
        if len(fields) < 6 or not fields[0].strip().isdigit():
            continue
        user_id = int(fields[0])
        flags = [f.strip().lower() for f in fields[-4:-1]]
        if not 1 <= user_id <= 63 or \
                any(f not in ('true', 'false') for f in flags):
            continue
        slots.setdefault(user_id, UserSlot(
            user_id, ','.join(fields[1:-4]).strip(), flags[0] == 'true',
            flags[1] == 'true', flags[2] == 'true', fields[-1].strip()))
    return [slots[k] for k in sorted(slots)]


def parse_channel_info(text: str) -> dict[str, str]:
    """``ipmitool channel info``: medium and (volatile) access mode."""
    fields = _fields(text)
    return {'medium': fields.get('Channel Medium Type', ''),
            'access_mode': fields.get('Access Mode', '')}


def parse_channel_access(text: str) -> dict[str, Any]:
    """``ipmitool channel getaccess CH ID``: one user's state there.

    ``enabled`` is True or False when the BMC reports the user's enable
    status, None when it says "unknown" (IPMI lets it).
    """
    fields = _fields(text)
    status = fields.get('Enable Status', '').lower()
    return {'name': fields.get('User Name', ''),
            'privilege': fields.get('Privilege Level', ''),
            'ipmi_messaging': fields.get('IPMI Messaging', '') == 'enabled',
            'enabled': {'enabled': True, 'disabled': False}.get(status)}


def parse_user_test(text: str) -> bool | None:
    """``ipmitool user test``: True accepted, False refused, None unknown."""
    words = text.strip()
    if words.startswith('Success'):
        return True
    if words.startswith('Failure:'):
        return False
    return None


def find_user(slots: Iterable[UserSlot], username: str) -> UserSlot | None:
    """The first slot from FIRST_SLOT on that is named ``username``."""
    return next((s for s in slots
                 if s.id >= FIRST_SLOT and s.name == username), None)


def free_slots(slots: Iterable[UserSlot],
               max_ids: int | None = None) -> list[int]:
    """Slots hwbus may take, in order: unnamed, unused, not 1 or 2."""
    return [s.id for s in slots
            if s.id >= FIRST_SLOT and s.looks_free and
            (max_ids is None or s.id <= max_ids)]


def new_password(length: int) -> str:
    return ''.join(secrets.choice(PASSWORD_ALPHABET) for _ in range(length))


# -- the result -----------------------------------------------------------

@dataclasses.dataclass
class AccountResult:
    """What ensure_account did; ``password`` only in ``create`` mode.

    :param action: "created" (a free slot), "reset" (the existing user's
        password), "kept" (mode keep, found) or "none".
    :param verified: the BMC confirmed the password (its password test
        accepted it and refused a wrong one); ``verified_how`` says how,
        or why not.
    :param enabled: the user's enable status as the BMC reports it (None:
        the BMC does not say).
    """

    username: str
    mode: str
    user_id: int | None = None
    password: str | None = dataclasses.field(default=None, repr=False)
    channels: list[int] = dataclasses.field(default_factory=list)
    privilege: str | None = None
    enabled: bool | None = None
    action: str = 'none'
    verified: bool = False
    verified_how: str = ''
    errors: list[str] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        """A usable account: found or made, and nothing went wrong."""
        return self.user_id is not None and not self.errors

    def public(self) -> dict[str, Any]:
        """Everything but the password, for logs and plugin data."""
        fields = dataclasses.asdict(self)
        del fields['password']
        fields['password_length'] = len(self.password or '') or None
        return fields


class _Stop(Exception):
    """A step that leaves nothing more to do; its message is the error."""


class _Session:
    """Runs ipmitool steps through the SystemRoot, one message per failure.

    Every step has a name (the recording's) that holds no password; the
    passwords generated are remembered so no message can carry them.
    """

    def __init__(self, root: SystemRoot, ipmitool: Sequence[str],
                 timeout: float) -> None:
        self.root = root
        self.ipmitool = list(ipmitool)
        self.timeout = timeout
        self.secrets: list[str] = []

    def run(self, name: str, args: Sequence[str], doing: str,
            secret: Sequence[str] = ()) -> CommandResult:
        """Run one step; _Stop when ipmitool could not give an answer."""
        try:
            return self.root.run(name, [*self.ipmitool, *args],
                                 timeout=self.timeout, redact=secret)
        except CommandTimeout:
            raise _Stop(f'the BMC did not answer within {self.timeout:g} s '
                        f'when asked to {doing}') from None
        except CommandNotFound:
            raise _Stop(f'{self.ipmitool[0]} is not installed: cannot '
                        f'{doing}') from None
        except CommandError as exc:
            raise _Stop(f'ipmitool could not {doing}: '
                        f'{self.scrub(str(exc))}') from None

    def must(self, name: str, args: Sequence[str], doing: str,
             secret: Sequence[str] = ()) -> CommandResult:
        """Run one step that has to succeed; _Stop when it did not."""
        result = self.run(name, args, doing, secret)
        if not result.ok:
            raise _Stop(self.refused(doing, result))
        return result

    def refused(self, doing: str, result: CommandResult) -> str:
        return f'the BMC refused to {doing}: {self.detail(result)}'

    def detail(self, result: CommandResult) -> str:
        """The BMC's own words: the first two lines that are not chatter."""
        lines = [line.strip() for line in
                 (result.stderr + '\n' + result.stdout).splitlines()]
        lines = [line for line in lines
                 if line and not line.startswith(_NOISE)]
        text = '; '.join(lines[:2]) or f'exit status {result.returncode}'
        text = ''.join(c if c.isprintable() else '?' for c in text)
        return self.scrub(text)[:_DETAIL_CHARS]

    def scrub(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, '***')
        return text


# -- the steps ------------------------------------------------------------

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
    session = _Session(root, ipmitool, timeout)
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


def _ensure(session: _Session, result: AccountResult,
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


def _lan_channels(session: _Session,
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


def _take_free_slot(session: _Session, slots: list[UserSlot],
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


def _set_password(session: _Session, result: AccountResult,
                  user_id: int) -> None:
    """Set a random password, 20 characters if the BMC keeps them.

    A BMC whose password test also accepts a wrong password cannot show
    that it kept all 20 bytes (ipmi_sim keeps 16 and says success to
    both), so the password becomes 16 characters, a length every IPMI
    BMC stores whole, and stays unverified.
    """
    refusal, problem = '', None
    for length in PASSWORD_LENGTHS:
        password = new_password(length)
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
        wrong = new_password(length)
        while wrong == password:
            wrong = new_password(length)
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


def _test(session: _Session, user_id: int, length: int, password: str,
          which: str) -> bool | None:
    step = session.run(f'ipmitool-user-test-{user_id}-{length}-{which}',
                       ['user', 'test', str(user_id), str(length),
                        password],
                       f'test the password of slot {user_id}',
                       secret=[password])
    return parse_user_test(step.stdout)


def _lan_access(session: _Session, result: AccountResult, channel: int,
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


def _read_back(session: _Session, result: AccountResult,
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
