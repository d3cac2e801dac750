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
"""

from __future__ import annotations

import dataclasses
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


def redact(url: str) -> str:
    """A URL fit for a log line: the password replaced."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ''
    if ':' in host:
        host = f'[{host}]'
    if parts.port:
        host = f'{host}:{parts.port}'
    return urllib.parse.urlunsplit(
        parts._replace(netloc=f'{parts.username}:***@{host}'))


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
        scheme = urllib.parse.urlsplit(url).scheme
        if scheme not in ('amqp', 'amqps'):
            raise BadBootParams(f'{PREFIX}url must be amqp:// or amqps://, '
                                f'not {scheme or "nothing"}://')
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
