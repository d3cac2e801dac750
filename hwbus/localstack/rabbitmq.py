"""A throwaway RabbitMQ node from Debian's ``rabbitmq-server``.

Its own node name, data, log and plugin files, and free loopback ports for
AMQP, the management API, Erlang distribution and its own epmd, so that it
never touches (or is disturbed by) a system RabbitMQ on the same machine.
Run as root, the node drops privileges to the ``rabbitmq`` user like
Debian's wrapper does, so its directories belong to that user.
"""

from __future__ import annotations

import os
import pathlib
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import textwrap
from typing import Any

import requests

from hwbus.localstack.common import (
    ServerError,
    free_port,
    wait_for,
    workdir_for,
)

RABBITMQ_BIN = pathlib.Path('/usr/lib/rabbitmq/bin')


def ipv6_loopback() -> bool:
    """Whether ::1 can be bound here (IPv6 may be off on a host)."""
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(('::1', 0))
        return True
    except OSError:
        return False


class RabbitMQServer:
    """Start with start(), stop with stop(); the URLs are attributes."""

    def __init__(self, workdir: pathlib.Path, name: str | None = None,
                 tls_ca=None, tls_only: bool = False,
                 cookie: str | None = None,
                 epmd_port: int | None = None,
                 admin_password: str | None = None,
                 host: str = '127.0.0.1',
                 cert_hosts: tuple[str, ...] | None = None,
                 max_message_size: int = 1024 * 1024) -> None:
        self.name = name or f'hwbus-{secrets.token_hex(4)}'
        # The broker refuses larger bodies at publish (docs/security.md).
        self.max_message_size = max_message_size
        # The address clients use (AMQP, management); a network namespace
        # test puts it on a veth. Erlang distribution stays on loopback.
        self.host = host
        # On loopback the node also listens on ::1 (AMQP and AMQPS) with
        # the same ports: QEMU's IPv6 user network takes an IPv6-only
        # guest to the host's ::1 (tests/e2e/test_ipv6.py).
        self.ipv6_host = ('::1' if host == '127.0.0.1' and ipv6_loopback()
                          else None)
        # The names and addresses the AMQPS certificate is for.
        self.cert_hosts = cert_hosts or (
            'localhost', '127.0.0.1', *filter(None, [self.ipv6_host]))
        self._user = None
        if os.geteuid() == 0:
            try:
                self._user = pwd.getpwnam('rabbitmq')
            except KeyError:
                self._user = None
        self.workdir = workdir_for(self._user, workdir, self.name)
        self.node = f'{self.name}@localhost'
        self.amqp_port = free_port()
        self.management_port = free_port()
        self.dist_port = free_port()
        # Cluster members share one epmd (to find each other) and cookie.
        self.epmd_port = epmd_port or free_port()
        self._owns_epmd = epmd_port is None
        self.cookie = cookie or secrets.token_hex(16)
        self.admin_user = 'hwbus-admin'
        self.admin_password = admin_password or secrets.token_urlsafe(16)
        # With a CA (hwbus.localstack.tls.CA), an AMQPS listener too; with
        # tls_only, no plain listener at all and the management API on
        # HTTPS.
        self.tls_ca = tls_ca
        self.tls_only = tls_only and tls_ca is not None
        self.amqps_port = free_port() if tls_ca is not None else None
        self.ca_file = self.workdir / 'ca.pem' if tls_ca else None
        self._set_urls()
        self.log = self.workdir / 'log' / f'{self.node}.log'
        self.proc: subprocess.Popen | None = None
        self._started = False

    def _set_urls(self) -> None:
        if self.tls_only:
            self.amqp_url = (f'amqps://{self.admin_user}:'
                             f'{self.admin_password}@localhost:'
                             f'{self.amqps_port}/%2F')
            self.management_url = f'https://localhost:{self.management_port}'
        else:
            self.amqp_url = (f'amqp://{self.admin_user}:'
                             f'{self.admin_password}@{self.host}:'
                             f'{self.amqp_port}/%2F')
            self.management_url = (f'http://{self.host}:'
                                   f'{self.management_port}')

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            'HOME': str(self.workdir),  # its own .erlang.cookie
            'RABBITMQ_NODENAME': self.node,
            'RABBITMQ_NODE_IP_ADDRESS': self.host,
            'RABBITMQ_NODE_PORT': str(self.amqp_port),
            'RABBITMQ_DIST_PORT': str(self.dist_port),
            'ERL_EPMD_PORT': str(self.epmd_port),
            'ERL_EPMD_ADDRESS': '127.0.0.1',
            'RABBITMQ_MNESIA_BASE': str(self.workdir / 'mnesia'),
            'RABBITMQ_LOG_BASE': str(self.workdir / 'log'),
            'RABBITMQ_CONFIG_FILE': str(self.workdir / 'rabbitmq'),
            'RABBITMQ_ADVANCED_CONFIG_FILE': str(self.workdir /
                                                 'advanced.config'),
            'RABBITMQ_ENABLED_PLUGINS_FILE': str(self.workdir /
                                                 'enabled_plugins'),
            'RABBITMQ_PID_FILE': str(self.workdir / 'rabbitmq.pid'),
            'RABBITMQ_CONF_ENV_FILE': str(self.workdir / 'rabbitmq-env.conf'),
            # Erlang distribution (clustering, rabbitmqctl) on loopback
            # only: it listens on every address otherwise.
            'RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS':
                '-kernel inet_dist_use_interface {127,0,0,1}',
        })
        if self.tls_only or self.ipv6_host:
            # These would add a plain listener back, or replace the
            # configuration file's two with one.
            del env['RABBITMQ_NODE_IP_ADDRESS'], env['RABBITMQ_NODE_PORT']
        return env

    def _prepare(self) -> None:
        if not (RABBITMQ_BIN / 'rabbitmq-server').exists():
            raise ServerError('rabbitmq-server is not installed: run '
                              'tools/install-deps --test')
        for sub in ('mnesia', 'log'):
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)
        (self.workdir / 'rabbitmq-env.conf').write_text('')
        # A refused at-least-once dead letter is retried after this many
        # ms (RabbitMQ's default is 3 minutes): tests wait for seconds.
        (self.workdir / 'advanced.config').write_text(
            '[{rabbit, [{dead_letter_worker_publisher_confirm_timeout, '
            '2000}]}].\n')
        (self.workdir / 'enabled_plugins').write_text(
            '[rabbitmq_management].\n')
        if self.tls_only:
            listeners = 'listeners.tcp = none\n'
        else:
            listeners = textwrap.dedent(f'''\
                listeners.tcp.1 = {self.host}:{self.amqp_port}
                {self._ipv6_listener('tcp', self.amqp_port)}
                management.tcp.ip = {self.host}
                management.tcp.port = {self.management_port}
                ''')
        conf = self.workdir / 'rabbitmq.conf'
        conf.write_text(listeners + textwrap.dedent(f'''\
            default_user = {self.admin_user}
            default_pass = {self.admin_password}
            default_user_tags.administrator = true
            loopback_users = none
            max_message_size = {self.max_message_size}
            log.file.level = info
            log.console = false
            '''))
        if self.tls_ca is not None:
            cacert = self.tls_ca.write(self.ca_file)
            cert, key = self.tls_ca.issue(self.workdir,
                                          hosts=self.cert_hosts)
            with open(self.workdir / 'rabbitmq.conf', 'a') as f:
                f.write(textwrap.dedent(f'''\
                    listeners.ssl.default = {self.host}:{self.amqps_port}
                    {self._ipv6_listener('ssl', self.amqps_port)}
                    ssl_options.cacertfile = {cacert}
                    ssl_options.certfile = {cert}
                    ssl_options.keyfile = {key}
                    ssl_options.verify = verify_none
                    ssl_options.fail_if_no_peer_cert = false
                    '''))
                if self.tls_only:
                    f.write(textwrap.dedent(f'''\
                        management.ssl.ip = {self.host}
                        management.ssl.port = {self.management_port}
                        management.ssl.cacertfile = {cacert}
                        management.ssl.certfile = {cert}
                        management.ssl.keyfile = {key}
                        '''))
        cookie = self.workdir / '.erlang.cookie'
        if not cookie.exists():
            cookie.write_text(self.cookie)
            cookie.chmod(0o400)
        if self._user is not None:
            for path in [self.workdir, *self.workdir.rglob('*')]:
                os.chown(path, self._user.pw_uid, self._user.pw_gid)

    def _ipv6_listener(self, kind: str, port: int | None) -> str:
        """The ::1 listener's line of rabbitmq.conf, else a comment."""
        if self.ipv6_host is None:
            return '# no IPv6 loopback'
        return f'listeners.{kind}.ipv6 = {self.ipv6_host}:{port}'

    def _popen(self, argv: list[str], **kwargs) -> subprocess.Popen:
        if self._user is not None:
            kwargs.update(user=self._user.pw_uid, group=self._user.pw_gid,
                          extra_groups=[])
        return subprocess.Popen(argv, env=self._env(), cwd=self.workdir,
                                **kwargs)

    def start(self, timeout: float = 120) -> RabbitMQServer:
        for attempt in range(3):
            self._prepare()
            self.proc = self._popen(
                [str(RABBITMQ_BIN / 'rabbitmq-server')],
                stdout=open(self.workdir / 'log' / 'stdout.log', 'ab'),
                stderr=subprocess.STDOUT, start_new_session=True)
            try:
                wait_for(self._amqp_open, timeout,
                         f'RabbitMQ {self.node} AMQP', self.log, self.proc)
                break
            except ServerError:
                # free_port() is a guess: another process may take a port
                # before the node binds it. A first start tries new ones;
                # a restart must keep its ports.
                taken = ('already_used', 'eaddrinuse')
                output = (self.workdir / 'log' / 'stdout.log').read_text(
                    errors='replace')
                if self._started or attempt == 2 or \
                        not any(t in output for t in taken):
                    raise
                self.stop()
                self.amqp_port, self.management_port = (free_port(),
                                                        free_port())
                self.dist_port = free_port()
                if self.amqps_port is not None:
                    self.amqps_port = free_port()
                self._set_urls()
        self._started = True
        wait_for(lambda: self.api('GET', '/api/overview').ok, timeout,
                 f'RabbitMQ {self.node} management API', self.log, self.proc)
        return self

    def _amqp_open(self) -> bool:
        port = self.amqps_port if self.tls_only else self.amqp_port
        for host in filter(None, (self.host, self.ipv6_host)):
            with socket.create_connection((host, port), 1):
                pass
        return True

    @property
    def client_urls(self) -> list[str]:
        """URLs for hwbus's configuration: no user, TLS when tls_only."""
        if self.tls_only:
            return [f'amqps://localhost:{self.amqps_port}/%2F']
        return [f'amqp://{self.host}:{self.amqp_port}/%2F']

    @property
    def management_urls(self) -> list[str]:
        return [self.management_url]

    def pika_parameters(self):
        """pika's parameters for the administrator (TLS when tls_only)."""
        import ssl

        import pika

        params = pika.URLParameters(self.amqp_url)
        if self.tls_only:
            context = ssl.create_default_context(cafile=str(self.ca_file))
            params.ssl_options = pika.SSLOptions(context, 'localhost')
        return params

    def ctl(self, *args: str, timeout: float = 120) -> str:
        """rabbitmqctl against this node, as the node's own user."""
        kwargs: dict[str, Any] = {}
        if self._user is not None:
            kwargs.update(user=self._user.pw_uid, group=self._user.pw_gid,
                          extra_groups=[])
        result = subprocess.run(
            [str(RABBITMQ_BIN / 'rabbitmqctl'), '-n', self.node, *args],
            env=self._env(), cwd=self.workdir, capture_output=True,
            text=True, timeout=timeout, **kwargs)
        if result.returncode != 0:
            raise ServerError(f'rabbitmqctl {" ".join(args)}: '
                              f'{result.stdout}{result.stderr}')
        return result.stdout

    def join(self, other: RabbitMQServer) -> None:
        """Make this (running, empty) node a member of other's cluster."""
        self.ctl('stop_app')
        self.ctl('join_cluster', other.node)
        self.ctl('start_app')
        wait_for(lambda: self.api('GET', '/api/overview').ok, 120,
                 f'RabbitMQ {self.node} management API', self.log, self.proc)

    def stop(self, timeout: float = 60) -> None:
        """Stop the node as an operator would (SIGTERM: a clean shutdown)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None
        if self._owns_epmd:
            self._kill_epmd()

    def kill_epmd(self) -> None:
        """Stop the epmd this node started (cluster fixtures, at the end)."""
        self._kill_epmd()

    def _kill_epmd(self) -> None:
        epmd = shutil.which('epmd') or '/usr/lib/erlang/bin/epmd'
        try:
            subprocess.run([epmd, '-kill'], env=self._env(), timeout=10,
                           capture_output=True)
        except (OSError, subprocess.TimeoutExpired):
            pass

    def restart(self, down_for: float = 0.0) -> None:
        """Stop, stay down for a while, start again on the same ports."""
        import time

        self.stop()
        time.sleep(down_for)
        self.start()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        """The management HTTP API as the administrator (for assertions)."""
        verify = str(self.ca_file) if self.ca_file else True
        return requests.request(method, self.management_url + path,
                                auth=(self.admin_user, self.admin_password),
                                verify=verify, timeout=30, **kwargs)

    def users(self) -> set[str]:
        response = self.api('GET', '/api/users')
        response.raise_for_status()
        return {user['name'] for user in response.json()}

    def connections(self) -> list[dict]:
        response = self.api('GET', '/api/connections')
        response.raise_for_status()
        return response.json()


class RabbitMQCluster:
    """Three (or ``size``) nodes on this machine forming one cluster.

    Each node has its own name, directories and loopback ports; they share
    the Erlang cookie, one epmd (so they find each other by name) and the
    administrator. Queues declared after start() are replicated on all.
    """

    def __init__(self, workdir: pathlib.Path, size: int = 3) -> None:
        cookie = secrets.token_hex(16)
        epmd_port = free_port()
        password = secrets.token_urlsafe(16)
        prefix = f'hwbus-{secrets.token_hex(3)}'
        self.nodes = [RabbitMQServer(workdir / f'node{n}', f'{prefix}-{n}',
                                     cookie=cookie, epmd_port=epmd_port,
                                     admin_password=password)
                      for n in range(1, size + 1)]
        self.admin_user = self.nodes[0].admin_user
        self.admin_password = password
        self.ca_file = None
        self.tls_only = False

    def start(self) -> RabbitMQCluster:
        import concurrent.futures

        with concurrent.futures.ThreadPoolExecutor(len(self.nodes)) as pool:
            list(pool.map(RabbitMQServer.start, self.nodes))
        for node in self.nodes[1:]:
            node.join(self.nodes[0])
        running = self.running_nodes()
        if len(running) != len(self.nodes):
            raise ServerError(f'cluster has {running}, expected all of '
                              f'{[n.node for n in self.nodes]}')
        return self

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()
        self.nodes[0].kill_epmd()

    def running_nodes(self) -> list[str]:
        """Cluster members the management API reports as running."""
        response = self.api('GET', '/api/nodes')
        response.raise_for_status()
        return sorted(n['name'] for n in response.json() if n['running'])

    def _up(self) -> RabbitMQServer:
        for node in self.nodes:
            if node.running:
                return node
        raise ServerError('no node of the cluster is running')

    @property
    def client_urls(self) -> list[str]:
        return [url for node in self.nodes for url in node.client_urls]

    @property
    def management_urls(self) -> list[str]:
        return [node.management_url for node in self.nodes]

    def pika_parameters(self):
        return self._up().pika_parameters()

    def api(self, method: str, path: str, **kwargs) -> requests.Response:
        return self._up().api(method, path, **kwargs)

    def users(self) -> set[str]:
        return self._up().users()
