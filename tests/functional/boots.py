"""Boots for consumer tests: issue, seal, publish like a ramdisk would."""

from __future__ import annotations

import json
import pathlib

import pika

from hwbus import envelope, keys
from hwbus.ramdisk import publisher

MACHINES = pathlib.Path(__file__).parents[1] / 'fixtures' / 'machines'


def document(machine: str = 'qemu-guest', mac: str | None = None) -> dict:
    """A recorded machine's document, its boot NIC's MAC replaced."""
    doc = json.loads((MACHINES / machine / 'expected.json').read_text())
    if mac:
        old = doc['inventory']['boot']['pxe_interface']
        text = json.dumps(doc).replace(old, mac)
        doc = json.loads(text)
    return doc


def mac_for(i: int) -> str:
    return f'52:54:10:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}'


def boot(credentials, i: int, machine: str = 'qemu-guest', **seal):
    """Issue a credential for one boot and publish its inventory."""
    issued = credentials.issue(mac=mac_for(i), after='none')
    return issued, publish(issued, i, machine, **seal)


def publish(issued, i: int, machine: str = 'qemu-guest',
            deadline: float = 30, **seal) -> envelope.Sealed:
    """Seal boot i's inventory and publish it as its ramdisk would."""
    doc = document(machine, mac_for(i))
    sealed = envelope.seal(boot_id=issued.params.boot_id,
                           user=issued.params.user,
                           key=keys.private_key(issued.params.key),
                           inventory=doc['inventory'],
                           plugin_data=doc['plugin_data'], **seal)
    publisher.publish(sealed, issued.params, deadline=deadline)
    return sealed


def publish_raw(issued, body: bytes, properties: dict) -> None:
    """Publish exactly these bytes as the boot's user (a rogue ramdisk)."""
    connection = pika.BlockingConnection(
        pika.URLParameters(issued.params.connection_urls()[0]))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish('hwbus.inventory',
                              f'inventory.{issued.params.user}', body,
                              pika.BasicProperties(**properties),
                              mandatory=True)
    except pika.exceptions.ConnectionClosedByBroker as exc:
        # The consumer took the message and deleted the user before the
        # confirm came back (as the ramdisk's "awaited its confirm"); any
        # other close is an error.
        if 'is deleted' not in str(exc):
            raise
    finally:
        close(connection)


def close(connection: pika.BlockingConnection) -> None:
    """Close a boot user's connection, which the broker may be closing
    itself at the same moment: the consumer deletes the user as soon as
    it has the boot's message."""
    if connection.is_open:
        try:
            connection.close()
        except (pika.exceptions.ConnectionClosedByBroker,
                pika.exceptions.ConnectionWrongStateError):
            pass



def signed_properties(issued, body: bytes, key=None, **overrides) -> dict:
    key = key or keys.private_key(issued.params.key)
    props = {'content_type': envelope.CONTENT_TYPE,
             'content_encoding': 'identity', 'message_id': f'raw-{id(body)}',
             'user_id': issued.params.user, 'delivery_mode': 2,
             'headers': {envelope.HEADER_BOOT: issued.params.boot_id,
                         envelope.HEADER_SIGNATURE: keys.b64encode(
                             key.sign(body))}}
    props.update(overrides)
    return props


def get_all(server, queue: str) -> list[tuple]:
    connection = pika.BlockingConnection(server.pika_parameters())
    messages = []
    try:
        channel = connection.channel()
        while True:
            method, props, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                return messages
            messages.append((props, body))
    finally:
        connection.close()


def depth(server, queue: str) -> int:
    connection = pika.BlockingConnection(server.pika_parameters())
    try:
        return connection.channel().queue_declare(
            queue, passive=True).method.message_count
    finally:
        connection.close()
