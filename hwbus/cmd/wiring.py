"""Every object hwbus runs, built from the configuration, in one place.

The commands parse their arguments and ask this module for what they
need; nothing else reads ``CONF``. The library gets plain values: URLs,
numbers, objects, and option groups frozen into plain namespaces
(``plain``) for code that wants a group's values by name (the boot
server, the appliers). Two libraries need the configuration object
itself and get it here: keystoneauth loads [ironic]'s auth plug-in from
it, and oslo.messaging its transport options.
"""

from __future__ import annotations

import os
import re
import ssl
import types
import urllib.parse
from typing import Any

import openstack
from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import loading
from keystoneauth1 import session as ks_session
from openstack import config as sdk_config
from openstack import exceptions as sdk_exc

from hwbus import ironic, keys, sealing
from hwbus.broker.management import Management
from hwbus.broker.topology import Topology
from hwbus.conf import CONF
from hwbus.credentials import Credentials
from hwbus.store import Store

ConfigError = ironic.IronicConfigError


def plain(group: Any) -> types.SimpleNamespace:
    """An option group's values, copied into a plain namespace."""
    return types.SimpleNamespace(**{name: getattr(group, name)
                                    for name in group})


# -- broker and store -------------------------------------------------------
def store(conf: Any = CONF) -> Store:
    return Store(conf.database.connection,
                 auto_upgrade=conf.database.auto_upgrade)


def management(conf: Any = CONF) -> Management:
    group = conf.broker
    return Management(group.management_urls, group.admin_user,
                      group.admin_password, vhost=group.vhost,
                      timeout=group.request_timeout,
                      verify=group.management_ca_file or True)


def topology(conf: Any = CONF) -> Topology:
    group = conf.broker
    return Topology(vhost=group.vhost, exchange=group.exchange,
                    queue=group.queue, dead_exchange=group.dead_exchange,
                    dead_queue=group.dead_queue,
                    delivery_limit=group.delivery_limit,
                    consumer_user=group.consumer_user,
                    queue_max_bytes=group.queue_max_bytes,
                    dead_queue_max_bytes=group.dead_queue_max_bytes,
                    queue_max_messages=group.queue_max_messages,
                    dead_queue_max_messages=group.dead_queue_max_messages,
                    max_message_size=group.max_message_size)


def broker_ca(conf: Any = CONF) -> str | None:
    """The first certificate of [broker] ca_file as base64url DER, ready
    for hwbus.ca (a bundle's first CA is the one boots pin: see the CA
    roll in docs/security.md)."""
    if not conf.broker.ca_file:
        return None
    with open(conf.broker.ca_file, encoding='ascii') as f:
        match = re.search(r'-----BEGIN CERTIFICATE-----.+?'
                          r'-----END CERTIFICATE-----', f.read(), re.S)
    if match is None:
        raise ValueError(f'{conf.broker.ca_file} holds no PEM certificate')
    return keys.b64encode(ssl.PEM_cert_to_DER_cert(match.group(0)))


def credentials(conf: Any = CONF, store_: Store | None = None) -> Credentials:
    group = conf.credentials
    return Credentials(
        store_ or store(conf), management(conf), topology(conf),
        conf.broker.public_urls, ca=broker_ca(conf),
        max_connections=group.max_connections,
        max_outstanding=group.max_outstanding,
        publish_deadline=group.publish_deadline,
        seal_key=seal_public(conf))


# -- sealed secrets ----------------------------------------------------------
def seal_public(conf: Any = CONF) -> bytes | None:
    """The public key boots seal secrets to: [sealing] public_key, else
    the public half of private_key_file when this process can read it
    (None when neither: issuing a BMC account then fails, saying so)."""
    group = conf.sealing
    if group.public_key:
        try:
            return sealing.load_public(group.public_key)
        except sealing.SealError as exc:
            raise sealing.SealConfigError(
                f'[sealing] public_key: {exc}') from None
    if group.private_key_file and os.access(group.private_key_file, os.R_OK):
        return sealing.public_bytes(_private_key(group.private_key_file))
    return None


def seal_keyring(conf: Any = CONF) -> list[Any]:
    """The consumer's private keys, current first ([sealing]
    private_key_file, previous_key_files); unreadable ones are a
    configuration error naming the option."""
    group = conf.sealing
    files = ([group.private_key_file] if group.private_key_file else []) + \
        list(group.previous_key_files)
    return [_private_key(path) for path in files]


def _private_key(path: str) -> Any:
    try:
        with open(path, 'rb') as f:
            data = f.read(64 * 1024)
    except OSError as exc:
        raise sealing.SealConfigError(
            f'[sealing] key file {path}: {exc.strerror}; create one with '
            f'"hwbus-manage seal-key create --output {path}"') from None
    try:
        return sealing.load_private_pem(data)
    except sealing.SealError as exc:
        raise sealing.SealConfigError(
            f'[sealing] key file {path}: {exc}') from None


