"""Bracketed IPv6 broker URLs: the kernel command line, the issuer, pika
and TLS, and the forms a ramdisk must refuse without echoing a secret."""

import ssl

import pika
import pytest

from hwbus import bootparams, keys
from hwbus.credentials import Credentials
from hwbus.ramdisk import publisher

SEED, _ = keys.new_keypair()
PASSWORD = 'S3cr3t-password-value_0123456789abcdefghijk'
USER = 'boot-0123456789abcdef0123'


def cmdline(urls: str) -> str:
    return (f'BOOT_IMAGE=/vmlinuz hwbus.url={urls} hwbus.boot=0123abcd '
            f'hwbus.key={SEED} quiet')


def test_a_bracketed_ipv6_url_parses_renders_and_fills_in_the_user():
    params = bootparams.parse(cmdline(
        f'amqps://{USER}:{PASSWORD}@[2001:db8::1]:5671/%2F,'
        f'amqp://[fd00::5]:5672/%2F,amqp://10.0.0.2:5672/%2F'))
    assert params.user == USER
    assert bootparams.parse(params.render()) == params
    first, second, third = params.connection_urls()
    assert first == f'amqps://{USER}:{PASSWORD}@[2001:db8::1]:5671/%2F'
    assert second == f'amqp://{USER}:{PASSWORD}@[fd00::5]:5672/%2F'
    assert third.endswith('@10.0.0.2:5672/%2F')


def test_pika_connects_to_the_address_without_brackets():
    url = f'amqp://{USER}:{PASSWORD}@[fec0::2]:5673/%2F'
    params = publisher.connection_parameters(url, None, 'x')
    assert (params.host, params.port) == ('fec0::2', 5673)
    assert params.virtual_host == '/'
    assert params.credentials.password == PASSWORD
    assert params.ssl_options is None


def test_tls_verifies_an_ip_literal_as_an_ip_address():
    url = f'amqps://{USER}:{PASSWORD}@[2001:DB8::1]:5671/%2F'
    params = publisher.connection_parameters(url, None, 'x')
    assert params.ssl_options.server_hostname == '2001:db8::1'
    assert params.ssl_options.context.check_hostname
    assert params.ssl_options.context.verify_mode == ssl.CERT_REQUIRED
    assert bootparams.server_name('amqps://h.example:5671/') == 'h.example'


@pytest.mark.parametrize('url, shown', [
    (f'amqps://{USER}:{PASSWORD}@[2001:db8::1]:5671/%2F',
     f'amqps://{USER}:***@[2001:db8::1]:5671/%2F'),
    (f'amqp://{USER}:{PASSWORD}@[fec0::2]/%2F',
     f'amqp://{USER}:***@[fec0::2]/%2F'),
    (f'amqp://{USER}:{PASSWORD}@10.0.0.1:5672/%2F',
     f'amqp://{USER}:***@10.0.0.1:5672/%2F'),
    # Malformed URLs are masked too: log lines never need them parsed.
    (f'amqp://{USER}:{PASSWORD}@[2001:db8::1:5671/%2F',
     f'amqp://{USER}:***@[2001:db8::1:5671/%2F'),
    (f'amqp://{USER}:{PASSWORD}@2001:db8::1:5671/',
     f'amqp://{USER}:***@2001:db8::1:5671/'),
    (f'amqp://{USER}:{PASSWORD}/x@h/', 'amqp://***@h/'),
    ('amqp://[2001:db8::1]:5671/', 'amqp://[2001:db8::1]:5671/'),
])
def test_redaction_masks_the_password_and_keeps_the_host(url, shown):
    assert bootparams.redact(url) == shown
    assert PASSWORD not in bootparams.redact(url)


HOSTILE = [
    # Unbalanced brackets.
    ('amqp://U:P@[2001:db8::1:5671/%2F', 'unbalanced brackets'),
    ('amqp://U:P@2001:db8::1]:5671/%2F', 'unbalanced brackets'),
    # An IPv6 address without brackets: its last group reads as a port.
    ('amqp://U:P@2001:db8::1:5671/%2F', 'bad port'),
    ('amqp://U:P@2001:db8::1/%2F', 'bad port'),
    # Zone ids name an interface of the booting machine.
    ('amqp://U:P@[fe80::1%25eth0]:5671/%2F', 'zone'),
    ('amqp://U:P@[fe80::1%eth0]:5671/%2F', 'zone'),
    # Brackets around something that is not an IPv6 address.
    ('amqp://U:P@[broker.example]:5671/%2F', 'not an IPv6 address'),
    ('amqp://U:P@[10.0.0.1]:5671/%2F', 'not an IPv6 address'),
    ('amqp://U:P@[v1.fe80::1]:5671/%2F', 'not an IPv6 address'),
    ('amqp://U:P@[]:5671/%2F', 'not an IPv6 address'),
    ('amqp://U:P@[2001:db8::1]x:5671/%2F', 'bad port'),
    ('amqp://U:P@[2001:db8::1]:99999/%2F', 'bad port'),
    ('amqp://U:P@[2001:db8::1]:0/%2F', 'port 0'),
    ('amqp://U:P@:5671/%2F', 'no host'),
    ('amqp://U:P@br%00ker:5671/%2F', 'malformed host'),
    ('http://U:P@[2001:db8::1]/', 'amqp:// or amqps://'),
]


@pytest.mark.parametrize('url, words', HOSTILE)
def test_hostile_urls_are_refused_without_echoing_them(url, words):
    url = url.replace('U:P', f'{USER}:{PASSWORD}')
    with pytest.raises(bootparams.BadBootParams) as info:
        bootparams.parse(cmdline(url))
    assert words in str(info.value)
    assert PASSWORD not in str(info.value) and USER not in str(info.value)


@pytest.mark.parametrize('url, words', HOSTILE)
def test_hostile_urls_are_refused_as_a_further_url_too(url, words):
    url = url.replace('U:P@', '')
    first = f'amqp://{USER}:{PASSWORD}@[2001:db8::1]:5672/%2F'
    with pytest.raises(bootparams.BadBootParams) as info:
        bootparams.parse(cmdline(f'{first},{url}'))
    assert words in str(info.value)


def test_the_issuer_builds_bracketed_urls_and_refuses_bad_ones():
    credentials = Credentials(None, None, None, [
        'amqps://[2001:db8::1]:5671/%2F', 'amqps://[2001:db8::2]:5671/%2F'])
    urls = credentials._urls(USER, PASSWORD)
    assert urls == [f'amqps://{USER}:{PASSWORD}@[2001:db8::1]:5671/%2F',
                    'amqps://[2001:db8::2]:5671/%2F']
    params = bootparams.parse(cmdline(','.join(urls)))
    assert [pika.URLParameters(u).host for u in params.connection_urls()] \
        == ['2001:db8::1', '2001:db8::2']
    for url, words in HOSTILE:
        with pytest.raises(ValueError) as info:
            Credentials(None, None, None, [url.replace('U:P@', '')])
        assert '[broker] public_urls' in str(info.value)
        assert words in str(info.value)
