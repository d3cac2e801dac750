"""The ``hwbus.*`` kernel parameters: written by issuers, read by the ramdisk.

Both sides use this one module, so the format cannot drift. Values are
chosen to need no quoting (base64url, [a-z0-9-] names) and stay short:
the x86 kernel command line holds 2048 bytes.

    hwbus.url=amqp://USER:PASS@HOST:PORT/VHOST[,amqp://HOST2:PORT/VHOST]
    hwbus.boot=ID hwbus.key=SEED [hwbus.ca=DER-B64URL|/path.pem]
    [hwbus.after=poweroff|reboot|agent|none] [hwbus.deadline=SECONDS]
    [hwbus.exchange=NAME] [hwbus.lldp=SECONDS]
    [hwbus.bmc=create|keep hwbus.seal=X25519-PUBLIC-B64URL]

Further URLs may leave out the user and password; they take the first's.
An IPv6 broker is written as a bracketed literal, as in any URL
(RFC 3986): ``amqps://U:P@[2001:db8::1]:5671/%2F``.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import shlex
import urllib.parse

from hwbus.errors import PermanentError

PREFIX = 'hwbus.'
AFTER_ACTIONS = ('poweroff', 'reboot', 'agent', 'none')
# create: create the hwbus BMC user, or give the existing one a new
# password, and send it sealed; keep: only report the existing user.
BMC_MODES = ('create', 'keep')
MAX_CMDLINE = 2048


class BadBootParams(PermanentError):
    reason = 'bad-boot-params'


@dataclasses.dataclass
class BootParams:
    urls: list[str]
    boot_id: str
    key: str
    ca: str | None = None
    after: str = 'poweroff'
    deadline: float = 900.0
    exchange: str = 'hwbus.inventory'
    lldp: float = 0.0
    bmc: str | None = None
    seal: str | None = None

    @property
    def user(self) -> str:
        return urllib.parse.urlsplit(self.urls[0]).username or ''

    def render(self) -> str:
        """The parameters as one kernel command line fragment."""
        words = [f'{PREFIX}url={",".join(self.urls)}',
                 f'{PREFIX}boot={self.boot_id}', f'{PREFIX}key={self.key}']
        if self.ca:
            words.append(f'{PREFIX}ca={self.ca}')
        words.append(f'{PREFIX}after={self.after}')
        words.append(f'{PREFIX}deadline={self.deadline:g}')
        if self.exchange != 'hwbus.inventory':
            words.append(f'{PREFIX}exchange={self.exchange}')
        if self.lldp:
            words.append(f'{PREFIX}lldp={self.lldp:g}')
        if self.bmc:
            words.append(f'{PREFIX}bmc={self.bmc}')
        if self.seal:
            words.append(f'{PREFIX}seal={self.seal}')
        return ' '.join(words)

    def connection_urls(self) -> list[str]:
        """Every URL with the user and password filled in."""
        first = urllib.parse.urlsplit(self.urls[0])
        result = []
        for url in self.urls:
            parts = urllib.parse.urlsplit(url)
            if parts.username is None and first.username is not None:
                netloc = f'{first.username}:{first.password}@{parts.netloc}'
                url = urllib.parse.urlunsplit(parts._replace(netloc=netloc))
            result.append(url)
        return result


_UNBALANCED = ('a broker URL has unbalanced brackets or a bad port (an IPv6 '
               'address goes in brackets: amqp://[2001:db8::1]:5672/)')


def check_url(url: str) -> urllib.parse.SplitResult:
    """``url`` split, or why it cannot be a broker URL.

    urllib accepts much that a connection cannot use: an IPv6 address
    without brackets reads as a host and a bad port, a bracketed name
    or a zone id (``%25eth0``, which names an interface of the machine
    that boots, unknown to whoever issues the URL) passes through to
    getaddrinfo. Each is refused here, on both sides, so an issuer never
    hands a ramdisk a URL it cannot connect to.

    :raises BadBootParams: the message never repeats the URL (it may
        hold a password).
    """
    scheme, _, rest = url.partition('://')
    if scheme not in ('amqp', 'amqps'):
        raise BadBootParams(f'{PREFIX}url must be amqp:// or amqps://, not '
                            f'{scheme if scheme.isalpha() else "nothing"}://')
    # The host as written, checked before urlsplit: what urlsplit accepts
    # in brackets differs between Python releases.
    end = min((i for i in map(rest.find, '/?#') if i >= 0),
              default=len(rest))
    host = rest[:end].rpartition('@')[2]
    if host.startswith('['):
        literal, close, after = host[1:].partition(']')
        if not close:
            raise BadBootParams(_UNBALANCED)
        if '%' in literal:
            raise BadBootParams('a broker URL names an IPv6 zone: use a '
                                'global or unique-local address')
        try:
            ipaddress.IPv6Address(literal)
        except ValueError:
            raise BadBootParams('a broker URL has brackets around something '
                                'that is not an IPv6 address') from None
        if after and not (after[0] == ':' and after[1:].isdigit()):
            raise BadBootParams(_UNBALANCED)
    elif '[' in host or ']' in host:
        raise BadBootParams(_UNBALANCED)
    elif any(c in host for c in '%\\') or not host.isprintable():
        raise BadBootParams('a broker URL has a malformed host')
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        raise BadBootParams(_UNBALANCED) from None
    if not parts.hostname:
        raise BadBootParams('a broker URL has no host')
    if port == 0:
        raise BadBootParams('a broker URL has port 0')
    return parts


def server_name(url: str) -> str:
    """The name TLS verifies the broker's certificate against: the host,
    an IPv6 address without its brackets. Python matches an IP address
    against the certificate's IP subjectAltNames and sends no SNI for it.
    """
    return check_url(url).hostname or ''


def redact(url: str) -> str:
    """A URL fit for a log line: the password replaced.

    Works on the text, not through urlsplit, so that a malformed URL
    (unbalanced brackets, a bad port) is still masked and the host is
    shown as written, IPv6 brackets included.
    """
    scheme, sep, rest = url.partition('://')
    if not sep:
        return url
    end = min((i for i in map(rest.find, '/?#') if i >= 0),
              default=len(rest))
    userinfo, at, host = rest[:end].rpartition('@')
    if not at and '@' in rest:
        # An unescaped / ? or # in the password: mask up to the last @.
        return f'{scheme}://***@{rest.rpartition("@")[2]}'
    if not at or ':' not in userinfo:
        return url
    user = userinfo.partition(':')[0]
    return f'{scheme}://{user}:***@{host}{rest[end:]}'


def parse(cmdline: str) -> BootParams:
    """Read the hwbus.* words of a kernel command line.

    :raises BadBootParams: a required word is missing or a value is bad;
        the message never repeats a value (it may be a secret).
    """
    try:
        words = shlex.split(cmdline)
    except ValueError:
        words = cmdline.split()
    values: dict[str, str] = {}
    for word in words:
        if word.startswith(PREFIX) and '=' in word:
            name, _, value = word[len(PREFIX):].partition('=')
            values[name] = value
    missing = [n for n in ('url', 'boot', 'key') if not values.get(n)]
    if missing:
        raise BadBootParams('the kernel command line lacks ' + ', '.join(
            PREFIX + n for n in missing))
    urls = [u for u in values['url'].split(',') if u]
    for url in urls:
        check_url(url)
    if urllib.parse.urlsplit(urls[0]).password is None:
        raise BadBootParams(f'the first {PREFIX}url has no user and password')
    after = values.get('after', 'poweroff')
    if after not in AFTER_ACTIONS:
        raise BadBootParams(f'{PREFIX}after must be one of '
                            f'{", ".join(AFTER_ACTIONS)}')
    try:
        deadline = float(values.get('deadline', 900))
        lldp = float(values.get('lldp', 0))
    except ValueError:
        raise BadBootParams(f'{PREFIX}deadline and {PREFIX}lldp are '
                            f'seconds') from None
    # Checked by the ramdisk's BMC step, which records what is wrong with
    # them and still sends the inventory.
    bmc, seal = values.get('bmc') or None, values.get('seal') or None
    return BootParams(urls=urls, boot_id=values['boot'], key=values['key'],
                      ca=values.get('ca') or None, after=after,
                      deadline=deadline,
                      exchange=values.get('exchange', 'hwbus.inventory'),
                      lldp=lldp, bmc=bmc, seal=seal)
