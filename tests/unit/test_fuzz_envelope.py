"""100,000 generated messages against envelope.open(): none crashes,
none is accepted without a valid signature from the key.

Seeded, so a failure reproduces; HWBUS_FUZZ_COUNT changes the count.
Generators: bit flips, truncations, splices and byte insertions of valid
signed messages (compressed and not), random bytes, and random property
changes, each opened with the right public key.
"""

import os
import random
import zlib

from hwbus import envelope, keys
from hwbus.errors import PermanentError

COUNT = int(os.environ.get('HWBUS_FUZZ_COUNT', '100000'))


def _valid(key, compress, rng):
    inventory = {'cpu': {'count': rng.randint(1, 256)},
                 'disks': [{'name': f'/dev/sd{c}'} for c in 'abc'],
                 'note': 'é' * rng.randint(0, 50)}
    return envelope.seal(boot_id='b0', user='boot-0123456789abcdef0123',
                         key=key, inventory=inventory,
                         plugin_data={'errors': []}, compress=compress)


def _mutate(body: bytes, rng: random.Random) -> bytes:
    data = bytearray(body)
    kind = rng.randrange(6)
    if kind == 0 and data:
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
    elif kind == 1:
        data = data[:rng.randrange(len(data) + 1)]
    elif kind == 2:
        i = rng.randrange(len(data) + 1)
        data[i:i] = rng.randbytes(rng.randint(1, 16))
    elif kind == 3 and len(data) > 2:
        i, j = sorted(rng.sample(range(len(data)), 2))
        data = data[:i] + data[j:]
    elif kind == 4:
        data = bytearray(rng.randbytes(rng.randint(0, 300)))
    else:
        packer = zlib.compressobj(rng.randint(0, 9), zlib.DEFLATED, 31)
        data = bytearray(packer.compress(bytes(data)) + packer.flush())
    return bytes(data)


def _props(sealed, rng):
    props = dict(sealed.properties)
    props['headers'] = dict(props['headers'])
    if rng.random() < 0.2:
        key = rng.choice(['content_type', 'content_encoding', 'user_id',
                          'message_id', 'headers'])
        props[key] = rng.choice([None, '', 'gzip', 'identity', 42, b'\xff',
                                 {'x': 1}, 'boot-ffffffffffffffffffff'])
    if rng.random() < 0.1 and isinstance(props['headers'], dict):
        props['headers'][envelope.HEADER_BOOT] = rng.choice(
            ['b0', 'b1', '', None])
    return props


def test_no_generated_message_crashes_hangs_or_is_accepted():
    rng = random.Random(20261125)
    seed, public = keys.new_keypair()
    key = keys.private_key(seed)
    samples = [_valid(key, compress, rng) for compress in (True, False)
               for _ in range(5)]
    accepted = rejected = 0
    for _ in range(COUNT):
        sealed = rng.choice(samples)
        body = _mutate(sealed.body, rng)
        props = _props(sealed, rng)
        try:
            opened = envelope.open(body, props, lambda h: public)
        except PermanentError:
            rejected += 1
        else:
            # Only an unchanged body can pass: the signature covers it.
            assert body == sealed.body, 'a changed body was accepted'
            assert opened.header.boot_id == 'b0'
            accepted += 1
    assert accepted + rejected == COUNT
    assert rejected > COUNT * 0.9
