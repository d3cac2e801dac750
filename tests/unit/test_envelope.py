"""seal() and open(): every way a message can be wrong has its reason."""

import json
import zlib

import hypothesis
import pytest
from hypothesis import strategies as st

from hwbus import envelope, keys
from hwbus.errors import PermanentError

USER = 'boot-0123456789abcdef0123'
BOOT = 'b8f2c1d0e4a94c1f9d6a0b7e3c5f2a11'


@pytest.fixture(scope='module')
def keypair():
    seed, public = keys.new_keypair()
    return keys.private_key(seed), public


def _seal(keypair, **kwargs):
    args = dict(boot_id=BOOT, user=USER, key=keypair[0],
                inventory={'cpu': {'count': 2}}, plugin_data={'errors': []})
    args.update(kwargs)
    return envelope.seal(**args)


def _open(keypair, sealed, body=None, properties=None, **kwargs):
    return envelope.open(sealed.body if body is None else body,
                         sealed.properties if properties is None
                         else properties,
                         lambda header: keypair[1], **kwargs)


@pytest.mark.parametrize('compress', [True, False])
def test_round_trip(keypair, compress):
    sealed = _seal(keypair, compress=compress)
    opened = _open(keypair, sealed)
    assert opened.inventory == {'cpu': {'count': 2}}
    assert opened.header.user_id == USER
    assert opened.header.boot_id == BOOT
    assert opened.header.message_id == sealed.message_id
    assert opened.error is None
    assert sealed.routing_key == f'inventory.{USER}'
    assert sealed.properties['delivery_mode'] == 2
    assert sealed.properties['content_encoding'] == (
        'gzip' if compress else 'identity')


def test_error_report_round_trips(keypair):
    sealed = _seal(keypair, error={'stage': 'collect', 'message': 'boom'})
    assert _open(keypair, sealed).error == {'stage': 'collect',
                                            'message': 'boom'}


def test_body_is_canonical_json(keypair):
    sealed = _seal(keypair, compress=False)
    document = json.loads(sealed.body)
    assert envelope.canonical(document) == sealed.body
    assert set(document) == {'version', 'boot_id', 'collected_at', 'nonce',
                             'inventory', 'plugin_data'}


def test_each_seal_is_a_new_message(keypair):
    one, two = _seal(keypair), _seal(keypair)
    assert one.message_id != two.message_id
    assert json.loads(zlib.decompress(one.body, 31))['nonce'] != \
        json.loads(zlib.decompress(two.body, 31))['nonce']


def _expect(reason, call):
    with pytest.raises(PermanentError) as info:
        call()
    assert info.value.reason == reason, str(info.value)
    return info.value


def test_forged_signature(keypair):
    sealed = _seal(keypair)
    other_seed, _ = keys.new_keypair()
    forged = _seal((keys.private_key(other_seed), None))
    _expect('bad-signature', lambda: _open(keypair, forged))
    # A valid signature moved to another body.
    props = dict(forged.properties)
    props['headers'] = dict(sealed.properties['headers'])
    _expect('bad-signature', lambda: _open(keypair, forged, properties=props))


def test_one_flipped_bit_anywhere_is_refused(keypair):
    sealed = _seal(keypair)
    for index in range(0, len(sealed.body), 7):
        body = bytearray(sealed.body)
        body[index] ^= 0x01
        _expect('bad-signature', lambda b=bytes(body): _open(
            keypair, sealed, body=b))


def test_missing_and_malformed_properties(keypair):
    sealed = _seal(keypair)
    cases = {
        'bad-properties': [
            {'content_type': 'text/plain'},
            {'user_id': None},
            {'user_id': 'Robert"); DROP'},
            {'message_id': ''},
            {'headers': {envelope.HEADER_SIGNATURE: 'x'}},
            {'headers': 'nope'},
        ],
        'bad-encoding': [{'content_encoding': 'br'}],
        'bad-signature': [
            {'headers': {envelope.HEADER_BOOT: BOOT}},
            {'headers': {envelope.HEADER_BOOT: BOOT,
                         envelope.HEADER_SIGNATURE: '!!!'}},
            {'headers': {envelope.HEADER_BOOT: BOOT,
                         envelope.HEADER_SIGNATURE: 'AAAA'}},
        ],
    }
    for reason, changes in cases.items():
        for change in changes:
            props = {**sealed.properties, **change}
            _expect(reason, lambda p=props: _open(keypair, sealed,
                                                  properties=p))


