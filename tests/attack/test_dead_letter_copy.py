"""The consumer's own dead-letter copy of a hostile message is always
publishable: whatever headers the sender wrote, the copy costs one
delivery, never the consumer's connection, and never hands the body to
the broker's own dead-lettering.

Found by the sixth outside attacker (docs/security.md): escaping makes
text longer (a line separator, 3 bytes, becomes 6 characters), so

* 30 headers of 1,024 line separators (a 92 KB header frame the broker
  takes) made a 185 KB copy, past the frame size: the broker closed the
  consumer's connection, the message came back, again and again up to
  the delivery limit, and legitimate boots waited minutes with it;
* a header name of 100 control characters became 400 characters, which
  no AMQP client can encode (names are short strings): the copy failed,
  and the message, body and all, went to the broker's own
  dead-lettering, so bodies filled both queues again.
"""

from __future__ import annotations

import os
import time

import pika
import pytest

from hwbus.localstack.common import wait_for
from tests import amqpbytes as a
from tests.attack import hostile, test_intake
from tests.attack.test_intake import QUEUE
from tests.functional import boots

module_stack = test_intake.module_stack
stack = test_intake.stack

# What a copy may carry of the sender's headers at most, encoded
# (hwbus.consumer.wire.HEADER_BYTES), with room for the consumer's own.
COPY_HEADER_BYTES = 16 * 1024 + 4 * 1024

HEADERS = {
    # 3 bytes each on the wire, 6 characters once escaped.
    '30 values of 1,024 line separators': [
        a.text_item(f'h{i}', '\u2028' * 1024) for i in range(30)],
    # 1 byte each, 4 characters once escaped.
    '32 values of 1,024 control characters': [
        a.text_item(f'h{i}', '\x01' * 1024) for i in range(32)],
    'a name of 100 control characters': [
        a.text_item('\x01' * 100, 'x')],
    'a name of 85 line separators': [
        a.text_item('\u2028' * 85, 'x')],
}


def _encoded(headers: dict) -> int:
    """Bytes of a header table, about as AMQP encodes it."""
    size = 0
    for key, value in headers.items():
        size += 1 + len(str(key).encode()) + 1
        size += 4 + len(value.encode()) if isinstance(value, str) else 8
    return size


@pytest.mark.parametrize('name', sorted(HEADERS))
def test_headers_that_grow_when_escaped_cost_one_delivery(stack, figure,
                                                          name):
    issued = stack.issue()
    body = hostile.signed_document(issued, nonce='tampered')
    props = hostile.envelope_properties(
        issued, hostile.signed_document(issued),  # signs another body
        *HEADERS[name])
    log_before = len(stack.log())
    started = time.monotonic()
    hostile.publish_raw_properties(issued, body, props)
    next_good = stack.good_boot(started)
    [(dead_props, dead_body)] = stack.dead(1)
    headers = dead_props.headers
    assert headers['x-hwbus-dead-reason'] == 'bad-signature'
    assert not headers.get('x-delivery-count'), 'decided at once'
    assert 'x-death' not in headers, "the broker's dead-lettering, not ours"
    assert dead_body == b'' and headers['x-hwbus-body-size'] == len(body)
    assert _encoded(headers) <= COPY_HEADER_BYTES
    log = stack.log()[log_before:]
    assert 'connection lost' not in log, log[-3000:]
    assert 'dead-letter queue refused' not in log, log[-3000:]
    assert boots.depth(stack.broker, QUEUE) == 0
    assert stack.store.get(issued.credential.boot_id).state == 'revoked'
    figure(attack=f'AMQP headers: {name}', attempts=1, accepted=0,
           refused='bad-signature, one delivery, copy bounded',
           next_good_s=next_good)



def test_messages_set_to_expire_leave_no_bodies_and_end_their_sender(
        stack, figure):
    """A per-message ``expiration``: what expires in the main queue (a
    backlog deeper than the prefetch: here, the consumer is down) is
    dead-lettered by the broker itself, before the consumer sees it. In
    the dead-letter queue those kept their bodies and their credential
    lived on, so one credential could fill it, and the main queue behind
    it, for its whole TTL (sixth attacker). The consumer now sorts the
    broker's dead letters: size and digest only, and the sender's
    credential ends."""
    issued = stack.issue()
    body = os.urandom(100_000)
    stack.consumer.stop()
    try:
        connection = pika.BlockingConnection(pika.URLParameters(
            issued.params.connection_urls()[0]))
        channel = connection.channel()
        channel.confirm_delivery()
        for _ in range(20):
            channel.basic_publish(
                'hwbus.inventory', f'inventory.{issued.params.user}', body,
                pika.BasicProperties(expiration='1',
                                     user_id=issued.params.user))
        connection.close()
        time.sleep(1)
    finally:
        stack.consumer.start()
    started = time.monotonic()
    next_good = stack.good_boot(started)
    dead = stack.dead(20)
    assert {p.headers['x-hwbus-dead-reason'] for p, _ in dead} == \
        {'message-expired'}
    kept = sum(len(b) for _, b in dead)
    assert kept == 0, f'{len(dead)} dead letters kept {kept} bytes'
    assert all(p.headers['x-hwbus-body-size'] == len(body) for p, _ in dead)
    wait_for(lambda: stack.store.get(issued.credential.boot_id).state ==
             'revoked', 30, 'the sender ended')
    assert issued.credential.username not in stack.broker.users()
    for queue in (QUEUE, 'hwbus.inventory.dead.broker'):
        assert boots.depth(stack.broker, queue) == 0, queue
    figure(attack='AMQP: 20 messages of 100 KB set to expire', attempts=20,
           accepted=0, refused='message-expired, no bodies kept, sender '
           'ended', next_good_s=next_good)
