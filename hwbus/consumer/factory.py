"""Objects from configuration, shared by hwbus-consumer and hwbus-manage."""

from __future__ import annotations

import urllib.parse
from typing import Any

from hwbus.consumer import appliers, ironic
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


def pipeline(conf: Any, credentials: Credentials,
             notifier: Any = None) -> Pipeline:
    names = conf.consumer.appliers
    connection = None if names == ['null'] else ironic.connect(conf)
    return Pipeline(credentials, appliers.load(names, conf, connection),
                    notifier=notifier, archive=conf.consumer.archive,
                    max_size=conf.broker.max_message_size)


def settings(conf: Any) -> Settings:
    group = conf.consumer
    return Settings(urls=consumer_urls(conf), queue=conf.broker.queue,
                    dead_exchange=conf.broker.dead_exchange,
                    workers=group.workers, prefetch=group.prefetch,
                    retry_window=group.retry_window,
                    max_backoff=group.max_backoff,
                    shutdown_timeout=group.shutdown_timeout,
                    sweep_interval=conf.credentials.sweep_interval)
