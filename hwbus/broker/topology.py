"""The exchanges, queues, bindings and users hwbus needs on the broker.

One description, two outputs: ``setup()`` declares it through the
management API (idempotent: re-running changes nothing), and
``definitions()`` renders the same as a RabbitMQ definitions file for
sites that provision brokers from files.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import os
import re
from typing import Any

from hwbus.broker.management import Management

INVENTORY_PATTERN = 'inventory.*'


@dataclasses.dataclass(frozen=True)
class Topology:
    """Names (all configurable in [broker]) and the queue's limits."""

    vhost: str = '/'
    exchange: str = 'hwbus.inventory'
    queue: str = 'hwbus.inventory'
    dead_exchange: str = 'hwbus.dead'
    dead_queue: str = 'hwbus.inventory.dead'
    delivery_limit: int = 20
    consumer_user: str = 'hwbus-consumer'
    # Bytes each queue may hold; beyond, the broker refuses publishes
    # (reject-publish) and loses nothing it accepted.
    queue_max_bytes: int = 512 * 1024 * 1024
    dead_queue_max_bytes: int = 256 * 1024 * 1024
    # Messages each queue may hold: bytes count bodies only, and a dead
    # letter of an unverified message keeps none.
    queue_max_messages: int = 100_000
    dead_queue_max_messages: int = 100_000
    # The largest body the broker accepts (rabbitmq.conf).
    max_message_size: int = 1024 * 1024

    @property
    def broker_dead_queue(self) -> str:
        """The broker's own dead letters, until the consumer sorts them."""
        return f'{self.dead_queue}.broker'

    def queues(self) -> dict[str, dict[str, Any]]:
        """Every queue and its arguments (the targets of dead-lettering
        first, so that they exist when the inventory queue names them)."""
        return {self.dead_queue: self.dead_queue_arguments(),
                self.broker_dead_queue: self.dead_queue_arguments(),
                self.queue: self.queue_arguments()}

    def bindings(self) -> list[tuple[str, str, str]]:
        """(exchange, queue, routing key) of every binding.

        The dead-letter exchange gets two kinds of message: the
        consumer's copies, routed by their reason (one word), and the
        broker's own dead letters, which keep their routing key
        (``inventory.<user>``). Those go to a queue the consumer reads
        and sorts (hwbus.consumer.service): a sender may set a
        per-message ``expiration``, and what expires in a backlog the
        consumer never sees; in the dead-letter queue those kept their
        bodies and filled it, and the main queue behind it, for a
        credential's whole TTL (docs/security.md, sixth attacker). The
        broker cannot sort them itself: it gives expired and
        ``delivery_limit`` messages the same routing key, and a headers
        exchange ignores the ``x-`` headers that name the reason.
        """
        return [(self.exchange, self.queue, INVENTORY_PATTERN),
                (self.dead_exchange, self.dead_queue, '*'),
                (self.dead_exchange, self.broker_dead_queue, 'inventory.#')]

    def retired_bindings(self) -> list[tuple[str, str, str]]:
        """Bindings earlier versions made and setup removes: the
        dead-letter queue took every routing key."""
        return [(self.dead_exchange, self.dead_queue, '#')]

    def queue_arguments(self) -> dict[str, Any]:
        # at-least-once dead-lettering keeps a message in the source queue
        # until the dead-letter queue confirms it; it needs reject-publish.
        return {'x-queue-type': 'quorum',
                'x-delivery-limit': self.delivery_limit,
                'x-dead-letter-exchange': self.dead_exchange,
                'x-dead-letter-strategy': 'at-least-once',
                'x-overflow': 'reject-publish'}

    def dead_queue_arguments(self) -> dict[str, Any]:
        return {'x-queue-type': 'quorum'}

    def policies(self) -> dict[str, dict[str, Any]]:
        """Limits on both queues, as policies (queue arguments cannot
        change after a queue exists; policies can).

        One credential may publish many messages before the consumer sees
        its first: whatever it sends, the queues stay within these bytes.
        ``reject-publish`` refuses new messages (publishers see a nack and
        retry until their deadline); nothing accepted is dropped.
        """
        return {
            f'{self.queue}-limits': {
                'pattern': f'^{re.escape(self.queue)}$',
                'definition': {'max-length-bytes': self.queue_max_bytes,
                               'max-length': self.queue_max_messages,
                               'overflow': 'reject-publish'}},
            f'{self.dead_queue}-limits': {
                'pattern': f'^{re.escape(self.dead_queue)}'
                           f'(\\.broker)?$',
                'definition': {'max-length-bytes': self.dead_queue_max_bytes,
                               'max-length': self.dead_queue_max_messages,
                               'overflow': 'reject-publish'}},
        }

    def broker_config(self) -> str:
        """What rabbitmq.conf must say; the management API cannot set it."""
        return (f'max_message_size = {self.max_message_size}  '
                f'# rabbitmq.conf: larger messages are refused at publish')

    def boot_permissions(self) -> dict[str, str]:
        """A per-boot user: publish to the inventory exchange, nothing else.

        Passive declarations pass any configure pattern, so a boot can
        learn the queue depth; it can neither read nor create anything.
        """
        return {'configure': '^$', 'write': f'^{re.escape(self.exchange)}$',
                'read': '^$'}

    def boot_topic_permissions(self) -> dict[str, str]:
        # {username} is substituted by RabbitMQ without escaping; per-boot
        # names are [a-z0-9-] only, so the pattern stays literal.
        return {'exchange': self.exchange,
                'write': r'^inventory\.{username}$', 'read': '^$'}

    def consumer_permissions(self) -> dict[str, str]:
        """Read both queues, publish dead letters and replays; no configure.

        The consumer declares nothing (passive only): the topology is the
        operator's, set up once by ``hwbus-manage setup-broker``.
        """
        queues = '|'.join(re.escape(q) for q in (
            self.queue, self.dead_queue, self.broker_dead_queue))
        exchanges = '|'.join(re.escape(e) for e in (self.exchange,
                                                    self.dead_exchange))
        return {'configure': '^$', 'write': f'^({exchanges})$',
                'read': f'^({queues})$'}