def consumer_urls(conf: Any = CONF) -> list[str]:
    """[consumer] broker_urls with the consumer's user and password."""
    user = urllib.parse.quote(conf.broker.consumer_user, safe='')
    password = urllib.parse.quote(conf.broker.consumer_password or '',
                                  safe='')
    result = []
    for url in conf.consumer.broker_urls:
        scheme, _, rest = url.partition('://')
        result.append(f'{scheme}://{user}:{password}@{rest}')
    return result


def consumer_tls(conf: Any = CONF) -> bool | dict[str, Any]:
    """kombu's ``ssl`` for amqps:// broker URLs: verify the broker.

    The broker's certificate must chain to [broker] ca_file (the CA the
    ramdisks pin too) or, without it, to a system CA, and must name the
    host of the URL in use; kombu fills that in per failover URL.
    """
    schemes = {url.partition('://')[0] for url in conf.consumer.broker_urls}
    if 'amqps' not in schemes:
        return False
    if schemes != {'amqps'}:
        raise ValueError('[consumer] broker_urls mixes amqp:// and '
                         'amqps://; use one scheme for all nodes')
    return {'ca_certs': conf.broker.ca_file, 'cert_reqs': ssl.CERT_REQUIRED,
            'server_hostname': None}


# -- Ironic -----------------------------------------------------------------
def ironic_connection(conf: Any = CONF) -> openstack.connection.Connection:
    """A connection from [ironic]: a clouds.yaml cloud or keystoneauth.

    Nothing is asked of Keystone or Ironic here (credentials are tried
    by the first call, under calling()); what [ironic] lacks to make a
    connection is an IronicConfigError naming the option.
    """
    group = conf.ironic
    if group.cloud:
        return _pooled(_from_cloud(group), _workers(conf))
    try:
        auth = loading.load_auth_from_conf_options(conf, 'ironic')
    except ks_exc.MissingRequiredOptions as exc:
        names = ', '.join(f'[ironic] {o.dest}' for o in exc.options)
        raise ConfigError(f'[ironic] auth_type {group.auth_type} '
                          f'needs {names}') from None
    except ks_exc.NoMatchingPlugin as exc:
        raise ConfigError(f'[ironic] auth_type {exc.name}: no such '
                          f'keystoneauth plugin (password, '
                          f'v3applicationcredential, http_basic, '
                          f'none)') from None
    session = loading.load_session_from_conf_options(conf, 'ironic',
                                                     auth=auth)
    return _pooled(openstack.connection.Connection(
        session=session, region_name=group.region_name,
        baremetal_interface=group.interface or ['internal', 'public'],
        baremetal_endpoint_override=group.endpoint_override,
        baremetal_api_version=group.api_version,
        baremetal_status_code_retries=group.retries), _workers(conf))


def _workers(conf: Any) -> int:
    """[consumer] workers where the consumer's options are registered
    (the other commands make one call at a time)."""
    return conf.consumer.workers if 'consumer' in conf else 1


def _pooled(connection: openstack.connection.Connection,
            workers: int) -> openstack.connection.Connection:
    """Keep a connection to Ironic open for each worker.

    keystoneauth's HTTP session keeps 10 per host; with more workers
    calling Ironic at once, every call beyond those opened a new TCP (and
    TLS) connection and threw it away ("Connection pool is full").
    """
    http = connection.session.session
    for scheme in ('https://', 'http://'):
        http.mount(scheme, ks_session.TCPKeepAliveAdapter(
            pool_maxsize=max(10, workers)))
    return connection


def _from_cloud(group: Any) -> openstack.connection.Connection:
    """[ironic] cloud from [ironic] clouds_yaml (and a secure.yaml beside
    it), or from openstacksdk's usual places when that is unset."""
    files: dict[str, Any] = {}
    where = ('clouds.yaml (OS_CLIENT_CONFIG_FILE, ./, ~/.config/openstack/, '
             '/etc/openstack/)')
    if group.clouds_yaml:
        where = group.clouds_yaml
        try:
            with open(group.clouds_yaml, 'rb'):
                pass
        except OSError as exc:
            raise ConfigError(f'[ironic] clouds_yaml {group.clouds_yaml}: '
                              f'{exc.strerror}') from None
        secure = os.path.join(os.path.dirname(group.clouds_yaml),
                              'secure.yaml')
        files = {'config_files': [group.clouds_yaml],
                 'secure_files': [secure], 'vendor_files': [],
                 'load_envvars': False}
    overrides: dict[str, Any] = {
        'baremetal_api_version': group.api_version,
        'baremetal_status_code_retries': group.retries}
    if group.region_name:
        overrides['region_name'] = group.region_name
    if group.interface:
        overrides['baremetal_interface'] = group.interface
    try:
        config = sdk_config.OpenStackConfig(**files)
        clouds = config.get_cloud_names()
        if group.cloud not in clouds:
            raise ConfigError(
                f'[ironic] cloud {group.cloud!r} is not in {where} '
                f'(clouds there: {", ".join(sorted(clouds)) or "none"}): fix '
                f'[ironic] cloud or [ironic] clouds_yaml')
        region = config.get_one(cloud=group.cloud, **overrides)
    except sdk_exc.ConfigException as exc:
        raise ConfigError(f'[ironic] cloud {group.cloud!r} in {where}: '
                          f'{exc}') from None
    except ks_exc.MissingRequiredOptions as exc:
        names = ', '.join(o.dest for o in exc.options)
        raise ConfigError(f'[ironic] cloud {group.cloud!r} in {where} '
                          f'needs auth: {names}') from None
    return openstack.connection.Connection(config=region)



