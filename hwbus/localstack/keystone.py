"""A real Keystone for tests: Ironic behind Keystone, as operators run it.

PyPI ``keystone`` in its own virtualenv (tools/install-deps --test puts
it in .cache/keystone-venv with gunicorn), set up the way its install
guide does: SQLite, ``keystone-manage db_sync``, ``fernet_setup``,
``credential_setup`` and ``bootstrap`` (user, project and role
``admin``, region ``RegionOne``, the identity endpoint on its own URL),
then ``keystone.wsgi.api:application`` under gunicorn (one process,
threads) on a free loopback port.

Helpers make what a deployment has: the ``service`` project, a service
user for Ironic's keystonemiddleware, the ``baremetal`` service and its
endpoints, users with roles, application credentials; ``restart()``
changes ``[token] expiration`` (tokens that expire quickly).
"""

from __future__ import annotations

import grp
import os
import pathlib
import pwd
import secrets
import subprocess
import textwrap
import threading
import time

import requests

from hwbus.localstack.common import (
    CACHE,
    ServerError,
    free_port,
    stop,
    wait_for,
)

VENV = pathlib.Path(os.environ.get('HWBUS_KEYSTONE_VENV',
                                   CACHE / 'keystone-venv'))
REGION = 'RegionOne'
DOMAIN = 'Default'
SERVICE_PROJECT = 'service'


