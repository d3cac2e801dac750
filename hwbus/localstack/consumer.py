"""hwbus.conf for these servers (a test and a local profile), and
hwbus-consumer as a process."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys

import requests

from hwbus.localstack.common import free_port, stop, wait_for

BIN = pathlib.Path(sys.executable).parent


# What each profile of write_config sets besides the servers' addresses
# and credentials, the store and the appliers (section: option: value; a
# callable value is called for each file).
PROFILES: dict[str, dict[str, dict]] = {
    # What the tests and benchmarks count on: debug logs, retries after
    # at most a second, a lease a test can wait out, a stop within 20 s,
    # the credential sweeper out of the way, metrics on a free port.
    'test': {
        'DEFAULT': {'debug': 'true'},
        'consumer': {'workers': '4', 'max_backoff': '1',
                     'apply_lease': '15', 'shutdown_timeout': '20',
                     'metrics_port': free_port},
        'credentials': {'sweep_interval': '3600'},
        'ramdisk': {'after': 'none'},
    },
    # hwbus's own defaults, as an operator trying it on one machine runs
    # it (no debug logs, the default backoff, lease, sweep and metrics
    # port); only the ramdisk, which runs on this very machine, does
    # nothing once it has published.
    'local': {
        'ramdisk': {'after': 'none'},
    },
}


def write_config(path: pathlib.Path, rabbit, database_url: str,
                 ironic_url: str | None, consumer_password: str,
                 appliers: str = 'inspection',
                 extra: str = '',
                 ironic: dict[str, str] | None = None,
                 profile: str = 'test') -> pathlib.Path:
    """One hwbus.conf for every hwbus command run against these servers.

    ``rabbit`` is a RabbitMQServer or a RabbitMQCluster: its client and
    management URLs, and its CA when it speaks TLS only. ``ironic``, when
    given, is the whole [ironic] section (option: value) instead of
    noauth at ``ironic_url``. ``profile`` is one of PROFILES: ``test``
    (the default: the tests and benchmarks are most callers) or
    ``local`` (tools/local-stack). ``extra`` is appended as it is.
    """
    if profile not in PROFILES:
        raise ValueError(f'no config profile {profile!r}: one of '
                         f'{", ".join(PROFILES)}')
    urls = ','.join(rabbit.client_urls)
    broker = {
        'management_urls': ','.join(rabbit.management_urls),
        'admin_user': rabbit.admin_user,
        'admin_password': rabbit.admin_password,
        'public_urls': urls,
        'consumer_password': consumer_password}
    if getattr(rabbit, 'tls_only', False):
        broker.update(ca_file=rabbit.ca_file,
                      management_ca_file=rabbit.ca_file)
    if ironic is None:
        ironic = {'auth_type': 'none',
                  'endpoint_override': ironic_url or 'http://127.0.0.1:9'}
    sections: dict[str, dict] = {
        'DEFAULT': {}, 'broker': broker,
        'database': {'connection': database_url},
        'consumer': {'broker_urls': urls, 'appliers': appliers},
        'credentials': {}, 'ironic': dict(ironic), 'ramdisk': {}}
    for section, options in PROFILES[profile].items():
        sections.setdefault(section, {}).update(
            (option, value() if callable(value) else value)
            for option, value in options.items())
    text = '\n'.join(
        f'[{section}]\n' + ''.join(f'{option} = {value}\n'
                                   for option, value in options.items())
        for section, options in sections.items() if options)
    # It holds the broker's admin and consumer passwords: owner only.
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(text + extra)
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

    def gauge(self, name: str) -> float | None:
        """An unlabelled gauge's value (None before it is exposed)."""
        for line in self.metrics().splitlines():
            if line.startswith(f'{name} '):
                return float(line.split()[-1])
        return None

    def counter(self, outcome: str, reason: str = '-') -> float:
        needle = (f'hwbus_messages_total{{outcome="{outcome}",'
                  f'reason="{reason}"}} ')
        for line in self.metrics().splitlines():
            if line.startswith(needle):
                return float(line.split()[-1])
        return 0.0
