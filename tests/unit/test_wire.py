"""Deliveries whose bytes the AMQP client would choke on, decoded totally.

Property bytes are built as a hostile sender would put them on the wire;
the same attacks through the real broker are in
tests/functional/test_attacks.py.
"""

import bz2
import logging
import struct
import types

import amqp
import pytest

from hwbus import text
from hwbus.consumer import wire
from hwbus.envelope import Undecodable, read_header
from tests import amqpbytes

_shortstr, _table, _properties = (amqpbytes.shortstr, amqpbytes.table,
                                  amqpbytes.properties)
CONTENT_TYPE, HEADERS, MESSAGE_ID, TIMESTAMP, USER_ID = (
    amqpbytes.CONTENT_TYPE, amqpbytes.HEADERS, amqpbytes.MESSAGE_ID,
    amqpbytes.TIMESTAMP, amqpbytes.USER_ID)
USER = _shortstr(b'boot-0123456789abcdef0123')


@pytest.mark.parametrize('raw, bad', [
    # A table timestamp of 2**63: datetime cannot hold it.
    (_properties(HEADERS | USER_ID, _table(
        _shortstr(b'when') + b'T' + struct.pack('>Q', 2**63)), USER),
     'application_headers'),
    # A field type no AMQP client knows.
    (_properties(HEADERS | USER_ID, _table(_shortstr(b'k') + b'Z\x00'),
                 USER), 'application_headers'),
    # A message id that is not UTF-8.
    (_properties(MESSAGE_ID | USER_ID, _shortstr(b'\xff\xfe'), USER),
     'message_id'),
    # A short string that is not UTF-8.
    (_properties(CONTENT_TYPE | USER_ID, _shortstr(b'\xc3\x28'), USER),
     'content_type'),
    # Properties the flags announce but the frame lacks.
    (_properties(MESSAGE_ID | USER_ID), 'truncated'),
])
def test_properties_that_break_the_amqp_client_still_decode(raw, bad):
    with pytest.raises(Exception):  # noqa: B017 - whatever py-amqp raises
        amqp.serialization.decode_properties_basic(raw, 0)
    props, _ = wire.decode_properties(raw, 0)
    assert bad in props[wire.UNDECODABLE]
    if bad != 'truncated':  # the fields after a bad one still decode
        assert props['user_id'] == 'boot-0123456789abcdef0123'
    message = types.SimpleNamespace(properties=props)
    with pytest.raises(Undecodable):
        read_header(wire.message_properties(message))


def test_good_properties_decode_as_before():
    raw = _properties(CONTENT_TYPE | MESSAGE_ID | TIMESTAMP | USER_ID,
                      _shortstr(b'application/json'), _shortstr(b'm1'),
                      struct.pack('>Q', 2**63), USER)
    props, _ = wire.decode_properties(raw, 0)
    assert wire.UNDECODABLE not in props
    assert props['timestamp'] == 2**63 and props['message_id'] == 'm1'


def test_harden_installs_the_total_decoder_in_py_amqp():
    wire.harden()
    classes = amqp.serialization.PROPERTY_CLASSES
    assert classes[amqp.spec.Basic.CLASS_ID] is wire.decode_properties


def _raw_message(body, headers=None, **props):
    props['application_headers'] = headers or {}
    return types.SimpleNamespace(body=body, properties=props,
                                 delivery_tag=1, delivery_info={})


def test_an_empty_body_is_empty_bytes():
    # py-amqp leaves the body of a bodyless message at its default, ''.
    assert wire.Delivery(_raw_message('')).body == b''


def test_kombu_does_not_decompress_what_the_sender_says_is_compressed():
    bomb = bz2.compress(b'\0' * (16 * 1024 * 1024))
    delivery = wire.Delivery(_raw_message(
        bomb, {'compression': 'application/x-bz2'}))
    assert delivery.body == bomb
    assert delivery.headers == {'compression': 'application/x-bz2'}