class KeystoneServer:
    """Start with start(), stop with stop(); ``url`` is the identity
    endpoint (unversioned, as in the catalog: clients discover v3)."""

    def __init__(self, workdir: pathlib.Path, port: int | None = None,
                 host: str = '127.0.0.1',
                 token_expiration: int = 3600) -> None:
        self.workdir = workdir
        self.host = host
        self.port = port or free_port()
        self.url = f'http://{host}:{self.port}'
        self.token_expiration = token_expiration
        self.admin_user = 'admin'
        self.admin_password = secrets.token_urlsafe(16)
        self.conf = workdir / 'keystone.conf'
        self.log = workdir / 'keystone.log'
        self.gunicorn_conf = workdir / 'gunicorn.conf.py'
        self.proc: subprocess.Popen | None = None
        self._admin: tuple[str, float] | None = None
        self._lock = threading.Lock()

    # -- the server ---------------------------------------------------------
    def _binary(self, name: str) -> str:
        path = VENV / 'bin' / name
        if not path.exists():
            raise ServerError(
                f'{path} is missing: run tools/install-deps --test (or set '
                f'HWBUS_KEYSTONE_VENV to a virtualenv with keystone and '
                f'gunicorn installed)')
        return str(path)

    def _write_config(self) -> None:
        work = self.workdir
        self.conf.write_text(textwrap.dedent(f'''\
            [DEFAULT]
            log_file = {self.log}
            use_stderr = false

            [database]
            connection = sqlite:///{work}/keystone.sqlite

            [token]
            provider = fernet
            expiration = {self.token_expiration}

            [fernet_tokens]
            key_repository = {work}/fernet-keys

            [fernet_receipts]
            key_repository = {work}/fernet-keys

            [credential]
            key_repository = {work}/credential-keys

            [cache]
            enabled = false

            [identity]
            # bcrypt's least cost: users and tokens are made by the dozen.
            password_hash_rounds = 4
            '''))

    def _write_gunicorn_config(self) -> None:
        # Keystone parses the command line (oslo.config) when its
        # application loads in the worker: gunicorn has parsed its own by
        # then, so its arguments go. One process (SQLite, fernet keys read
        # once), threads for concurrent clients (Ironic's middleware,
        # hwbus, the tests); no control socket (gunicorn's default is one
        # in the home directory, shared by every instance). Its log goes
        # to stderr.log, with what Keystone prints before its own log.
        self.gunicorn_conf.write_text(textwrap.dedent(f'''\
            import sys

            sys.argv[1:] = []
            wsgi_app = 'keystone.wsgi.api:application'
            bind = ['{self.host}:{self.port}']
            workers = 1
            worker_class = 'gthread'
            threads = 8
            timeout = 120
            graceful_timeout = 5
            control_socket_disable = True
            errorlog = '-'
            '''))

    def _manage(self, *argv: str) -> None:
        result = subprocess.run(
            [self._binary('keystone-manage'), '--config-file',
             str(self.conf), *argv],
            capture_output=True, text=True, timeout=300, cwd=self.workdir)
        if result.returncode != 0:
            raise ServerError(f'keystone-manage {argv[0]} failed '
                              f'({result.returncode}):\n{result.stdout}\n'
                              f'{result.stderr}')

    def _initialise(self) -> None:
        """The install guide's steps, once per directory."""
        self._write_config()
        owner = ['--keystone-user', pwd.getpwuid(os.getuid()).pw_name,
                 '--keystone-group', grp.getgrgid(os.getgid()).gr_name]
        self._manage('db_sync')
        self._manage('fernet_setup', *owner)
        self._manage('credential_setup', *owner)
        self._manage('bootstrap',
                     '--bootstrap-username', self.admin_user,
                     '--bootstrap-password', self.admin_password,
                     '--bootstrap-project-name', 'admin',
                     '--bootstrap-role-name', 'admin',
                     '--bootstrap-service-name', 'keystone',
                     '--bootstrap-region-id', REGION,
                     '--bootstrap-admin-url', self.url,
                     '--bootstrap-internal-url', self.url,
                     '--bootstrap-public-url', self.url)

    def start(self, timeout: float = 120) -> KeystoneServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not (self.workdir / 'keystone.sqlite').exists():
            self._initialise()
        else:
            self._write_config()
        self._write_gunicorn_config()
        self.proc = subprocess.Popen(
            [self._binary('gunicorn'), '--config', str(self.gunicorn_conf)],
            stdout=subprocess.DEVNULL, stderr=open(
                self.workdir / 'stderr.log', 'ab'),
            env={**os.environ, 'OS_KEYSTONE_CONFIG_FILES': str(self.conf)},
            cwd=self.workdir, start_new_session=True)
        wait_for(lambda: requests.get(f'{self.url}/v3', timeout=5).ok,
                 timeout, 'Keystone', self.workdir / 'stderr.log', self.proc)
        return self

    def stop(self) -> None:
        stop(self.proc)
        self.proc = None

    def restart(self, token_expiration: int | None = None) -> KeystoneServer:
        """Stop and start again, with another ``[token] expiration``.

        Tokens issued before stay valid until their own expiry (the
        fernet keys do not change).
        """
        if token_expiration is not None:
            self.token_expiration = token_expiration
        self.stop()
        with self._lock:
            self._admin = None
        return self.start()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # -- tokens -------------------------------------------------------------
    def token(self, username: str, password: str,
              project: str | None = SERVICE_PROJECT,
              system: bool = False) -> tuple[str, dict]:
        """(token, body) for a user of the default domain, scoped to
        ``project`` or to the system."""
        if system:
            scope: dict = {'system': {'all': True}}
        elif project:
            scope = {'project': {'name': project,
                                 'domain': {'name': DOMAIN}}}
        else:
            scope = {}
        auth: dict = {'identity': {'methods': ['password'], 'password': {
            'user': {'name': username, 'domain': {'name': DOMAIN},
                     'password': password}}}}
        if scope:
            auth['scope'] = scope
        response = requests.post(f'{self.url}/v3/auth/tokens',
                                 json={'auth': auth}, timeout=30)
        response.raise_for_status()
        return response.headers['X-Subject-Token'], response.json()

    def admin_token(self) -> str:
        """A system-scoped admin token, renewed before it expires."""
        with self._lock:
            if self._admin is None or \
                    self._admin[1] - time.monotonic() < 10:
                token, _ = self.token(self.admin_user, self.admin_password,
                                      project=None, system=True)
                # expires_at is Keystone's clock; our own clock counts
                # the same seconds from now.
                life = min(self.token_expiration, 3600)
                self._admin = (token, time.monotonic() + life)
            return self._admin[0]

    def token_valid(self, token: str) -> bool:
        """Whether Keystone still accepts ``token``."""
        response = requests.get(
            f'{self.url}/v3/auth/tokens', timeout=30,
            headers={'X-Auth-Token': self.admin_token(),
                     'X-Subject-Token': token})
        return response.status_code == 200

    # -- the admin API ------------------------------------------------------
    def api(self, method: str, path: str, body: dict | None = None,
            token: str | None = None) -> dict:
        response = requests.request(
            method, f'{self.url}/v3{path}', json=body, timeout=30,
            headers={'X-Auth-Token': token or self.admin_token()})
        if not response.ok:
            raise ServerError(f'Keystone {method} {path}: '
                              f'{response.status_code} {response.text}')
        return response.json() if response.content else {}

    def _find(self, collection: str, name: str, **filters: str) -> dict | None:
        query = '&'.join(f'{k}={v}' for k, v in
                         {'name': name, **filters}.items())
        found = self.api('GET', f'/{collection}?{query}')[collection]
        return found[0] if found else None

    def _domain_id(self) -> str:
        found = self._find('domains', DOMAIN)
        assert found is not None, 'keystone-manage bootstrap made it'
        return found['id']

    def role_id(self, name: str) -> str:
        role = self._find('roles', name)
        if role is None:
            role = self.api('POST', '/roles', {'role': {'name': name}})[
                'role']
        return role['id']

    def project(self, name: str) -> str:
        """The id of project ``name`` (created when missing)."""
        found = self._find('projects', name, domain_id=self._domain_id())
        if found:
            return found['id']
        return self.api('POST', '/projects', {'project': {
            'name': name, 'domain_id': self._domain_id()}})['project']['id']

    def user(self, name: str, password: str,
             project: str | None = SERVICE_PROJECT,
             roles: tuple[str, ...] = (),
             system_roles: tuple[str, ...] = ()) -> str:
        """A user of the default domain (its password set again when it
        exists) with ``roles`` on ``project`` and ``system_roles`` on the
        system; returns its id."""
        found = self._find('users', name, domain_id=self._domain_id())
        body = {'name': name, 'password': password, 'enabled': True,
                'domain_id': self._domain_id()}
        if project:
            body['default_project_id'] = self.project(project)
        if found:
            user = self.api('PATCH', f'/users/{found["id"]}',
                            {'user': body})['user']
        else:
            user = self.api('POST', '/users', {'user': body})['user']
        if project:
            project_id = self.project(project)
            for role in roles:
                self.api('PUT', f'/projects/{project_id}/users/'
                         f'{user["id"]}/roles/{self.role_id(role)}')
        for role in system_roles:
            self.api('PUT', f'/system/users/{user["id"]}/roles/'
                     f'{self.role_id(role)}')
        return user['id']

    def service_user(self, name: str = 'ironic',
                     password: str | None = None) -> tuple[str, str]:
        """(name, password) of a service's own user, as keystonemiddleware
        uses it: role ``service`` in project ``service`` (Keystone lets
        that role validate other users' tokens)."""
        password = password or secrets.token_urlsafe(16)
        self.user(name, password, SERVICE_PROJECT, roles=('service',))
        return name, password

    def register_service(self, url: str, service_type: str = 'baremetal',
                         name: str = 'ironic') -> str:
        """The service and its public, internal and admin endpoints at
        ``url`` in REGION (replacing earlier ones); returns its id."""
        found = None
        for service in self.api('GET', f'/services?type={service_type}')[
                'services']:
            if service['name'] == name:
                found = service
        if found is None:
            found = self.api('POST', '/services', {'service': {
                'type': service_type, 'name': name, 'enabled': True}})[
                'service']
        for endpoint in self.api(
                'GET', f'/endpoints?service_id={found["id"]}')['endpoints']:
            self.api('DELETE', f'/endpoints/{endpoint["id"]}')
        for interface in ('public', 'internal', 'admin'):
            self.api('POST', '/endpoints', {'endpoint': {
                'service_id': found['id'], 'interface': interface,
                'url': url, 'region_id': REGION, 'enabled': True}})
        return found['id']

    def application_credential(self, username: str, password: str,
                               project: str = SERVICE_PROJECT,
                               name: str | None = None) -> tuple[str, str]:
        """(id, secret) of a new application credential of the user, with
        its roles on ``project`` (created with the user's own token, as
        Keystone requires)."""
        token, body = self.token(username, password, project)
        user_id = body['token']['user']['id']
        created = self.api(
            'POST', f'/users/{user_id}/application_credentials',
            {'application_credential': {
                'name': name or f'hwbus-{secrets.token_hex(4)}'}},
            token=token)['application_credential']
        return created['id'], created['secret']
