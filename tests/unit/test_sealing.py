"""Sealed secrets: only the consumer's key, for this boot and purpose."""

from __future__ import annotations

import copy

import pytest

from hwbus import bootparams, envelope, keys, sealing

SECRET = b'{"password":"Zq8rT2mW9xK4pL7vN3bY","username":"hwbus"}'


@pytest.fixture
def key():
    return sealing.new_private_key()


def _blob(key, boot_id='b1', purpose='bmc', plaintext=SECRET):
    return sealing.seal(sealing.public_bytes(key), plaintext,
                        boot_id=boot_id, purpose=purpose)


def test_round_trip(key):
    blob = _blob(key)
    assert set(blob) == {'v', 'kid', 'enc', 'ct'}
    assert sealing.open([key], blob, boot_id='b1', purpose='bmc') == SECRET


def test_every_seal_differs(key):
    assert _blob(key)['ct'] != _blob(key)['ct']


def test_the_secret_is_not_in_the_blob(key):
    text = envelope.canonical(_blob(key))
    assert b'Zq8rT2mW9xK4pL7vN3bY' not in text
    assert keys.b64encode(b'Zq8rT2mW9xK4pL7vN3bY').encode() not in text


@pytest.mark.parametrize('boot_id,purpose', [('b2', 'bmc'), ('b1x', 'bmc'),
                                             ('', 'bmc')])
def test_another_boot_does_not_open(key, boot_id, purpose):
    with pytest.raises(sealing.SealError, match='another boot'):
        sealing.open([key], _blob(key), boot_id=boot_id, purpose=purpose)


def test_wrong_key(key):
    other = sealing.new_private_key()
    with pytest.raises(sealing.SealError, match='does not hold'):
        sealing.open([other], _blob(key), boot_id='b1', purpose='bmc')


def test_a_rotated_keyring_still_opens(key):
    new = sealing.new_private_key()
    assert sealing.open([new, key], _blob(key), boot_id='b1',
                        purpose='bmc') == SECRET


def test_kid_pointing_at_held_key_but_sealed_to_another(key):
    other = sealing.new_private_key()
    blob = _blob(other)
    blob['kid'] = sealing.key_id(sealing.public_bytes(key))
    with pytest.raises(sealing.SealError, match='tampered'):
        sealing.open([key], blob, boot_id='b1', purpose='bmc')


@pytest.mark.parametrize('field', ['enc', 'ct'])
def test_any_flipped_bit_is_refused(key, field):
    blob = _blob(key)
    raw = bytearray(keys.b64decode(blob[field]))
    for i in range(0, len(raw), 7):
        tampered = copy.deepcopy(blob)
        flipped = bytearray(raw)
        flipped[i] ^= 0x01
        tampered[field] = keys.b64encode(bytes(flipped))
        with pytest.raises(sealing.SealError):
            sealing.open([key], tampered, boot_id='b1', purpose='bmc')


@pytest.mark.parametrize('cut', [0, 1, 15, 16, 40])
def test_truncated(key, cut):
    blob = _blob(key)
    blob['ct'] = keys.b64encode(keys.b64decode(blob['ct'])[:cut])
    with pytest.raises(sealing.SealError):
        sealing.open([key], blob, boot_id='b1', purpose='bmc')


def test_low_order_ephemeral_key(key):
    blob = _blob(key)
    blob['enc'] = keys.b64encode(bytes(32))  # the all-zero point
    with pytest.raises(sealing.SealError):
        sealing.open([key], blob, boot_id='b1', purpose='bmc')


@pytest.mark.parametrize('blob', [
    None, [], 'x', {}, {'v': 1}, {'v': True, 'kid': '', 'enc': '', 'ct': ''},
    {'v': 2, 'kid': '', 'enc': '', 'ct': ''},
    {'v': 1, 'kid': 1, 'enc': '', 'ct': ''},
    {'v': 1, 'kid': '', 'enc': '', 'ct': '', 'x': ''},
    {'v': 1, 'kid': '', 'enc': '!!', 'ct': '!!'},
    {'v': 1, 'kid': '', 'enc': 'a' * 20000, 'ct': ''},
])
def test_malformed_blobs_are_one_error(key, blob):
    with pytest.raises(sealing.SealError):
        sealing.open([key], blob, boot_id='b1', purpose='bmc')


def test_error_messages_never_carry_the_secret(key):
    blob = _blob(key)
    for keyring, boot in (([key], 'b2'), ([sealing.new_private_key()], 'b1')):
        with pytest.raises(sealing.SealError) as info:
            sealing.open(keyring, blob, boot_id=boot, purpose='bmc')
        assert 'Zq8r' not in str(info.value)


def test_pem_round_trip(key):
    loaded = sealing.load_private_pem(sealing.private_pem(key))
    assert sealing.public_bytes(loaded) == sealing.public_bytes(key)


def test_pem_of_another_key_type():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519
    pem = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    with pytest.raises(sealing.SealError, match='not X25519'):
        sealing.load_private_pem(pem)
    with pytest.raises(sealing.SealError, match='PEM'):
        sealing.load_private_pem(b'garbage')


def test_public_key_travels_on_the_command_line(key):
    text = keys.b64encode(sealing.public_bytes(key))
    params = bootparams.BootParams(urls=['amqp://u:p@h:5672/%2F'],
                                   boot_id='b1', key='k', bmc='create',
                                   seal=text)
    again = bootparams.parse(params.render())
    assert (again.bmc, again.seal) == ('create', text)
    assert sealing.load_public(again.seal) == sealing.public_bytes(key)
    with pytest.raises(sealing.SealError):
        sealing.load_public('abc')


def _document(key, **extra):
    seed, _public = keys.new_keypair()
    sealed_msg = envelope.seal(boot_id='b1', user='u1',
                               key=keys.private_key(seed), inventory={},
                               plugin_data={}, compress=False, **extra)
    header = envelope.read_header(sealed_msg.properties)
    return envelope.decode(header, sealed_msg.body)


def test_envelope_carries_sealed_secrets(key):
    document = _document(key, sealed={'bmc': _blob(key)})
    assert sealing.open([key], document['sealed']['bmc'], boot_id='b1',
                        purpose='bmc') == SECRET


@pytest.mark.parametrize('sealed', [{'other': None}, {'bmc': {'v': 1}}])
def test_envelope_refuses_malformed_sealed(key, sealed):
    with pytest.raises(envelope.Malformed):
        _document(key, sealed=sealed)