def test_header_boot_must_match_body(keypair):
    sealed = _seal(keypair)
    other = _seal(keypair, boot_id='another-boot')
    props = dict(sealed.properties)
    props['headers'] = {**other.properties['headers']}
    props['headers'][envelope.HEADER_SIGNATURE] = \
        sealed.properties['headers'][envelope.HEADER_SIGNATURE]
    _expect('boot-mismatch', lambda: _open(keypair, sealed, properties=props))


def _signed(keypair, raw, encoding='identity'):
    """Sign arbitrary bytes, as a credential holder gone rogue could."""
    props = {'content_type': envelope.CONTENT_TYPE,
             'content_encoding': encoding, 'message_id': 'm1',
             'user_id': USER,
             'headers': {envelope.HEADER_BOOT: BOOT,
                         envelope.HEADER_SIGNATURE: keys.b64encode(
                             keypair[0].sign(raw))}}
    return raw, props


def _open_raw(keypair, raw, encoding='identity', **kwargs):
    body, props = _signed(keypair, raw, encoding)
    return envelope.open(body, props, lambda h: keypair[1], **kwargs)


def _doc(**changes):
    document = {'version': 1, 'boot_id': BOOT, 'collected_at': 'now',
                'nonce': 'n', 'inventory': {}, 'plugin_data': {}}
    document.update(changes)
    return document


def test_signed_but_malformed_bodies(keypair):
    cases = [
        ('malformed', b'\xff\xfe not utf-8'),
        ('malformed', b'{"version": 1'),
        ('malformed', b'[1,2,3]'),
        ('malformed', b'{"a":NaN}'),
        ('malformed', b'{"a":1,"a":2}'),
        ('malformed', b'[' * 100000 + b']' * 100000),
        ('not-canonical', json.dumps(_doc(), indent=1).encode()),
        ('malformed', envelope.canonical({'version': 1})),
        ('bad-version', envelope.canonical(_doc(version=2))),
        ('boot-mismatch', envelope.canonical(_doc(boot_id='other'))),
        ('malformed', envelope.canonical(_doc(inventory=[]))),
        ('malformed', envelope.canonical(_doc(nonce=5))),
        ('malformed', envelope.canonical(_doc(error='x'))),
    ]
    for reason, raw in cases:
        _expect(reason, lambda r=raw: _open_raw(keypair, r))


def test_compression_bomb_is_stopped_at_the_limit(keypair):
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb = packer.compress(b'{"a":"' + b'0' * (64 * 1024 * 1024)) + \
        packer.flush()
    assert len(bomb) < 100 * 1024
    _expect('oversize', lambda: _open_raw(keypair, bomb, 'gzip'))


def test_truncated_or_garbage_gzip(keypair):
    packer = zlib.compressobj(6, zlib.DEFLATED, 31)
    good = packer.compress(envelope.canonical(_doc())) + packer.flush()
    _expect('bad-encoding', lambda: _open_raw(keypair, good[:-6], 'gzip'))
    _expect('bad-encoding', lambda: _open_raw(keypair, good + b'xx', 'gzip'))
    _expect('bad-encoding', lambda: _open_raw(keypair, b'plain', 'gzip'))


def test_oversize_on_both_sides(keypair):
    big = {'blob': 'x' * 2000}
    with pytest.raises(envelope.Oversize):
        _seal(keypair, plugin_data=big, max_size=1000)
    sealed = _seal(keypair, plugin_data=big, compress=False)
    _expect('oversize', lambda: _open(keypair, sealed, max_size=1000))
    compressed = _seal(keypair, plugin_data=big)
    assert len(compressed.body) < 1000
    _expect('oversize', lambda: _open(keypair, compressed, max_size=1000))


def test_key_lookup_errors_pass_through(keypair):
    class Unknown(PermanentError):
        reason = 'unknown-credential'

    def lookup(header):
        raise Unknown(f'no credential for {header.user_id}')

    sealed = _seal(keypair)
    with pytest.raises(Unknown):
        envelope.open(sealed.body, sealed.properties, lookup)


