"""A consumer-side stack for the chaos tests: store, credentials, config."""

from __future__ import annotations

import pathlib

import sqlalchemy as sa

from hwbus.localstack.consumer import ConsumerProcess, write_config
from hwbus.store import Store
from tests.functional import boots
from tests.functional.conftest import CONSUMER_PASSWORD, credentials_for


def empty_postgres_store(postgres) -> Store:
    """The shared PostgreSQL cluster's store, emptied for this test."""
    engine = sa.create_engine(postgres.url)
    with engine.begin() as connection:
        for table in ('inventories', 'credentials', 'alembic_version'):
            connection.execute(sa.text(f'DROP TABLE IF EXISTS {table}'))
    engine.dispose()
    return Store(postgres.url)


def drain(broker) -> None:
    boots.get_all(broker, 'hwbus.inventory')
    boots.get_all(broker, 'hwbus.inventory.dead')


class Stack:
    """Consumers (not started) and credentials against one broker,
    store and Ironic."""

    def __init__(self, tmp: pathlib.Path, broker, ironic, database_url: str,
                 consumers: int = 1, extra: str = '') -> None:
        self.tmp, self.broker, self.ironic = tmp, broker, ironic
        self.store = Store(database_url)
        self.credentials = credentials_for(broker, self.store)
        self.configs = [write_config(tmp / f'c{n}.conf', broker,
                                     database_url, ironic.url,
                                     CONSUMER_PASSWORD, extra=extra)
                        for n in range(consumers)]
        self.consumers = [ConsumerProcess(c, tmp / f'c{n}.log')
                          for n, c in enumerate(self.configs)]

    def start(self) -> Stack:
        for consumer in self.consumers:
            consumer.start()
        return self

    def stop(self) -> None:
        for consumer in self.consumers:
            if consumer.proc is not None:
                consumer.stop()

    def applied(self) -> int:
        from hwbus.store import State

        return self.store.count([State.APPLIED])
