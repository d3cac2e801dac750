"""Where collectors read a machine from: the live system or a recording.

Every collector gets a :class:`SystemRoot` and reads /proc, /sys and /dev
through it and runs commands through it. That single doorway is what lets a
test replay a recorded machine exactly (``SystemRoot('/path/to/recording')``)
and what lets ``hwbus-collect --record DIR`` capture precisely the files,
links and command outputs a collection touched, nothing more.

A recording is a directory tree::

    DIR/proc/...  DIR/sys/...  DIR/dev/...   files and symlinks as read
    DIR/cmd/NAME.out      stdout of the command recorded under NAME
    DIR/cmd/NAME.rc       its exit status, when not 0
    DIR/cmd/NAME.err      its stderr, when any
    DIR/cmd/NAME.timeout  present when it did not finish in time
    DIR/cmd/NAME.json     the result of a Python probe (see probe())

A command whose ``.out`` is absent did not exist on the recorded machine.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Sequence
from typing import Any

from hwbus.errors import PermanentError

LOG = logging.getLogger(__name__)

# Seconds a command may run before it is killed; dmidecode and lsblk take
# milliseconds, ipmitool on a wedged BMC can take minutes.
DEFAULT_COMMAND_TIMEOUT = 10.0
# Bytes of a single /proc or /sys file read at most; sysfs attributes are
# one page, /proc/cpuinfo on 512 threads is about 1 MiB.
MAX_FILE_BYTES = 8 * 1024 * 1024
# A file the recorder leaves in every directory it saw, so that empty
# directories (memory blocks, holders) survive git; never listed on replay.
KEEP_MARKER = '.hwbus-keep'
# Bytes asked for per read() call.
_CHUNK_BYTES = 64 * 1024
# Bytes of command output kept at most, so a runaway tool cannot eat RAM.
MAX_OUTPUT_BYTES = 16 * 1024 * 1024


class CommandError(PermanentError):
    """A command could not give an answer; the message says why."""

    reason = 'command-failed'


class CommandNotFound(CommandError):
    """The tool is not installed on this machine (or was not recorded)."""

    reason = 'command-not-found'


class CommandTimeout(CommandError):
    """The tool did not finish in time and was killed."""

    reason = 'command-timeout'


@dataclasses.dataclass(frozen=True)
class CommandResult:
    """What a finished command left behind."""

    returncode: int
    stdout: str
    stderr: str = ''

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def _run_live(argv: Sequence[str], timeout: float) -> CommandResult:
    """Run argv with a C locale; kill its whole process group on timeout."""
    env = dict(os.environ, LC_ALL='C', LANG='C')
    try:
        proc = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, env=env, start_new_session=True)
    except FileNotFoundError as exc:
        raise CommandNotFound(f'{argv[0]} is not installed') from exc
    except OSError as exc:
        raise CommandError(f'{argv[0]} could not start: {exc}') from exc
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.communicate()
        raise CommandTimeout(
            f'{argv[0]} did not finish within {timeout:g} s') from None
    return CommandResult(
        proc.returncode,
        out[:MAX_OUTPUT_BYTES].decode('utf-8', 'replace'),
        err[:MAX_OUTPUT_BYTES].decode('utf-8', 'replace'))


class SystemRoot:
    """A machine seen through its /proc, /sys, /dev and its commands.

    :param root: ``/`` for the live system, or a recording directory.
    :param record_to: when set (live system only), mirror everything read
        and every command run into this directory.
    :param command_timeout: default seconds a command may take.
    """

    def __init__(self, root: str = '/', record_to: str | None = None,
                 command_timeout: float = DEFAULT_COMMAND_TIMEOUT) -> None:
        self.root = os.path.abspath(root)
        self.live = self.root == '/'
        if record_to and not self.live:
            raise ValueError('only the live system can be recorded')
        self.command_timeout = command_timeout
        self._recorder = _Recorder(record_to) if record_to else None
        self._memo: dict[str, Any] = {}
        self._memo_locks: dict[str, threading.Lock] = {}
        self._memo_guard = threading.Lock()

    def __repr__(self) -> str:
        return f'SystemRoot({self.root!r})'

    # -- files --------------------------------------------------------

    def host_path(self, path: str) -> str:
        """The host path of a machine path such as ``/sys/block``."""
        if not path.startswith('/'):
            raise ValueError(f'machine paths are absolute: {path!r}')
        if self.live:
            return os.path.normpath(path)
        return os.path.normpath(os.path.join(self.root, path.lstrip('/')))

    def read(self, path: str) -> str | None:
        """Text of a file, stripped of surrounding white space.

        None when it is missing or unreadable: sysfs answers EINVAL for the
        speed of a link that is down, EIO for broken firmware tables, and a
        collector treats all of those as "not known".
        """
        raw = self.read_bytes(path)
        if raw is None:
            return None
        return raw.decode('utf-8', 'replace').strip()

    def read_bytes(self, path: str) -> bytes | None:
        host = self.host_path(path)
        try:
            with open(host, 'rb') as f:
                data = _read_capped(f)
        except OSError:
            return None
        if self._recorder:
            self._recorder.file(host, data)
        return data

    def listdir(self, path: str) -> list[str]:
        """Sorted names in a directory; empty when it does not exist."""
        host = self.host_path(path)
        try:
            names = sorted(os.listdir(host))
        except OSError:
            return []
        if not self.live and KEEP_MARKER in names:
            names.remove(KEEP_MARKER)
        if self._recorder:
            self._recorder.directory(host, names)
        return names

    def exists(self, path: str) -> bool:
        host = self.host_path(path)
        found = os.path.lexists(host)
        if found and self._recorder:
            self._recorder.presence(host)
        return found

    def is_dir(self, path: str) -> bool:
        host = self.host_path(path)
        found = os.path.isdir(host)
        if found and self._recorder:
            self._recorder.presence(host)
        return found

    def readlink(self, path: str) -> str | None:
        """Target of a symlink as stored, or None if path is no link."""
        host = self.host_path(path)
        try:
            target = os.readlink(host)
        except OSError:
            return None
        if self._recorder:
            self._recorder.presence(host)
        return target

    def realpath(self, path: str) -> str:
        """The machine path that path resolves to, symlinks followed."""
        host = os.path.realpath(self.host_path(path))
        if self._recorder:
            self._recorder.presence(host)
        if self.live:
            return host
        rel = os.path.relpath(host, self.root)
        if rel == '.' or rel.startswith('..'):
            return '/' if rel == '.' else host
        return '/' + rel

    def link_name(self, path: str) -> str | None:
        """Base name of where a symlink points (driver, PCI address)."""
        target = self.readlink(path)
        return os.path.basename(target) if target else None

    # -- commands -----------------------------------------------------

    def run(self, name: str, argv: Sequence[str],
            timeout: float | None = None,
            redact: Sequence[str] = ()) -> CommandResult:
        """Run a tool, or replay its recorded output under ``name``.

        Only ``name`` and the output are recorded, never argv. ``redact``
        lists secrets on argv (a BMC password) that must not come back in
        the output either, should the tool echo them: each is replaced by
        ``***`` in what is returned and recorded.

        :raises CommandNotFound: the tool is not there.
        :raises CommandTimeout: it ran out of time and was killed.
        """
        if not self.live:
            return self._replay(name)
        timeout = self.command_timeout if timeout is None else timeout
        try:
            result = _run_live(argv, timeout)
        except CommandTimeout:
            if self._recorder:
                self._recorder.command_timeout(name)
            raise
        for secret in filter(None, redact):
            result = dataclasses.replace(
                result, stdout=result.stdout.replace(secret, '***'),
                stderr=result.stderr.replace(secret, '***'))
        if self._recorder:
            self._recorder.command(name, result)
        return result

    def _replay(self, name: str) -> CommandResult:
        base = os.path.join(self.root, 'cmd', name)
        if os.path.exists(base + '.timeout'):
            raise CommandTimeout(f'{name} did not finish (recorded)')
        try:
            with open(base + '.out', encoding='utf-8',
                      errors='replace') as f:
                out = f.read()
        except FileNotFoundError:
            raise CommandNotFound(f'{name} is not installed') from None
        rc = _read_int(base + '.rc', 0)
        err = ''
        if os.path.exists(base + '.err'):
            with open(base + '.err', encoding='utf-8',
                      errors='replace') as f:
                err = f.read()
        return CommandResult(rc, out, err)

    def probe(self, name: str, func: Callable[[], Any]) -> Any:
        """A fact only a system call gives (psutil, ioctl), replayable.

        The live answer must be JSON-serialisable; it is stored as
        ``cmd/NAME.json`` when recording and read back on replay. A missing
        recording answers None, as a missing tool would.
        """
        if not self.live:
            try:
                with open(os.path.join(self.root, 'cmd', name + '.json'),
                          encoding='utf-8') as f:
                    return json.load(f)
            except FileNotFoundError:
                return None
        value = func()
        if self._recorder:
            self._recorder.probe(name, value)
        return value

    def memo(self, key: str, func: Callable[[], Any]) -> Any:
        """Compute a shared value once per root, even across threads.

        Several collectors parse the same dmidecode output; the first to
        ask runs it, the others wait for that answer rather than running
        the tool again. Exceptions are cached too, so every collector that
        depends on a broken tool reports the same error.
        """
        with self._memo_guard:
            lock = self._memo_locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._memo:
                try:
                    self._memo[key] = (True, func())
                except Exception as exc:
                    self._memo[key] = (False, exc)
            ok, value = self._memo[key]
        if not ok:
            raise value
        return value


def _read_capped(f: Any) -> bytes:
    """Read to EOF in small chunks, at most MAX_FILE_BYTES.

    One huge read() is not an option: /proc/sys answers a read larger than
    the kernel will allocate with ENOMEM instead of a short read.
    """
    chunks, total = [], 0
    while total < MAX_FILE_BYTES:
        chunk = f.read(_CHUNK_BYTES)
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b''.join(chunks)[:MAX_FILE_BYTES]


def _read_int(path: str, default: int) -> int:
    try:
        with open(path, encoding='ascii') as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return default


class _Recorder:
    """Mirrors what a live collection touched into a recording directory.

    Symlinks along every path are recreated as symlinks (absolute targets
    made relative), so a replay resolves /sys/class/net/eth0/device exactly
    as the live system did.
    """

    def __init__(self, directory: str) -> None:
        self.dir = os.path.abspath(directory)
        self._lock = threading.Lock()
        self._mkdir(os.path.join(self.dir, 'cmd'))

    def _dest(self, host_path: str) -> str:
        return os.path.join(self.dir, host_path.lstrip('/'))

    def _mirror_links(self, host_path: str, depth: int = 0) -> str:
        """Recreate the symlinks along host_path; return its real path."""
        if depth > 40:
            return host_path
        current = '/'
        for part in host_path.strip('/').split('/'):
            if not part:
                continue
            candidate = os.path.join(current, part)
            if os.path.islink(candidate):
                target = os.readlink(candidate)
                if os.path.isabs(target):
                    resolved = target
                    target = os.path.relpath(target, current)
                else:
                    resolved = os.path.normpath(
                        os.path.join(current, target))
                dest = self._dest(candidate)
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                if not os.path.lexists(dest):
                    os.symlink(target, dest)
                current = self._mirror_links(resolved, depth + 1)
            else:
                current = candidate
        return current

    def file(self, host_path: str, data: bytes) -> None:
        with self._lock:
            real = self._mirror_links(host_path)
            dest = self._dest(real)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with open(dest, 'wb') as f:
                f.write(data)

    def presence(self, host_path: str) -> None:
        with self._lock:
            self._touch(host_path)

    def _touch(self, host_path: str) -> None:
        """Recreate a path as what it is: link, directory or empty file."""
        real = self._mirror_links(host_path)
        dest = self._dest(real)
        if os.path.lexists(dest):
            return
        if os.path.isdir(real):
            self._mkdir(dest)
        elif os.path.lexists(real):
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            open(dest, 'ab').close()

    @staticmethod
    def _mkdir(dest: str) -> None:
        os.makedirs(dest, exist_ok=True)
        open(os.path.join(dest, KEEP_MARKER), 'ab').close()

    def directory(self, host_path: str, names: list[str]) -> None:
        with self._lock:
            real = self._mirror_links(host_path)
            self._mkdir(self._dest(real))
            for name in names:
                entry = os.path.join(real, name)
                if os.path.islink(entry):
                    # The link itself, not what it points at: a listing
                    # does not read the targets.
                    self._mirror_links(entry)
                else:
                    self._touch(entry)

    def command(self, name: str, result: CommandResult) -> None:
        base = os.path.join(self.dir, 'cmd', name)
        with open(base + '.out', 'w', encoding='utf-8') as f:
            f.write(result.stdout)
        if result.returncode:
            with open(base + '.rc', 'w', encoding='ascii') as f:
                f.write(f'{result.returncode}\n')
        if result.stderr:
            with open(base + '.err', 'w', encoding='utf-8') as f:
                f.write(result.stderr)

    def command_timeout(self, name: str) -> None:
        open(os.path.join(self.dir, 'cmd', name + '.timeout'), 'w').close()

    def probe(self, name: str, value: Any) -> None:
        with open(os.path.join(self.dir, 'cmd', name + '.json'), 'w',
                  encoding='utf-8') as f:
            json.dump(value, f, indent=1, sort_keys=True)
            f.write('\n')
