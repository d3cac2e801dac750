"""The two languages the boot server answers in: iPXE and GRUB scripts.

Both boot paths issue a credential the same way (hwbus.bootserver.app);
only the script that carries it differs. iPXE chain-loads ``/boot.ipxe``
(BIOS PXE, UEFI with iPXE); a signed GRUB (UEFI HTTP boot, Secure Boot,
arm64) sources ``/boot.grub``. Each dialect says how to print a line,
give up so the firmware tries its next boot device, and boot a kernel.

Untrusted text (a refusal's reason quotes the client's raw MAC) reaches a
script only after ``printable()`` made it one line of ASCII; GRUB lines
quote every word on top, so nothing in it is read as GRUB syntax.
"""

from __future__ import annotations

import dataclasses
import posixpath
import urllib.parse

from hwbus.errors import PermanentError
from hwbus.text import escape

# Seconds a refused machine shows why before its firmware moves on.
REFUSAL_PAUSE = 10


def printable(text: str, limit: int = 200) -> str:
    """Text safe for one log line or one script ``echo``: control and
    non-ASCII characters escaped, cut at ``limit`` characters."""
    return escape(text, limit).encode('ascii', 'backslashreplace').decode()


@dataclasses.dataclass(frozen=True)
class Boot:
    """What a machine is to boot: the image URLs and the kernel's words
    (the site's kernel_args, then the credential's hwbus.* parameters)."""

    boot_id: str
    mac: str
    kernel: str
    initrd: str
    args: list[str]


class UnreachableUrl(PermanentError):
    """A URL the script's loader cannot fetch (GRUB: anything but http):
    asking again does not help, the configuration must change."""

    reason = 'unreachable-url'


class Ipxe:
    """iPXE: ``#!ipxe`` scripts, image URLs as they are."""

    path = '/boot.ipxe'
    mimetype = 'text/plain'

    @staticmethod
    def url(url: str) -> str:
        return url

    @staticmethod
    def refusal(why: str) -> str:
        return _lines('#!ipxe', f'echo hwbus: boot refused: {printable(why)}',
                      f'sleep {REFUSAL_PAUSE}', 'exit 1')

    @staticmethod
    def boot(boot: Boot) -> str:
        # An EFI stub kernel (iPXE on UEFI) finds its initrd by the name
        # in initrd=, which iPXE gives an image from its URL's last part.
        name = posixpath.basename(urllib.parse.urlsplit(boot.initrd).path)
        return _lines(
            '#!ipxe',
            f'echo hwbus: discovery boot {boot.boot_id} for {boot.mac}',
            f'kernel {boot.kernel} initrd={name} {" ".join(boot.args)} '
            'BOOTIF=01-${net0/mac:hexhyp}',
            f'initrd {boot.initrd}',
            'boot')

    @staticmethod
    def come_back(base_url: str) -> str:
        """iPXE does not expand settings in a DHCP boot file name: ask it
        to come back with its MAC (and its architecture)."""
        return _lines('#!ipxe', f'chain {base_url}/boot.ipxe'
                      '?mac=${net0/mac}&arch=${buildarch}')


class Grub:
    """GRUB 2: every word single-quoted, URLs as ``(http,host:port)/path``."""

    path = '/boot.grub'
    mimetype = 'text/plain'

    @staticmethod
    def url(url: str) -> str:
        """GRUB's name for ``url``; GRUB's network loader speaks plain
        HTTP only (and TFTP), so an https URL is refused here, before a
        credential is issued for a machine that could not use it."""
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != 'http' or not parts.netloc:
            raise UnreachableUrl(f'GRUB fetches over plain http only, not '
                                 f'{printable(url, 100)}')
        path = parts.path or '/'
        if parts.query:
            path += '?' + parts.query
        return f'(http,{parts.netloc}){path}'

    @staticmethod
    def refusal(why: str) -> str:
        # exit returns to the firmware, which tries its next boot option.
        return _lines(quote_line('echo', 'hwbus: boot refused: ' +
                                 printable(why)),
                      f'sleep {REFUSAL_PAUSE}', 'exit 1')

    @staticmethod
    def boot(boot: Boot) -> str:
        bootif = 'BOOTIF=01-' + boot.mac.replace(':', '-')
        words = [quote(w) for w in (boot.kernel, *boot.args, bootif)]
        return _lines(
            quote_line('echo', f'hwbus: discovery boot {boot.boot_id} for '
                               f'{boot.mac}'),
            'linux ' + ' '.join(words),
            quote_line('initrd', boot.initrd),
            'boot')


def quote(word: str) -> str:
    """One GRUB word, literally: inside single quotes GRUB expands
    nothing (no $, no globs, no ;), and a ' is closed, escaped, reopened.
    Line breaks never get here: callers pass printable() text or the
    issuer's own parameters."""
    if '\n' in word or '\r' in word:
        raise ValueError('a GRUB word cannot span lines')
    return "'" + word.replace("'", "'\\''") + "'"


def quote_line(command: str, *words: str) -> str:
    return ' '.join([command, *(quote(w) for w in words)])


def grub_cfg(base: str) -> str:
    """The static grub.cfg GRUB's embedded config sources from its prefix
    (``/grub``): it loads the per-boot script with GRUB's own MAC and CPU.

    ``base`` is the boot server in GRUB's notation, ``(http,host:port)``;
    the variables are in double quotes, so GRUB expands them, and the
    ``?`` and ``&`` stay literal."""
    return _lines(
        '# hwbus: the per-boot script carries this boot\'s credential',
        f'source "{base}/boot.grub?mac=${{net_default_mac}}'
        '&arch=${grub_cpu}"',
        # source returns when the per-boot script failed to load.
        'echo \'hwbus: the boot server did not answer /boot.grub\'',
        f'sleep {REFUSAL_PAUSE}', 'exit 1')


def _lines(*lines: str) -> str:
    return '\n'.join(lines) + '\n'