def test_dead_letter_headers_can_always_be_encoded_again():
    from decimal import Decimal

    hostile = {'x-hwbus-boot-id': 'b1', 'x-hwbus-signature': 's',
               'x-hwbus-dead-reason': 'forged', b'\xff': 1,
               'big': Decimal(1) / Decimal(10 ** 255), 'nested': {'a': [1]},
               'line': 'a\nb', 'n': 2**62, 'flag': True}
    safe = wire.safe_headers(hostile)
    assert 'x-hwbus-dead-reason' not in safe
    assert safe['x-hwbus-boot-id'] == 'b1' and safe['line'] == 'a\\x0ab'
    message = amqp.Message(b'', application_headers=safe)
    message._serialize_properties()  # raises if any cannot be encoded


def test_dead_letter_headers_that_grow_when_escaped_stay_bounded():
    """Escaping lengthens text (a line separator: 3 bytes, 6 characters):
    every name, value and the table are bounded once escaped, and the
    envelope's headers are kept before any noise."""
    hostile = {f'h{i}': '\u2028' * 1024 for i in range(30)}
    hostile['\x01' * 100] = 'x'
    hostile['x-hwbus-signature'] = 'sig'
    safe = wire.safe_headers(hostile)
    assert safe['x-hwbus-signature'] == 'sig'
    assert all(len(k.encode()) <= wire.NAME_BYTES for k in safe)
    assert all(len(v.encode()) <= wire.VALUE_BYTES for v in safe.values())
    message = amqp.Message(b'', application_headers=safe)
    message._serialize_properties()  # raises if any cannot be encoded
    encoded = sum(2 + len(k.encode()) + 4 + len(v.encode())
                  for k, v in safe.items())
    assert encoded <= wire.HEADER_BYTES


def test_log_records_stay_one_line(caplog):
    logger = logging.getLogger('hwbus.test')
    handler = logging.StreamHandler()
    logger.addHandler(handler)
    text.install_log_filter(logger)
    try:
        record = logger.makeRecord('hwbus.test', logging.WARNING, __file__,
                                   1, 'rejected %s: %s',
                                   ('m1', 'boom\n2026 INFO applied FORGED'),
                                   None)
        for f in handler.filters:
            f.filter(record)
        assert '\n' not in record.getMessage()
        assert 'boom\\x0a2026' in record.getMessage()
    finally:
        logger.removeHandler(handler)


@pytest.mark.parametrize('value, shown', [
    ('plain', 'plain'), ('a\r\nb', 'a\\x0d\\x0ab'), ('\x1b[2J', '\\x1b[2J'),
    ('\u202eevil', '\\u202eevil'), ('\ud800', '\\ud800'),
    (b'\x00ab', "b'\\x00ab'")])
def test_escape_shows_every_unsafe_character(value, shown):
    assert text.escape(value) == shown


def test_a_copy_the_client_cannot_encode_goes_without_the_senders_headers(
        monkeypatch):
    """Not the body to the broker's dead-lettering: the reason and the
    digest alone, then the original is acked."""
    import struct
    import types

    from hwbus.consumer import deadletters

    sent = []

    class Producer:
        def __init__(self, channel):
            pass

        def publish(self, body, headers, **fields):
            sent.append((body, headers))
            if 'h' in headers:
                raise struct.error('ubyte format requires 0 <= number <= 255')

    monkeypatch.setattr(deadletters.kombu, 'Producer', Producer)
    acked = []
    message = types.SimpleNamespace(
        properties={'message_id': 'm1'}, body=b'{"a": 1}', headers={'h': 1},
        delivery_info={'routing_key': 'inventory.boot-x'},
        ack=lambda: acked.append('ack'),
        reject=lambda requeue: acked.append('reject'))
    connection = types.SimpleNamespace(default_channel=None,
                                       connection_errors=(OSError,))
    outcome = types.SimpleNamespace(reason='bad-signature', detail='d',
                                    keep_body=False, message_id='m1')
    deadletters.publish(connection, 'hwbus.dead', message, outcome)
    assert acked == ['ack']
    assert [body for body, _ in sent] == [b'', b'']
    assert 'h' not in sent[1][1]
    assert sent[1][1]['x-hwbus-dead-reason'] == 'bad-signature'
    assert sent[1][1]['x-hwbus-body-digest'].startswith('sha256:')