def setup(management: Management, topology: Topology,
          consumer_password: str | None) -> list[str]:
    """Declare everything; returns what was done, for the operator."""
    done = []
    management.put_vhost()
    management.put_exchange(topology.exchange, 'topic')
    management.put_exchange(topology.dead_exchange, 'topic')
    done.append(f'exchanges {topology.exchange}, {topology.dead_exchange}')
    for name, arguments in topology.queues().items():
        management.put_queue(name, arguments)
    done.append(f'quorum queues {topology.queue} (delivery limit '
                f'{topology.delivery_limit}), {topology.dead_queue}, '
                f'{topology.broker_dead_queue}')
    for exchange, queue, key in topology.bindings():
        management.bind(exchange, queue, key)
    for exchange, queue, key in topology.retired_bindings():
        management.unbind(exchange, queue, key)
    done.append('bindings')
    for name, policy in topology.policies().items():
        management.put_policy(name, policy['pattern'], policy['definition'])
    done.append(f'policies: at most {topology.queue_max_bytes} bytes and '
                f'{topology.queue_max_messages} messages in '
                f'{topology.queue}, {topology.dead_queue_max_bytes} bytes '
                f'and {topology.dead_queue_max_messages} messages in '
                f'{topology.dead_queue}, new messages refused beyond')
    if consumer_password:
        management.put_user(topology.consumer_user, consumer_password)
        management.set_permissions(topology.consumer_user,
                                   **topology.consumer_permissions())
        done.append(f'user {topology.consumer_user} and its permissions')
    else:
        done.append(f'user {topology.consumer_user} skipped: no '
                    f'[broker] consumer_password')
    return done


def password_hash(password: str, salt: bytes | None = None) -> str:
    """RabbitMQ's rabbit_password_hashing_sha256, for definitions files."""
    salt = os.urandom(4) if salt is None else salt
    digest = hashlib.sha256(salt + password.encode('utf-8')).digest()
    return base64.b64encode(salt + digest).decode('ascii')


def definitions(topology: Topology,
                consumer_password: str | None) -> dict[str, Any]:
    """The same topology as a definitions file (``rabbitmqctl
    import_definitions`` or ``load_definitions``)."""
    vhost = topology.vhost

    def exchange(name: str) -> dict[str, Any]:
        return {'name': name, 'vhost': vhost, 'type': 'topic',
                'durable': True, 'auto_delete': False, 'internal': False,
                'arguments': {}}

    def queue(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        return {'name': name, 'vhost': vhost, 'durable': True,
                'auto_delete': False, 'arguments': arguments}

    def binding(source: str, destination: str, key: str) -> dict[str, Any]:
        return {'source': source, 'vhost': vhost,
                'destination': destination, 'destination_type': 'queue',
                'routing_key': key, 'arguments': {}}

    result: dict[str, Any] = {
        'vhosts': [{'name': vhost}],
        'exchanges': [exchange(topology.exchange),
                      exchange(topology.dead_exchange)],
        'queues': [queue(name, arguments)
                   for name, arguments in topology.queues().items()],
        'bindings': [binding(*b) for b in topology.bindings()],
        'users': [], 'permissions': [],
        'policies': [{'vhost': vhost, 'name': name, 'apply-to': 'queues',
                      'priority': 0, **policy}
                     for name, policy in topology.policies().items()],
    }
    if consumer_password:
        result['users'].append({
            'name': topology.consumer_user,
            'password_hash': password_hash(consumer_password),
            'hashing_algorithm': 'rabbit_password_hashing_sha256',
            'tags': []})
        result['permissions'].append({'user': topology.consumer_user,
                                      'vhost': vhost,
                                      **topology.consumer_permissions()})
    return result
