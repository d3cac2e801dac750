"""An emulated BMC: OpenIPMI's ``ipmi_sim`` (Debian's ``openipmi``).

A real IPMI 2.0 server the tests talk to with the real ``ipmitool``: RMCP+
(lanplus, cipher suite 3) on the one address and UDP port it is given, a
user table chosen by the test, and the LAN configuration a guest reads
in-band (``ipmitool lan print 1``) served by a small script this fixture
writes. Optionally it also listens for a QEMU ``ipmi-bmc-extern`` chardev
and runs QEMU as the machine's power, as ``lanserv/README.vm`` describes,
so that the same BMC is reached in-band by the guest and over LAN by
Ironic.

Everything lives in ``workdir``: lan.conf, the .emu command file, the LAN
parameters, the persistent state (users changed over IPMI survive a
restart, as on a real BMC) and the log. Nothing is written to /etc or /var.

What ipmi_sim 2.0.33 does differently from most real BMCs (measured, see
tests/functional/test_bmc_account.py):

- Set User Password with the 20-byte flag is accepted but only the first
  16 bytes are stored, so a 20-character password set over IPMI then
  fails to log in; a password of 16 characters or fewer works.
- The password test operation (``ipmitool user test``) answers success
  for any password.
- A user whose privilege limit is operator still gets an administrator
  session when it asks for one (fixed upstream after 2.0.36); a session
  opened with ``-L OPERATOR`` is limited as it should be.
- ``ipmitool`` without ``-C`` first asks for the cipher suites, which
  ipmi_sim does not answer: every call then waits 10 s. Clients give
  ``-C 3`` (Ironic: ``driver_info/ipmi_cipher_suite``).
- Users have no per-channel access: ``channel setaccess`` on any channel
  sets the user's one privilege, and "enabled" is the IPMI messaging bit.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import re
import secrets
import shlex
import signal
import subprocess
import textwrap
import time
from collections.abc import Iterable, Sequence

from hwbus.localstack.common import ServerError, tail, wait_for

IPMI_SIM = 'ipmi_sim'
IPMITOOL = 'ipmitool'
# The RMCP+ cipher suite clients use: HMAC-SHA1, HMAC-SHA1-96, AES-CBC-128,
# what Ironic and ipmitool default to on real BMCs.
CIPHER_SUITE = 3
# Seconds one helper command may take; ipmi_sim answers in milliseconds.
COMMAND_TIMEOUT = 30.0
# The user name ipmi_sim's config can hold: 16 bytes, the last one a NUL.
MAX_NAME = 15
# The password its config can hold: 20 bytes, the last one a NUL.
MAX_CONFIG_PASSWORD = 19
# Seconds after which ipmi_sim has saved a change: it writes its state on
# a one-second tick.
_SAVE_TICK = 1.2
# ipmi_sim's privilege words in lan.conf, by IPMI privilege name.
_PRIVILEGES = {'callback': 'callback', 'user': 'user',
               'operator': 'operator', 'admin': 'admin',
               'administrator': 'admin'}


@dataclasses.dataclass(frozen=True)
class BmcUser:
    """One slot of the initial user table (lan.conf's ``user`` line).

    :param privilege: callback, user, operator or admin.
    """

    id: int
    name: str
    password: str
    privilege: str = 'admin'
    enabled: bool = True


@dataclasses.dataclass(frozen=True)
class UserEntry:
    """A slot as the BMC reports it over LAN (``ipmitool user list``)."""

    id: int
    name: str
    enabled: bool
    privilege: str


def default_users(admin_password: str) -> list[BmcUser]:
    """Slot 1 anonymous and disabled, slot 2 the administrator."""
    return [BmcUser(1, '', '', 'user', enabled=False),
            BmcUser(2, 'admin', admin_password, 'admin')]


def _conf_string(value: str) -> str:
    """value as one lan.conf string token.

    ipmi_sim concatenates adjacent quoted pieces, in double or single
    quotes, so a double quote travels inside single quotes.
    """
    if '\n' in value or '\0' in value:
        raise ValueError(f'lan.conf strings are one line: {value!r}')
    if not value:
        return '""'
    return ''.join(f"'{piece}'" if piece.startswith('"') else f'"{piece}"'
                   for piece in re.findall(r'"+|[^"]+', value))


def _user_line(user: BmcUser) -> str:
    # Names and passwords are whitespace-separated tokens in quotes there.
    for what, value, limit in (('name', user.name, MAX_NAME),
                               ('password', user.password,
                                MAX_CONFIG_PASSWORD)):
        if len(value) > limit or any(c.isspace() or c in '"\'' or
                                     not c.isprintable() for c in value):
            raise ValueError(f'user {user.id}: ipmi_sim takes a {what} of '
                             f'at most {limit} printable characters without '
                             f'spaces or quotes')
    if not 1 <= user.id <= 63:
        raise ValueError(f'user ids are 1 to 63, not {user.id}')
    privilege = _PRIVILEGES[user.privilege.lower()]
    enabled = 'true' if user.enabled else 'false'
    return (f'user {user.id} {enabled} "{user.name}" "{user.password}" '
            f'{privilege} 10 md5')


class EmulatedBmc:
    """Start with start(), stop with stop(); helpers speak IPMI over LAN.

    :param workdir: the BMC's own directory (created).
    :param address: the only address it binds (LAN and the VM chardev).
    :param port: its RMCP+ UDP port.
    :param users: the initial user table; default: :func:`default_users`
        with a random administrator password (``admin_password``).
    :param lan_ip: what ``lan print 1`` reports as the BMC's IP address
        (not an address it binds: the guest reads it in-band).
    :param startcmd: a shell command started on power on (QEMU); its
        process is the machine's power.
    :param vm_port: TCP port on ``address`` where ipmi_sim waits for the
        VM's ``ipmi-bmc-extern`` chardev (see :meth:`qemu_args`).
    """

    def __init__(self, workdir: pathlib.Path, address: str = '127.0.0.1',
                 port: int = 623, users: Iterable[BmcUser] | None = None,
                 lan_ip: str = '192.0.2.10',
                 lan_mac: str = '52:54:00:12:34:56',
                 lan_netmask: str = '255.255.255.0',
                 lan_gateway: str = '192.0.2.1',
                 ip_source: str = 'static',
                 startcmd: str | None = None, vm_port: int | None = None,
                 startnow: bool = False, poweroff_wait: int = 30,
                 kill_wait: int = 10, admin_password: str | None = None,
                 name: str = 'hwbus-bmc') -> None:
        self.workdir = pathlib.Path(workdir)
        self.address = address
        self.port = port
        # 16 characters: what ipmi_sim stores whole however it is set.
        self.admin_password = admin_password or secrets.token_hex(8)
        self.initial_users = list(users if users is not None
                                  else default_users(self.admin_password))
        ids = [u.id for u in self.initial_users]
        if len(ids) != len(set(ids)):
            raise ValueError(f'user ids repeat: {sorted(ids)}')
        admin = next((u for u in self.initial_users if u.id == 2), None)
        if admin is not None:
            self.admin_user, self.admin_password = admin.name, admin.password
        else:
            self.admin_user = 'admin'
        self.lan = {'ip_addr': lan_ip, 'ip_addr_src': ip_source,
                    'mac_addr': lan_mac, 'subnet_mask': lan_netmask,
                    'default_gw_ip_addr': lan_gateway,
                    'default_gw_mac_addr': '00:00:00:00:00:00',
                    # Reported, never bound: no backup gateway.
                    'backup_gw_ip_addr': '0.0.0.0',  # noqa: S104
                    'backup_gw_mac_addr': '00:00:00:00:00:00'}
        self.startcmd = startcmd
        self.vm_port = vm_port
        self.startnow = startnow
        self.poweroff_wait = poweroff_wait
        self.kill_wait = kill_wait
        self.name = name
        self.conf = self.workdir / 'lan.conf'
        self.emu = self.workdir / f'{name}.emu'
        self.lan_program = self.workdir / 'lancontrol'
        self.lan_params = self.workdir / 'lan.params'
        self.statedir = self.workdir / 'state'
        self.log = self.workdir / 'ipmi_sim.log'
        self.proc: subprocess.Popen | None = None

    # -- configuration -------------------------------------------------

    def _write_config(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.statedir.mkdir(exist_ok=True)
        if not self.lan_params.exists():
            # Kept across restarts: a guest's "lan set" changes it, as it
            # changes a real BMC's settings.
            self.lan_params.write_text(''.join(
                f'{key}:{value}\n' for key, value in self.lan.items()))
        self.lan_program.write_text(_LAN_PROGRAM.replace(
            '@PARAMS@', shlex.quote(str(self.lan_params))))
        self.lan_program.chmod(0o755)
        lines = [
            f'name {_conf_string(self.name)}',
            'set_working_mc 0x20',
            '  startlan 1',
            f'    addr {self.address} {self.port}',
            '    priv_limit admin',
            # IPMI 1.5 sessions (-I lan) with MD5 only; RMCP+ ignores these.
            *(f'    allowed_auths_{level} md5'
              for level in ('callback', 'user', 'operator', 'admin')),
            f'    guid {secrets.token_hex(16)}',
            '    lan_config_program '
            + _conf_string(shlex.quote(str(self.lan_program))),
            '  endlan',
        ]
        if self.vm_port is not None:
            lines.append(f'  serial 15 {self.address} {self.vm_port} '
                         'codec VM')
        if self.startcmd is not None:
            lines += [f'  startcmd {_conf_string(self.startcmd)}',
                      f'  startnow {"true" if self.startnow else "false"}',
                      f'  poweroff_wait {int(self.poweroff_wait)}',
                      f'  kill_wait {int(self.kill_wait)}']
        lines += [f'  {_user_line(user)}' for user in self.initial_users]
        self.conf.write_text('\n'.join(lines) + '\n')
        self.emu.write_text(_EMU)

    # -- life cycle ----------------------------------------------------

    def start(self, timeout: float = 30) -> EmulatedBmc:
        """Start ipmi_sim and wait until the administrator can log in."""
        self._write_config()
        try:
            with open(self.log, 'ab') as log:
                self.proc = subprocess.Popen(
                    [IPMI_SIM, '-c', str(self.conf), '-f', str(self.emu),
                     '-s', str(self.statedir), '-n'],
                    stdin=subprocess.DEVNULL, stdout=log,
                    stderr=subprocess.STDOUT, cwd=self.workdir,
                    start_new_session=True)
        except FileNotFoundError:
            raise ServerError('ipmi_sim is not installed: run '
                              'tools/install-deps --test') from None
        wait_for(self._answers, timeout, f'ipmi_sim on {self.address}:'
                 f'{self.port}', self.log, self.proc)
        return self

    def _answers(self) -> bool:
        # One short try each poll: ipmitool's own retries take seconds.
        return self.ipmitool('mc', 'info', retries=('-N', '1', '-R', '1'),
                             check=False).returncode == 0

    def stop(self, timeout: float = 15) -> None:
        """Stop ipmi_sim and the VM it started (same process group).

        Users changed in the last second are lost: ipmi_sim saves them on
        its one-second tick, not on SIGTERM (restart() waits for it).
        """
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        try:
            # The VM outlives a SIGTERMed ipmi_sim otherwise.
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc = None

    def restart(self) -> EmulatedBmc:
        """Stop and start again with the state saved, as a BMC reboot."""
        time.sleep(_SAVE_TICK)
        self.stop()
        return self.start()

    def __enter__(self) -> EmulatedBmc:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # -- clients -------------------------------------------------------

    def ipmitool_argv(self, user: str | None = None,
                      password: str | None = None,
                      privilege: str | None = None) -> list[str]:
        """ipmitool's options to reach this BMC over LAN (default: admin).

        The password is on the command line, as Ironic's is; tests only.
        """
        argv = [IPMITOOL, '-I', 'lanplus', '-C', str(CIPHER_SUITE),
                '-H', self.address, '-p', str(self.port),
                '-U', self.admin_user if user is None else user,
                '-P', self.admin_password if password is None else password]
        if privilege:
            argv += ['-L', privilege]
        return argv

    def ipmitool(self, *args: str, user: str | None = None,
                 password: str | None = None, privilege: str | None = None,
                 retries: Sequence[str] = (), check: bool = True,
                 ) -> subprocess.CompletedProcess:
        """Run ipmitool against this BMC; ServerError on failure if check."""
        argv = [*self.ipmitool_argv(user, password, privilege), *retries,
                *args]
        try:
            result = subprocess.run(argv, capture_output=True, text=True,
                                    timeout=COMMAND_TIMEOUT,
                                    stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            result = subprocess.CompletedProcess(argv, -1, '', 'timed out')
        if check and result.returncode != 0:
            raise ServerError(f'ipmitool {" ".join(args)}: '
                              f'{result.stderr.strip()}\n{tail(self.log)}')
        return result

    def users(self, channel: int = 1) -> list[UserEntry]:
        """Every slot, as the administrator reads it over LAN."""
        out = self.ipmitool('-c', 'user', 'list', str(channel)).stdout
        entries = []
        for line in out.splitlines():
            fields = line.split(',')
            if len(fields) < 6 or not fields[0].isdigit():
                continue
            entries.append(UserEntry(
                int(fields[0]), ','.join(fields[1:-4]),
                fields[-2] == 'true', fields[-1]))
        return entries

    def user(self, user_id: int) -> UserEntry | None:
        return next((u for u in self.users() if u.id == user_id), None)

    def check_password(self, user: int | str, password: str,
                       privilege: str = 'ADMINISTRATOR') -> bool:
        """Whether ``user`` (id or name) logs in over LAN with password."""
        if isinstance(user, int):
            entry = self.user(user)
            if entry is None:
                return False
            user = entry.name
        return self.ipmitool('mc', 'info', user=user, password=password,
                             privilege=privilege, check=False,
                             retries=('-R', '1')).returncode == 0

    def power_state(self) -> str | None:
        """'on', 'off', or None when the BMC does not say."""
        out = self.ipmitool('chassis', 'power', 'status',
                            check=False).stdout
        words = out.strip().split()
        return words[-1] if words and words[-1] in ('on', 'off') else None

    def qemu_args(self, interface: str = 'isa-ipmi-kcs') -> list[str]:
        """QEMU options that connect a guest's BMC to this one (vm_port).

        ``reconnect`` lets QEMU start before ipmi_sim listens, and find it
        again after a restart; it is ``reconnect-ms`` from QEMU 9.2.
        """
        if self.vm_port is None:
            raise ValueError('this BMC was made without vm_port')
        return ['-chardev', f'socket,id=ipmi0,host={self.address},'
                f'port={self.vm_port},reconnect=10',
                '-device', 'ipmi-bmc-extern,id=bmc0,chardev=ipmi0',
                '-device', f'{interface},bmc=bmc0']


# ipmi_sim's lan_config_program: "PROG get PARM..." prints "PARM:VALUE"
# lines; "PROG set PARM VALUE..." commits; "PROG check PARM VALUE" says
# whether a value would be accepted (only ip_addr_src is asked).
_LAN_PROGRAM = textwrap.dedent('''\
    #!/bin/sh
    # Written by hwbus.localstack.bmc for ipmi_sim (lan_config_program).
    params=@PARAMS@
    op=$1
    shift
    case $op in
    get)
        for parm in "$@"; do
            value=$(sed -n "s/^$parm://p" "$params" | head -n 1)
            if [ -z "$value" ]; then
                echo "unknown parameter $parm"
                exit 1
            fi
            echo "$parm:$value"
        done
        ;;
    set)
        while [ $# -ge 2 ]; do
            grep -v "^$1:" "$params" > "$params.new"
            echo "$1:$2" >> "$params.new"
            mv "$params.new" "$params"
            shift 2
        done
        ;;
    check)
        case "$1:$2" in
        ip_addr_src:static|ip_addr_src:dhcp) ;;
        *) echo "not supported: $1 $2"; exit 1 ;;
        esac
        ;;
    *)
        echo "unknown operation $op"
        exit 1
        ;;
    esac
    ''')

# The BMC itself (ipmi_sim_cmd(5)): an IPMI 2.0 MC at 0x20 with a SEL and
# the watchdog sensor a guest's ipmi_watchdog expects as sensor 0.
_EMU = textwrap.dedent('''\
    mc_setbmc 0x20
    mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02
    sel_enable 0x20 1000 0x0a
    sensor_add 0x20 0 0 35 0x6f event-only
    sensor_set_event_support 0x20 0 0 enable scanning per-state \\
        000000000001111 000000000000000 \\
        000000000001111 000000000000000
    mc_enable 0x20
    ''')