def test_no_secret_in_any_error_text(keypair):
    seed, public = keys.new_keypair()
    key = keys.private_key(seed)
    sealed = envelope.seal(boot_id=BOOT, user=USER, key=key, inventory={},
                           plugin_data={})
    signature = sealed.properties['headers'][envelope.HEADER_SIGNATURE]
    for body in (sealed.body[:-1] + b'x', b'{}'):
        try:
            envelope.open(body, sealed.properties, lambda h: public)
        except PermanentError as exc:
            assert seed not in str(exc) and signature not in str(exc)


@hypothesis.settings(max_examples=300, deadline=None)
@hypothesis.given(body=st.binary(max_size=2048),
                  props=st.dictionaries(
                      st.sampled_from(['content_type', 'content_encoding',
                                       'user_id', 'message_id', 'headers']),
                      st.one_of(st.none(), st.text(max_size=40),
                                st.binary(max_size=40), st.integers(),
                                st.dictionaries(st.text(max_size=20),
                                                st.text(max_size=90)))))
def test_fuzz_never_crashes_and_never_accepts(keypair, body, props):
    try:
        envelope.open(body, props, lambda h: keypair[1])
    except PermanentError:
        return
    pytest.fail('an unsigned random message was accepted')


@pytest.mark.parametrize('version', [True, 1.0, '1'])
def test_the_version_is_exactly_the_integer_one(version):
    from hwbus import envelope as env

    header = env.Header('boot-0123456789abcdef0123', 'b1', 'm', 'identity',
                        b'\0' * 64)
    body = env.canonical({'version': version, 'boot_id': 'b1',
                          'collected_at': 'x', 'nonce': 'n',
                          'inventory': {}, 'plugin_data': {}})
    with pytest.raises(env.BadVersion):
        env.decode(header, body)


def test_a_document_nesting_deeper_than_the_limit_is_malformed():
    from hwbus import envelope as env

    header = env.Header('boot-0123456789abcdef0123', 'b1', 'm', 'identity',
                        b'\0' * 64)
    deep: dict = {}
    node = deep
    for _ in range(env.MAX_DEPTH):
        node['x'] = {}
        node = node['x']
    body = env.canonical({'version': 1, 'boot_id': 'b1',
                          'collected_at': 'x', 'nonce': 'n',
                          'inventory': {}, 'plugin_data': {'deep': deep}})
    with pytest.raises(env.Malformed, match='nests deeper'):
        env.decode(header, body)


def _header():
    from hwbus import envelope as env

    return env.Header('boot-0123456789abcdef0123', 'b1', 'm', 'identity',
                      b'\0' * 64)


@pytest.mark.parametrize('body', [
    # sorted and compact, but a key twice: the C parser keeps the last
    # value, and the re-encoding cannot equal the body
    b'{"boot_id":"b1","collected_at":"x","inventory":{},"nonce":"n",'
    b'"nonce":"n","plugin_data":{},"version":1}',
    # a duplicate inside, together with a value without a canonical form
    b'{"a":1e400,"a":1}',
    # a duplicate in an object inside a top-level array
    b'[{"a":1,"a":1}]',
])
def test_duplicate_keys_are_malformed_whatever_else_is_wrong(body):
    from hwbus import envelope as env

    with pytest.raises(env.Malformed, match='duplicate keys'):
        env.decode(_header(), body)


def test_a_body_that_is_only_not_canonical_says_so():
    from hwbus import envelope as env

    document = {'version': 1, 'boot_id': 'b1', 'collected_at': 'x',
                'nonce': 'n', 'inventory': {}, 'plugin_data': {}}
    with pytest.raises(env.NotCanonical, match='not canonical'):
        env.decode(_header(), json.dumps(document).encode())
    with pytest.raises(env.NotCanonical, match='no canonical form'):
        env.decode(_header(), env.canonical(document)[:-1] + b',"x":1e400}')


def test_a_document_exactly_at_the_depth_limit_is_accepted():
    from hwbus import envelope as env

    deep: dict = {}
    node = deep
    # The document is level 1 and plugin_data level 2.
    for _ in range(env.MAX_DEPTH - 3):
        node['x'] = {}
        node = node['x']
    document = {'version': 1, 'boot_id': 'b1', 'collected_at': 'x',
                'nonce': 'n', 'inventory': {}, 'plugin_data': {'deep': deep}}
    assert env.decode(_header(), env.canonical(document)) == document
