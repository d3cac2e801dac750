"""Objects from configuration, shared by hwbus-consumer and hwbus-manage."""

from __future__ import annotations

import urllib.parse
from typing import Any

from hwbus import ironic
from hwbus.consumer import appliers, observers
from hwbus.consumer.pipeline import Pipeline
from hwbus.consumer.service import Settings
from hwbus.credentials import Credentials


def consumer_urls(conf: Any) -> list[str]:
    """[consumer] broker_urls with the consumer's user and password."""
    user = urllib.parse.quote(conf.broker.consumer_user, safe='')
    password = urllib.parse.quote(conf.broker.consumer_password or '',
                                  safe='')
    result = []
    for url in conf.consumer.broker_urls:
        scheme, _, rest = url.partition('://')
        scheme = {'amqp': 'amqp', 'amqps': 'amqps'}.get(scheme, scheme)
        result.append(f'{scheme}://{user}:{password}@{rest}')
    return result


def tls_options(conf: Any) -> bool | dict[str, Any]:
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
    import ssl

    return {'ca_certs': conf.broker.ca_file, 'cert_reqs': ssl.CERT_REQUIRED,
            'server_hostname': None}


def pipeline(conf: Any, credentials: Credentials,
             notifier: Any = None) -> Pipeline:
    names = conf.consumer.appliers
    connection = None if names == ['null'] else ironic.connect(conf)
    watching: list[observers.Observer] = []
    if conf.consumer.archive:
        watching.append(observers.Archive(credentials.store, notifier))
    watching += [observers.Metrics(), observers.LogLine()]
    if notifier is not None:
        watching.append(observers.Notify(notifier))
    return Pipeline(credentials, appliers.load(names, conf, connection),
                    observers=watching,
                    max_size=conf.broker.max_message_size,
                    apply_lease=conf.consumer.apply_lease)


def settings(conf: Any) -> Settings:
    group = conf.consumer
    return Settings(urls=consumer_urls(conf), queue=conf.broker.queue,
                    dead_queue=conf.broker.dead_queue,
                    dead_exchange=conf.broker.dead_exchange,
                    workers=group.workers, prefetch=group.prefetch,
                    retry_window=group.retry_window,
                    max_backoff=group.max_backoff,
                    shutdown_timeout=group.shutdown_timeout,
                    internal_attempts=group.internal_attempts,
                    sweep_interval=conf.credentials.sweep_interval,
                    ssl=tls_options(conf),
                    heartbeat=conf.consumer.heartbeat)
