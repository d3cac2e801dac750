"""``hwbus-manage check``: is this site set up, and if not, what fixes it.

Each check is a function returning ``Result``s: OK with what it found,
or FAIL with the cause and the option or command that fixes it (NOTE for
what cannot be checked from here). They take plain objects, so the
command builds them from the configuration and a test can call them.
Nothing here changes anything.
"""

from __future__ import annotations

import dataclasses
import os
import re
import ssl
from collections.abc import Callable, Iterable
from typing import Any

OK, FAIL, NOTE = 'OK', 'FAIL', 'NOTE'


@dataclasses.dataclass
class Result:
    status: str
    what: str
    text: str

    def line(self) -> str:
        return f'{self.status:4}  {self.what}: {self.text}'


def run(check: Callable[[], Iterable[Result]], what: str) -> list[Result]:
    """A check's results; an error it did not foresee is a FAIL too."""
    from hwbus.cmd import explain

    try:
        return list(check())
    except Exception as exc:  # every failure becomes a line, none a crash
        return [Result(FAIL, what, explain(exc) or
                       f'{type(exc).__name__}: {exc}')]


def management(mgmt: Any, topology: Any) -> Iterable[Result]:
    """The management API with the administrator, and the topology."""
    overview = mgmt.overview()
    yield Result(OK, 'broker management API',
                 f'RabbitMQ {overview.get("rabbitmq_version", "?")} at '
                 f'{mgmt.urls[0]} as [broker] admin_user')
    missing = []
    for name, arguments in topology.queues().items():
        queue = mgmt.queue(name)
        if queue is None:
            missing.append(f'queue {name}')
        elif any(queue.get('arguments', {}).get(k) != v
                 for k, v in arguments.items()):
            missing.append(f'queue {name} with other arguments')
    for name in topology.policies():
        if mgmt.policy(name) is None:
            missing.append(f'policy {name}')
    absent = {name for name in topology.queues() if f'queue {name}' in
              missing}
    keys: dict[tuple[str, str], set[str]] = {}  # one call per pair

    def bound(exchange: str, queue: str) -> set[str]:
        if (exchange, queue) not in keys:
            keys[exchange, queue] = {b['routing_key'] for b in
                                     mgmt.bindings(exchange, queue)}
        return keys[exchange, queue]

    for exchange, queue, key in topology.bindings():
        if queue not in absent and key not in bound(exchange, queue):
            missing.append(f'binding {exchange} → {queue} ({key})')
    if not mgmt.user_exists(topology.consumer_user):
        missing.append(f'user {topology.consumer_user}')
    # What an older setup-broker made and this one removes.
    stale = [f'binding {exchange} → {queue} ({key})'
             for exchange, queue, key in topology.retired_bindings()
             if queue not in absent and key in bound(exchange, queue)]
    if missing or stale:
        problems = ([f'missing {", ".join(missing)}'] if missing else []) + \
            ([f'left from an older setup: {", ".join(stale)}'] if stale
             else [])
        yield Result(FAIL, 'broker topology', f'{"; ".join(problems)}: '
                     f'run "hwbus-manage setup-broker"')
    else:
        yield Result(OK, 'broker topology',
                     f'{topology.exchange}, {topology.queue}, '
                     f'{topology.dead_queue}, {topology.broker_dead_queue}, '
                     f'policies, {topology.consumer_user}')
    yield Result(NOTE, 'broker max_message_size',
                 f'not visible through the API: {topology.broker_config()}')


def consumer_login(urls: list[str], queues: Iterable[str],
                   ssl_options: Any = False) -> Iterable[Result]:
    """The consumer's own AMQP login, and that it may read its queues."""
    import kombu

    with kombu.Connection(urls, ssl=ssl_options,
                          connect_timeout=10) as connection:
        connection.ensure_connection(max_retries=1)
        channel = connection.channel()
        depths = []
        for queue in queues:
            _, count, _ = channel.queue_declare(queue, passive=True)
            depths.append(f'{queue} {count}')
        yield Result(OK, 'consumer broker login',
                     f'[broker] consumer_user may read {", ".join(depths)} '
                     f'(messages waiting)')


def store(url: str) -> Iterable[Result]:
    from hwbus.store import Store

    handle = Store(url, auto_upgrade=False)
    yield Result(OK, 'store', f'{handle.engine.url.get_backend_name()} at '
                 f'schema {handle.revision()} (current)')


def ironic(connection: Any, appliers: list[str],
           api_version: str, driver: str | None = None) -> Iterable[Result]:
    """Ironic answers, accepts our credentials, speaks our API version,
    and has the hardware type enrolled nodes get ([enroll] driver)."""
    from hwbus import ironic as handle
    from hwbus.errors import TransientError

    try:
        yield from _ironic(handle, connection, appliers, api_version)
        if 'enroll' in appliers and driver:
            yield from _driver(handle, connection, driver)
    except TransientError as exc:
        yield Result(FAIL, 'Ironic API', f'{exc}: check [ironic] '
                     f'endpoint_override (or the cloud) and that Ironic runs')