# -- the consumer ----------------------------------------------------------
def pipeline(conf: Any = CONF, credentials_: Credentials | None = None,
             notifier: Any = None) -> Any:
    from hwbus.consumer import appliers, observers
    from hwbus.consumer.pipeline import Pipeline

    credentials_ = credentials_ or credentials(conf)
    names = conf.consumer.appliers
    connection = None if names == ['null'] else ironic_connection(conf)
    watching: list[Any] = []
    if conf.consumer.archive:
        watching.append(observers.Archive(credentials_.store, notifier))
    watching += [observers.Metrics(), observers.LogLine()]
    if notifier is not None:
        watching.append(observers.Notify(notifier))
    return Pipeline(credentials_,
                    appliers.load(names, applier_settings(conf, names),
                                  connection),
                    observers=watching,
                    max_size=conf.broker.max_message_size,
                    apply_lease=conf.consumer.apply_lease,
                    keyring=seal_keyring(conf),
                    limit=None if connection is None else ironic_limit(conf))


def ironic_limit(conf: Any = CONF) -> Any:
    """The adaptive limit on applies in flight to Ironic."""
    from hwbus.consumer import metrics
    from hwbus.consumer.limit import AdaptiveLimit

    group = conf.consumer
    return AdaptiveLimit(
        ceiling=min(group.ironic_concurrency, group.workers),
        tolerance=group.ironic_latency_tolerance,
        wait=group.apply_lease / 4,
        on_change=metrics.IRONIC_LIMIT.set)


def applier_settings(conf: Any, names: list[str]) -> dict[str, Any]:
    """Each applier's option group by its name ([enroll], [inspection],
    or a site applier's own), as plain values, with [bmc] as ``.bmc``."""
    result: dict[str, Any] = {}
    for name in names:
        settings = plain(conf[name]) if name in conf else None
        if settings is not None:
            settings.bmc = plain(conf.bmc)
        result[name] = settings
    return result


def revoker(credentials_: Credentials, conf: Any = CONF) -> Any:
    """The consumer's batching revoker, attached to ``credentials_`` so
    that receiving a message queues its user's deletion there."""
    from hwbus.consumer import metrics
    from hwbus.credentials.revoker import Revoker

    group = conf.consumer
    credentials_.revoker = Revoker(
        credentials_.store, credentials_.management,
        batch_size=group.revoke_batch_size,
        max_delay=group.revoke_max_delay, max_backoff=group.max_backoff,
        observe=metrics.REVOKE_DELAY.observe)
    metrics.REVOKE_PENDING.set_function(credentials_.revoker.pending)
    return credentials_.revoker


def consumer_settings(conf: Any = CONF) -> Any:
    from hwbus.consumer.service import Settings

    group = conf.consumer
    return Settings(urls=consumer_urls(conf), queue=conf.broker.queue,
                    dead_queue=conf.broker.dead_queue,
                    broker_dead_queue=topology(conf).broker_dead_queue,
                    dead_exchange=conf.broker.dead_exchange,
                    workers=group.workers, prefetch=group.prefetch,
                    retry_window=group.retry_window,
                    max_backoff=group.max_backoff,
                    shutdown_timeout=group.shutdown_timeout,
                    internal_attempts=group.internal_attempts,
                    sweep_interval=conf.credentials.sweep_interval,
                    ssl=consumer_tls(conf), heartbeat=group.heartbeat)


def notifier(conf: Any = CONF) -> Any:
    """oslo.messaging reads its transport options from the configuration
    object itself. None with the ``noop`` driver (the default): nothing
    would be sent, and not loading oslo.messaging keeps it out of the
    consumer's memory and each message's path."""
    if conf.notifications.driver == 'noop':
        return None
    from hwbus.consumer.notify import Notifier

    return Notifier(conf)
