"""hwbus-consumer as a process, configured for the test servers."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import textwrap

import requests

from hwbus.localstack.common import free_port, stop, wait_for

BIN = pathlib.Path(sys.executable).parent


def write_config(path: pathlib.Path, rabbit, database_url: str,
                 ironic_url: str | None, consumer_password: str,
                 appliers: str = 'inspection',
                 extra: str = '',
                 ironic: dict[str, str] | None = None) -> pathlib.Path:
    """One hwbus.conf for every hwbus command of a test.

    ``rabbit`` is a RabbitMQServer or a RabbitMQCluster: its client and
    management URLs, and its CA when it speaks TLS only. ``ironic``, when
    given, is the whole [ironic] section (option: value) instead of
    noauth at ``ironic_url``.
    """
    urls = ','.join(rabbit.client_urls)
    ca = ''
    if getattr(rabbit, 'tls_only', False):
        ca = (f'ca_file = {rabbit.ca_file}\n'
              f'        management_ca_file = {rabbit.ca_file}')
    if ironic is None:
        ironic = {'auth_type': 'none',
                  'endpoint_override': ironic_url or 'http://127.0.0.1:9'}
    ironic_options = '\n        '.join(f'{k} = {v}' for k, v in ironic.items())
    # It holds the broker's admin and consumer passwords: owner only.
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(textwrap.dedent(f'''\
        [DEFAULT]
        debug = true

        [broker]
        management_urls = {','.join(rabbit.management_urls)}
        admin_user = {rabbit.admin_user}
        admin_password = {rabbit.admin_password}
        public_urls = {urls}
        consumer_password = {consumer_password}
        {ca}

        [database]
        connection = {database_url}

        [consumer]
        broker_urls = {urls}
        appliers = {appliers}
        workers = 4
        max_backoff = 1
        apply_lease = 15
        shutdown_timeout = 20
        metrics_port = {free_port()}

        [credentials]
        sweep_interval = 3600

        [ironic]
        {ironic_options}

        [ramdisk]
        after = none
        ''') + extra)
    return path


class ConsumerProcess:
    def __init__(self, config: pathlib.Path, log: pathlib.Path,
                 wrapper: tuple[str, ...] = ()) -> None:
        self.config = config
        self.log = log
        self.wrapper = list(wrapper)  # e.g. ip netns exec NAME
        self.proc: subprocess.Popen | None = None
        text = config.read_text()
        self.metrics_port = int(text.split('metrics_port = ')[1].split()[0])

    def start(self) -> ConsumerProcess:
        self.proc = subprocess.Popen(
            [*self.wrapper, str(BIN / 'hwbus-consumer'), '--config-file',
             str(self.config)],
            stdout=subprocess.DEVNULL, stderr=self.log.open('a'),
            env={**os.environ, 'PYTHONUNBUFFERED': '1'})
        wait_for(lambda: 'consuming' in self.log.read_text(), 60,
                 'hwbus-consumer', self.log, self.proc)
        return self

    def stop(self) -> int | None:
        """SIGTERM: a graceful stop."""
        stop(self.proc, timeout=60)
        code = self.proc.returncode if self.proc else None
        self.proc = None
        return code

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.proc = None

    def metrics(self) -> str:
        return requests.get(f'http://127.0.0.1:{self.metrics_port}/metrics',
                            timeout=10).text

    def counter(self, outcome: str, reason: str = '-') -> float:
        needle = (f'hwbus_messages_total{{outcome="{outcome}",'
                  f'reason="{reason}"}} ')
        for line in self.metrics().splitlines():
            if line.startswith(needle):
                return float(line.split()[-1])
        return 0.0
