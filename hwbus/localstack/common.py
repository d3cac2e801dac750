"""Helpers shared by the server runners."""

from __future__ import annotations

import os
import pathlib
import socket
import subprocess
import time
from collections.abc import Callable

from hwbus.errors import TransientError

# The source tree this package runs from: the checkout, when hwbus is
# installed from it in editable mode (tools/install-deps).
TOP = pathlib.Path(__file__).resolve().parents[2]


def _cache() -> pathlib.Path:
    """Where the Ironic and Keystone virtualenvs are (tools/install-deps
    --test puts them in the checkout's .cache); HWBUS_CACHE overrides."""
    if 'HWBUS_CACHE' in os.environ:
        return pathlib.Path(os.environ['HWBUS_CACHE'])
    if (TOP / 'setup.cfg').exists():
        return TOP / '.cache'
    # Installed outside a checkout: the user's cache directory.
    home = os.environ.get('XDG_CACHE_HOME') or pathlib.Path.home() / '.cache'
    return pathlib.Path(home) / 'hwbus'


CACHE = _cache()


class ServerError(TransientError):
    """A server did not come up; the message holds its log tail.

    In hwbus's transient family, as every error hwbus raises on purpose
    is in one: a dependency that is not there (yet)."""

    reason = 'server-not-ready'


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def wait_for(check: Callable[[], bool], timeout: float, what: str,
             log: pathlib.Path | None = None,
             proc: subprocess.Popen | None = None) -> None:
    """Poll check() until true; fail with the log tail on timeout/exit."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ServerError(f'{what} exited with {proc.returncode}:\n'
                              f'{tail(log)}')
        try:
            if check():
                return
        except Exception:  # noqa: S110 - not up yet, keep polling
            pass
        time.sleep(0.2)
    raise ServerError(f'{what} not ready after {timeout:.0f} s:\n{tail(log)}')


def tail(log: pathlib.Path | None, lines: int = 40) -> str:
    if log is None or not log.exists():
        return '(no log)'
    return '\n'.join(log.read_text(errors='replace').splitlines()[-lines:])


def stop(proc: subprocess.Popen | None, timeout: float = 15) -> None:
    """SIGTERM, then SIGKILL if it does not go in time."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def workdir_for(user, workdir: pathlib.Path, prefix: str) -> pathlib.Path:
    """A directory a server dropping privileges to ``user`` can use.

    pytest's temporary directories are private to root, so a server
    running as ``rabbitmq`` or ``postgres`` gets a directory of its own in
    /tmp, linked from workdir so that its logs are easy to find.
    """
    if user is None:
        workdir.mkdir(parents=True, exist_ok=True)
        return workdir
    import tempfile

    workdir.mkdir(parents=True, exist_ok=True)
    own = pathlib.Path(tempfile.mkdtemp(prefix=f'{prefix}-'))
    os.chown(own, user.pw_uid, user.pw_gid)
    link = workdir / 'server'
    if not link.is_symlink():
        link.symlink_to(own)
    return own
