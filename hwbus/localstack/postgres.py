"""A throwaway PostgreSQL cluster from Debian's ``postgresql``.

``initdb`` into the test's own directory, listening only on a free loopback
port and a socket in that directory. Run as root, it runs as the
``postgres`` user (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import glob
import os
import pathlib
import pwd
import secrets
import subprocess

from hwbus.localstack.common import (
    ServerError,
    free_port,
    wait_for,
    workdir_for,
)


def _bindir() -> pathlib.Path:
    found = sorted(glob.glob('/usr/lib/postgresql/*/bin/initdb'),
                   key=lambda p: int(p.split('/')[4]))
    if not found:
        raise ServerError('PostgreSQL is not installed: run '
                          'tools/install-deps --test')
    return pathlib.Path(found[-1]).parent


class PostgresServer:
    """Start with start(), stop with stop(); ``url`` is for SQLAlchemy."""

    def __init__(self, workdir: pathlib.Path) -> None:
        self._user = pwd.getpwnam('postgres') if os.geteuid() == 0 else None
        self.workdir = workdir_for(self._user, workdir, 'hwbus-postgres')
        self.port = free_port()
        self.password = secrets.token_urlsafe(12)
        self.user = 'hwbus'
        self.database = 'hwbus'
        self.url = (f'postgresql+psycopg://{self.user}:{self.password}'
                    f'@127.0.0.1:{self.port}/{self.database}')
        self.log = self.workdir / 'postgres.log'
        self.bindir = _bindir()

    def _run(self, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
        if self._user is not None:
            kwargs.update(user=self._user.pw_uid, group=self._user.pw_gid,
                          extra_groups=[])
        result = subprocess.run(argv, capture_output=True, text=True,
                                timeout=120, cwd=self.workdir, **kwargs)
        if result.returncode != 0:
            raise ServerError(f'{argv[0]} failed ({result.returncode}):\n'
                              f'{result.stdout}\n{result.stderr}')
        return result

    def start(self, timeout: float = 60) -> PostgresServer:
        data = self.workdir / 'data'
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self._user is not None:
            os.chown(self.workdir, self._user.pw_uid, self._user.pw_gid)
        if not data.exists():
            pwfile = self.workdir / 'pw'
            pwfile.write_text(self.password)
            if self._user is not None:
                os.chown(pwfile, self._user.pw_uid, self._user.pw_gid)
            self._run([str(self.bindir / 'initdb'), '-D', str(data),
                       '-U', self.user, f'--pwfile={pwfile}',
                       '--auth=scram-sha-256', '-E', 'UTF8', '--no-sync'])
            pwfile.unlink()
        self._run([str(self.bindir / 'pg_ctl'), '-D', str(data), '-l',
                   str(self.log), '-w', '-t', str(int(timeout)), '-o',
                   f'-h 127.0.0.1 -p {self.port} -k {self.workdir} '
                   f'-c fsync=off', 'start'])
        wait_for(self._ready, timeout, 'PostgreSQL', self.log)
        return self

    def _ready(self) -> bool:
        result = subprocess.run(
            [str(self.bindir / 'psql'), '-h', '127.0.0.1', '-p',
             str(self.port), '-U', self.user, '-d', 'postgres', '-tAc',
             'SELECT 1 FROM pg_database WHERE datname = '  # noqa: S608
             f"'{self.database}'"],
            env={**os.environ, 'PGPASSWORD': self.password},
            capture_output=True, text=True, timeout=10)
        if result.returncode != 0:
            return False
        if result.stdout.strip() != '1':
            subprocess.run(
                [str(self.bindir / 'createdb'), '-h', '127.0.0.1', '-p',
                 str(self.port), '-U', self.user, self.database],
                env={**os.environ, 'PGPASSWORD': self.password},
                check=True, capture_output=True, timeout=30)
        return True

    def stop(self) -> None:
        data = self.workdir / 'data'
        if data.exists():
            self._run([str(self.bindir / 'pg_ctl'), '-D', str(data), '-m',
                       'fast', '-w', 'stop'])
