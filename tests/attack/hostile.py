"""An attacker on the provisioning network, with a credential of its own.

Its client is py-amqp with the property bytes given verbatim, so what
reaches the broker and the consumer is exactly what a hostile sender
chooses; the broker checks what it checks (user_id, routing key, size)
and the rest goes through.
"""

from __future__ import annotations

import time
import urllib.parse

import amqp

from hwbus import envelope, keys
from tests import amqpbytes
from tests.functional import boots


class RawMessage(amqp.Message):
    """A message whose encoded properties are these bytes."""

    def __init__(self, body: bytes, raw_properties: bytes) -> None:
        super().__init__(body)
        self._raw = raw_properties

    def _serialize_properties(self) -> bytes:
        return self._raw


def connect(issued) -> amqp.Connection:
    url = urllib.parse.urlsplit(issued.params.connection_urls()[0])
    connection = amqp.Connection(
        host=f'{url.hostname}:{url.port}',
        userid=urllib.parse.unquote(url.username),
        password=urllib.parse.unquote(url.password),
        virtual_host=urllib.parse.unquote(url.path[1:] or '/'))
    connection.connect()
    return connection


def admin_connection(broker) -> amqp.Connection:
    """The broker administrator (for what the broker itself would do)."""
    url = urllib.parse.urlsplit(broker.amqp_url)
    connection = amqp.Connection(
        host=f'{url.hostname}:{url.port}', userid=broker.admin_user,
        password=broker.admin_password, virtual_host='/')
    connection.connect()
    return connection


def publish_raw_properties(issued, body: bytes, raw_properties: bytes):
    """Publish as the boot's user; raises when the broker refuses."""
    connection = connect(issued)
    try:
        channel = connection.channel()
        channel.confirm_select()
        channel.basic_publish_confirm(
            RawMessage(body, raw_properties), exchange='hwbus.inventory',
            routing_key=f'inventory.{issued.params.user}', mandatory=True)
    finally:
        try:
            connection.close()
        except Exception:  # noqa: S110 - the broker may have closed it
            pass


def envelope_properties(issued, body: bytes, *extra_headers: bytes,
                        message_id: bytes | None = None,
                        content_type: bytes = b'application/json') -> bytes:
    """The properties a ramdisk sends, as bytes, plus hostile headers."""
    key = keys.private_key(issued.params.key)
    signature = keys.b64encode(key.sign(body))
    a = amqpbytes
    headers = a.table(a.text_item(envelope.HEADER_BOOT, issued.params.boot_id),
                      a.text_item(envelope.HEADER_SIGNATURE, signature),
                      *extra_headers)
    return a.properties(
        a.CONTENT_TYPE | a.HEADERS | a.MESSAGE_ID | a.USER_ID,
        a.shortstr(content_type), headers,
        a.shortstr(message_id or f'hostile-{time.monotonic_ns()}'.encode()),
        a.shortstr(issued.params.user.encode()))


def signed_document(issued, inventory=None, plugin_data=None,
                    **fields) -> bytes:
    """A canonical body for the boot, fields overridable (even invalid)."""
    doc = boots.document('qemu-guest', issued.credential.mac)
    body = {'version': 1, 'boot_id': issued.params.boot_id,
            'collected_at': '2026-01-01T00:00:00Z', 'nonce': 'n',
            'inventory': inventory or doc['inventory'],
            'plugin_data': plugin_data or doc['plugin_data'], **fields}
    return envelope.canonical(body)