def _ironic(handle: Any, connection: Any, appliers: list[str],
            api_version: str) -> Iterable[Result]:
    baremetal = handle.baremetal(connection)
    with handle.calling('API versions'):
        response = baremetal.get('/', microversion=None, raise_exc=False)
        info = response.json() if response.status_code == 200 else {}
    # /v1/ names its version range under "version" (the root under
    # "default_version").
    top = (info.get('version') or info.get('default_version') or
           {}).get('version', '?')
    if _version(top) < _version(api_version):
        yield Result(FAIL, 'Ironic API', f'speaks up to {top}, [ironic] '
                     f'api_version asks {api_version}: lower it or upgrade '
                     f'Ironic')
        return
    with handle.calling('node list'):
        list(baremetal.nodes(limit=1, fields=['uuid']))
    yield Result(OK, 'Ironic API', f'version up to {top}; [ironic] '
                 f'credentials accepted (nodes listed)')
    if 'inspection' in appliers:
        if _version(top) < (1, 84):
            yield Result(FAIL, 'inspection applier', f'needs API 1.84 '
                         f'(continue_inspection), Ironic has {top}')
        yield Result(NOTE, 'Ironic auto-discovery',
                     'not visible through the API: new machines are '
                     'enrolled only with [auto_discovery] enabled = true '
                     'in ironic.conf (or use the "enroll" applier)')


def _driver(handle: Any, connection: Any, driver: str) -> Iterable[Result]:
    baremetal = handle.baremetal(connection)
    with handle.calling('driver list'):
        enabled = sorted(d.name for d in baremetal.drivers())
    wanted = ['ipmi', 'redfish'] if driver == 'auto' else [driver]
    missing = [d for d in wanted if d not in enabled]
    if missing:
        yield Result(FAIL, 'enroll hardware type',
                     f'{", ".join(missing)} not enabled in Ironic (it has '
                     f'{", ".join(enabled) or "none"}): add it to '
                     f'enabled_hardware_types in ironic.conf, or change '
                     f'[enroll] driver')
    else:
        yield Result(OK, 'enroll hardware type',
                     f'{", ".join(wanted)} enabled in Ironic')


def sealing(account: str, keyring: Callable[[], list[Any]],
            public: Callable[[], bytes | None]) -> Iterable[Result]:
    """The key BMC passwords are sealed to: there when [bmc] account
    asks for one, and the issuer's public key is the consumer's."""
    from hwbus import sealing as seal

    keys = keyring()
    key = public()
    if account != 'off' and key is None:
        yield Result(FAIL, 'sealing key',
                     f'[bmc] account = {account} needs one: run '
                     f'"hwbus-manage seal-key create --output FILE" and set '
                     f'[sealing] private_key_file = FILE (or public_key on '
                     f'an issuer-only host)')
        return
    if keys and key is not None and key != seal.public_bytes(keys[0]):
        yield Result(FAIL, 'sealing key',
                     '[sealing] public_key is not the public half of '
                     'private_key_file: boots would seal to a key this '
                     'consumer cannot open; remove public_key or fix it')
        return
    if keys:
        yield Result(OK, 'sealing key',
                     f'{len(keys)} private key(s); boots seal to '
                     f'{seal.key_id(seal.public_bytes(keys[0]))}')
    elif key is not None:
        yield Result(NOTE, 'sealing key',
                     f'public key {seal.key_id(key)} only: the consumer\'s '
                     f'host needs [sealing] private_key_file')


def _version(text: str) -> tuple[int, int]:
    try:
        major, minor = text.split('.')[:2]
        return int(major), int(minor)
    except ValueError:
        return (0, 0)


def images(group: Any) -> Iterable[Result]:
    from hwbus.bootserver.app import missing_images

    missing = missing_images(group)
    if missing:
        yield Result(FAIL, 'boot server images',
                     f'{", ".join(missing)} missing in [bootserver] '
                     f'image_dir {group.image_dir}: build them with '
                     f'tools/build-ramdisk or set kernel_url/initrd_url')
    else:
        yield Result(OK, 'boot server images',
                     f'{group.kernel_url or group.image_dir}')


def tls_files(files: dict[str, str | None]) -> Iterable[Result]:
    """Each configured certificate or key file is readable and is PEM."""
    for option, path in files.items():
        if not path:
            continue
        if not os.access(path, os.R_OK):
            yield Result(FAIL, option, f'{path} cannot be read by this '
                         f'user: fix the path or its permissions')
            continue
        with open(path, encoding='ascii', errors='replace') as handle:
            text = handle.read()
        if 'PRIVATE KEY-----' in text:
            yield Result(OK, option, f'{path} (a private key)')
            continue
        match = re.search(r'-----BEGIN CERTIFICATE-----.+?'
                          r'-----END CERTIFICATE-----', text, re.S)
        try:
            ssl.PEM_cert_to_DER_cert(match.group(0) if match else '')
        except ValueError:
            yield Result(FAIL, option, f'{path} holds no PEM certificate')
            continue
        yield Result(OK, option, f'{path}')
