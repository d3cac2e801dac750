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
import re
import urllib.parse

from hwbus.errors import PermanentError
from hwbus.text import escape

# Seconds a refused machine shows why before its firmware moves on.
REFUSAL_PAUSE = 10
# A host[:port] as GRUB's (http,...) device takes it; the request's Host
# header can be anything, and lands in a GRUB script.
_HOST = re.compile(r'([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?')
# What a base URL may hold to go into double quotes in a GRUB script.
_BASE = re.compile(r'\(http,[A-Za-z0-9.:\[\]-]+\)[A-Za-z0-9._~/%-]*')


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
        if not _HOST.fullmatch(parts.netloc):  # the Host header's word
            raise UnreachableUrl(f'{printable(parts.netloc, 100)!r} is no '
                                 f'host GRUB can name')
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


class GrubTftp(Grub):
    """GRUB that reached the boot server over TFTP (hwbus.bootserver.
    tftp): the images are this server's files, named by their paths on
    GRUB's root device, ``(tftp,<server>)``."""

    @staticmethod
    def url(url: str) -> str:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme or parts.netloc or not parts.path.startswith(
                '/images/'):
            raise UnreachableUrl(f'GRUB over TFTP fetches this server\'s '
                                 f'images only, not {printable(url, 100)} '
                                 f'(unset kernel_url and initrd_url)')
        return parts.path


def tftp_grub_cfg() -> str:
    """/grub/grub.cfg over TFTP: what Debian's signed GRUB reads first
    after a UEFI PXE boot (its built-in prefix is /grub, its root the
    TFTP server). The PXE card is up and is GRUB's default; its MAC asks
    for the per-boot script, by path on the same server."""
    return _lines(
        '# hwbus: load this boot\'s script (it carries the credential)',
        'source "/boot.grub?mac=${net_default_mac}&arch=${grub_cpu}"',
        'echo \'hwbus: the boot server did not answer /boot.grub\'',
        f'sleep {REFUSAL_PAUSE}', 'exit 1')


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


def grub_cfg(base: str, cards: int = 8) -> str:
    """The grub.cfg of the boot image (hwbus.bootserver.bootimage).

    GRUB started from the RAM disk has no network yet: ``net_bootp``
    brings up every card. The card the firmware booted from is the one
    whose DHCP answer named a boot file; its MAC is the one the per-boot
    script is asked for (the first card's when no answer named one).
    GRUB scripts have no indirection, so the cards are spelled out.

    ``base`` is the boot server in GRUB's notation, ``(http,host:port)``;
    the variables are in double quotes, so GRUB expands them, and the
    ``?`` and ``&`` stay literal; nothing else may be in ``base``."""
    if not _BASE.fullmatch(base):
        raise UnreachableUrl(f'{printable(base, 100)!r} cannot go into a '
                             f'GRUB script')
    lines = ['# hwbus: find the boot NIC, load this boot\'s script (it '
             'carries the credential)', 'net_bootp',
             'set hwbus_mac="${net_efinet0_dhcp_mac}"']
    for n in range(cards):
        lines.append(f'{"if" if n == 0 else "elif"} '
                     f'[ -n "${{net_efinet{n}_dhcp_boot_file}}" ]; then '
                     f'set hwbus_mac="${{net_efinet{n}_dhcp_mac}}"')
    lines.append('fi')
    return _lines(
        *lines,
        f'source "{base}/boot.grub?mac=${{hwbus_mac}}&arch=${{grub_cpu}}"',
        # source returns when the per-boot script failed to load.
        'echo \'hwbus: the boot server did not answer /boot.grub\'',
        f'sleep {REFUSAL_PAUSE}', 'exit 1')


def _lines(*lines: str) -> str:
    return '\n'.join(lines) + '\n'
