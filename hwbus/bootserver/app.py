"""hwbus-bootserver's WSGI application (Flask).

``GET /boot.ipxe?mac=${net0/mac}`` (iPXE) and ``GET /boot.grub?mac=
$net_default_mac`` (a signed GRUB after UEFI HTTP boot) issue a
credential bound to that MAC and answer a script, in the loader's own
language, that boots the hwbus ramdisk with the boot's ``hwbus.*``
parameters. Both go through one path (``_issue``): the same limits,
refusals and log lines. Refusals (a malformed MAC or architecture, a
rate limit, too many outstanding credentials, the broker unreachable)
answer a script too, which prints why on the machine's console and
exits, so firmware falls through to its next boot device instead of
hanging. The script says what the machine needs and no more: a MAC of a
node in use is told it is not to be inspected now, while the node's
UUID and provision state, which anyone could ask about by MAC, go to
the log only.

``arch=`` (iPXE's ``${buildarch}``, GRUB's ``$grub_cpu``) picks the
image: ``image_dir`` holds the x86-64 kernel and initramfs, and one
subdirectory per other architecture (``arm64/``). The firmware's own
loaders (shim, GRUB) are served from their configured paths, and, for
UEFI HTTP boot, as a disk image with GRUB's config
(``/hwbus-x64.img``, ``/hwbus-aa64.img``: hwbus.bootserver.bootimage).

Only GET has effects: HEAD and every other method on a boot script are
answered 405 (``Allow: GET``) and issue nothing. Client-supplied text
(the raw MAC, the method) reaches logs and scripts only through
``printable()`` or ``repr()``.
"""

from __future__ import annotations

import atexit
import hashlib
import ipaddress
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from typing import Any

import flask

from hwbus.bootserver import bootimage, scripts
from hwbus.bootserver.ratelimit import Limiter
from hwbus.bootserver.scripts import Boot, Grub, GrubTftp, Ipxe, printable
from hwbus.bootserver.tftp import TRANSPORT_KEY
from hwbus.credentials import BOOTSERVER, BadMac, Credentials, normalize_mac
from hwbus.errors import HwbusError

__all__ = ['create_app', 'is_download', 'missing_images', 'printable']

LOG = logging.getLogger(__name__)
IMAGES = ('vmlinuz', 'initramfs.zst')
# Architectures a boot may ask for (arch=, as iPXE's ${buildarch} and
# GRUB's $grub_cpu name them) and their subdirectory of image_dir.
ARCHES = {'x86_64': '', 'arm64': 'arm64'}
DEFAULT_ARCH = 'x86_64'  # a boot that names none (older iPXE)
# Other names for one of ARCHES: BIOS iPXE (undionly.kpxe, QEMU's ROM)
# is a 32-bit build and says i386 on every x86-64 machine.
ALIASES = {'i386': 'x86_64'}
# Firmware loaders served at the top level, by the [bootserver] options
# that may hold each one's path, the first set one winning. shim loads
# grub<arch>.efi from the directory it came from (over TFTP: the signed
# GRUB); grubnetaa64.efi is what arm64 firmware's HTTP boot is pointed
# at, and grubhttp<arch>.efi the HTTP-boot GRUB by its own name, so that
# one boot server can serve both paths (bootimage.HTTP_GRUB).
LOADERS = {'shimx64.efi': ('shim_x64',), 'grubx64.efi': ('grub_x64',),
           'grubhttpx64.efi': bootimage.HTTP_GRUB['grub_x64'],
           'shimaa64.efi': ('shim_aa64',), 'grubaa64.efi': ('grub_aa64',),
           'grubnetaa64.efi': bootimage.HTTP_GRUB['grub_aa64'],
           'grubhttpaa64.efi': bootimage.HTTP_GRUB['grub_aa64']}
DIALECTS = (Ipxe, Grub)


# What a machine whose MAC belongs to a node in use is told. The
# binding rule's reason names the node's UUID and provision state, which
# anyone asking for the MAC would learn: that goes to the log only.
NOT_NOW = 'this machine is not to be inspected now'


class _Refused(Exception):
    """A boot request that gets no credential: why (what the client is
    told), the HTTP status, and the operator's detail for the log when
    it says more than the client may learn."""

    def __init__(self, why: str, status: int,
                 detail: str | None = None) -> None:
        super().__init__(why)
        self.why, self.status, self.detail = why, status, detail


def is_download(path: str) -> bool:
    """Requests served from the download thread pool (hwbus.bootserver.
    server): images and loaders, which hold a thread while sent."""
    name = path.lstrip('/')
    return (path.startswith('/images/') or name in LOADERS
            or name in bootimage.LAYOUTS)


def _networks(addresses: list[str]) -> list[Any]:
    return [ipaddress.ip_network(a.strip(), strict=False)
            for a in addresses if a.strip()]


def client_address(proxies: list[Any]) -> str:
    """The address the per-client limits count: the peer, or, when the
    peer is a trusted proxy, the address it appended to X-Forwarded-For
    (the last one; earlier ones are the client's own word)."""
    peer = flask.request.remote_addr or '-'
    if not proxies:
        return peer
    try:
        if not any(ipaddress.ip_address(peer) in net for net in proxies):
            return peer
        forwarded = flask.request.headers.get('X-Forwarded-For', '')
        return str(ipaddress.ip_address(forwarded.split(',')[-1].strip()))
    except ValueError:
        return peer


def image_path(group: Any, arch: str, name: str) -> str:
    return os.path.join(group.image_dir, ARCHES[arch], name)


def missing_images(group: Any, arch: str = DEFAULT_ARCH) -> list[str]:
    """The ramdisk files for ``arch`` this server should serve and
    cannot. kernel_url and initrd_url stand for the x86-64 images only."""
    urls = ((group.kernel_url, group.initrd_url) if arch == DEFAULT_ARCH
            else (None, None))
    wanted = [name for name, url in zip(IMAGES, urls, strict=True)
              if not url]
    return [name for name in wanted
            if not os.path.isfile(image_path(group, arch, name))]


def _arch(raw: str | None) -> str:
    if raw is None or raw == '':  # iPXE without ${buildarch}: as before
        return DEFAULT_ARCH
    raw = ALIASES.get(raw, raw)
    if raw not in ARCHES:
        raise _Refused(f'architecture {printable(raw, 40)!r} is not one of '
                      f'{", ".join(ARCHES)}', 400)
    return raw


def create_app(credentials: Credentials, settings: Any,
               limiter: Limiter | None = None,
               refusal_for: Callable[[str], str | None] | None = None,
               bmc_mode_for: Callable[[str], str | None] | None = None,
               file_header: str | None = None) -> flask.Flask:
    """The application; ``settings`` holds the [bootserver] and [ramdisk]
    values (``settings.bootserver.port``...: hwbus.cmd.wiring.plain).

    ``refusal_for(mac)`` says why a MAC must not get a credential (the
    binding rule asks Ironic: hwbus.binding.Binding.refusal_for), None
    when it may. ``bmc_mode_for(mac)`` is the boot's hwbus.bmc= (None:
    leave the BMC alone; hwbus.binding.Binding.bmc_mode_for).

    With ``file_header`` a download is answered with its headers and the
    file's path in that header instead of its bytes, for a server that
    streams the file itself (hwbus.bootserver.server.Front does, so a
    slow download holds no thread); without, the app sends the bytes.
    """
    group = settings.bootserver
    limiter = limiter or Limiter.from_settings(group)
    proxies = _networks(group.trusted_proxies)
    app = flask.Flask('hwbus.bootserver')

    def base_url() -> str:
        if group.public_url:
            return group.public_url.rstrip('/')
        host = flask.request.host
        port = flask.request.environ.get('SERVER_PORT')
        if ':' not in host.rsplit(']', 1)[-1] and port not in (
                None, '80', '443'):
            # GRUB sends its Host header without the port it connected to
            host = f'{host}:{port}'
        return f'{flask.request.scheme}://{host}'

    def image_base() -> str:
        """The boot server as the boot image's GRUB reaches it: public_url,
        or the local address and port the request came in on (never the
        Host header: each new Host would build and store another image)."""
        if group.public_url:
            return group.public_url.rstrip('/')
        environ = flask.request.environ
        host = environ.get('SERVER_NAME', '')
        if ':' in host and not host.startswith('['):
            host = f'[{host}]'
        return f'http://{host}:{environ.get("SERVER_PORT")}'

    def images(arch: str, dialect: Any) -> tuple[str, str]:
        sub = f'{ARCHES[arch]}/' if ARCHES[arch] else ''
        if dialect is GrubTftp:  # paths on this server (kernel_url: no)
            if arch == DEFAULT_ARCH and group.kernel_url:
                return group.kernel_url, group.initrd_url or ''
            return f'/images/{sub}vmlinuz', f'/images/{sub}initramfs.zst'
        if arch == DEFAULT_ARCH:
            return (group.kernel_url or f'{base_url()}/images/vmlinuz',
                    group.initrd_url or
                    f'{base_url()}/images/initramfs.zst')
        return (f'{base_url()}/images/{sub}vmlinuz',
                f'{base_url()}/images/{sub}initramfs.zst')

    def kernel_args(arch: str) -> list[str]:
        args = group.kernel_args
        if arch == 'arm64' and group.arm64_kernel_args:
            args = group.arm64_kernel_args
        return args.split()

    def _issue(dialect: Any, client: str) -> Boot:
        """The one way a boot script gets a credential, whichever loader
        asks: validate, limit, ask the binding rule, check the images,
        issue. Raises _Refused with the reason and the status."""
        raw = flask.request.args.get('mac', '')
        try:
            mac = normalize_mac(raw)
        except BadMac as exc:  # its text holds repr() of the raw value
            raise _Refused(str(exc), 400) from None
        arch = _arch(flask.request.args.get('arch'))
        why = limiter.check(client, mac)
        if why:
            raise _Refused(why, 429)
        why = refusal_for(mac) if refusal_for else None
        if why:
            raise _Refused(f'{mac}: {NOT_NOW}', 403, detail=why)
        missing = missing_images(group, arch)
        if missing:  # a credential the machine could not use
            raise _Refused(f'{", ".join(missing)} missing in [bootserver] '
                          f'image_dir {group.image_dir} for {arch}', 503)
        try:
            kernel, initrd = (dialect.url(u) for u in images(arch, dialect))
        except scripts.UnreachableUrl as exc:
            raise _Refused(str(exc), 503) from None
        try:
            with mac_locks[hash(mac) % len(mac_locks)]:
                # one issue per MAC at a time: a request that replaces
                # this address's earlier credential must not delete a
                # broker user another request for the MAC is creating
                issued = credentials.issue(mac=mac, ttl=group.credential_ttl,
                                       after=settings.ramdisk.after,
                                       issued_by=BOOTSERVER,
                                       lldp=settings.ramdisk.lldp_timeout,
                                       per_mac=group.per_mac_outstanding,
                                       client=client,
                                       bmc=bmc_mode_for(mac) if bmc_mode_for
                                       else None)
        except HwbusError as exc:
            status = {'too-many-for-mac': 429, 'broker-unavailable': 503,
                      'store-unavailable': 503}.get(exc.reason, 500)
            if status != 429:  # the detail is the operator's, not the client's
                LOG.error('issuing for %s from %s failed: %s: %s', mac,
                          client, exc.reason, exc)
                raise _Refused(f'{exc.reason}: see the boot server\'s log',
                               status) from None
            raise _Refused(f'{exc.reason}: {exc}', status) from None
        LOG.info('issued boot %s for %s (%s, %s) to %s (expires %s)',
                 issued.credential.boot_id, mac, arch, dialect.path[1:],
                 client, issued.credential.expires_at)
        return Boot(boot_id=issued.credential.boot_id, mac=mac,
                    kernel=kernel, initrd=initrd,
                    args=[*kernel_args(arch), *issued.cmdline.split()])

    def _answer(dialect: Any, text: str, status: int = 200
                ) -> flask.Response:
        return flask.Response(text, status=status,
                              mimetype=dialect.mimetype)

    def _refuse(dialect: Any, why: str, status: int, client: str,
                detail: str | None = None) -> flask.Response:
        """A script that prints why and exits, so the firmware moves on
        to its next boot device; one log line naming the client, with
        ``detail`` (the operator's) in place of ``why`` when given."""
        LOG.warning('boot request from %s refused (%d): %s', client, status,
                    printable(detail or why))
        return _answer(dialect, dialect.refusal(why), status)

    def _boot_script(dialect: Any) -> flask.Response:
        if (dialect is Grub and
                flask.request.environ.get(TRANSPORT_KEY) == 'tftp'):
            dialect = GrubTftp  # set by the TFTP front, never by a header
        elif flask.request.environ.get(TRANSPORT_KEY) == 'tftp':
            flask.abort(404)  # iPXE fetches its script over HTTP
        client = client_address(proxies)
        if flask.request.method != 'GET':
            # Werkzeug routes HEAD to GET handlers: only GET has effects.
            return _only_get(dialect, client)
        if dialect is Ipxe and flask.request.args.get('mac') is None:
            return _answer(dialect, Ipxe.come_back(base_url()))
        try:
            boot = _issue(dialect, client)
        except _Refused as exc:
            refused = exc
        else:
            return _answer(dialect, dialect.boot(boot))
        # logged outside the except block: oslo.log would append the
        # exception's text, which quotes the client's raw value
        return _refuse(dialect, refused.why, refused.status, client,
                       refused.detail)

    @app.get('/boot.ipxe', provide_automatic_options=False)
    def boot_ipxe() -> flask.Response:
        return _boot_script(Ipxe)

    @app.get('/boot.grub', provide_automatic_options=False)
    def boot_grub() -> flask.Response:
        return _boot_script(Grub)

    def _only_get(dialect: Any, client: str) -> flask.Response:
        response = _refuse(dialect, f'{printable(flask.request.method, 20)} '
                           f'{dialect.path}: only GET issues a credential',
                           405, client)
        response.headers['Allow'] = 'GET'
        return response

    @app.get('/grub/grub.cfg', provide_automatic_options=False)
    def tftp_grub_cfg() -> flask.Response:
        return _answer(Grub, scripts.tftp_grub_cfg())

    @app.errorhandler(405)
    def not_allowed(exc: Exception) -> Any:
        for dialect in DIALECTS:
            if flask.request.path == dialect.path:
                return _only_get(dialect, client_address(proxies))
        return exc

    def _send(path: str, mimetype: str) -> flask.Response:
        response = flask.send_file(path, mimetype=mimetype,
                                   conditional=True)
        if file_header:  # the server streams it: hold no open file here
            response.close()
            response.response = []
            response.headers[file_header] = path
        return response

    mac_locks = [threading.Lock() for _ in range(64)]

    # Built boot images are files, streamed like the others; one per
    # (architecture, base URL) in a directory of this process's own.
    built: dict[tuple[str, str], str] = {}
    building = threading.Lock()  # requests are answered in a thread pool
    scratch = tempfile.mkdtemp(prefix='hwbus-bootimages-')
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)

    @app.get('/<name>.img', provide_automatic_options=False)
    def boot_image(name: str) -> flask.Response:
        layout = bootimage.LAYOUTS.get(f'{name}.img')
        client = client_address(proxies)
        if layout is None:
            flask.abort(404)
        try:
            base = Grub.url(image_base()).rstrip('/')
            key = (layout.arch, base)
            with building:
                path = built.get(key)
                if path is None:
                    if len(built) >= 4:  # Host headers differ: bound disk
                        os.unlink(built.pop(next(iter(built))))
                    path = _write(key, bootimage.build(group, layout, base))
                    built[key] = path
        except (scripts.UnreachableUrl, bootimage.MissingLoader) as exc:
            LOG.warning('no boot image for %s: %s', client, exc)
            flask.abort(404)
        LOG.info('serving %s.img to %s', name, client)
        return _send(path, bootimage.MIMETYPE)

    def _write(key: tuple[str, str], image: bytes) -> str:
        """The image as a file of ``scratch``; a download still reading
        an evicted one keeps its open file."""
        digest = hashlib.sha256(repr(key).encode()).hexdigest()[:16]
        path = os.path.join(scratch, f'{key[0]}-{digest}.img')
        with open(path + '.part', 'wb') as f:
            f.write(image)
        os.replace(path + '.part', path)
        return path

    @app.get('/<name>', provide_automatic_options=False)
    def loader(name: str) -> flask.Response:
        path = bootimage.first_set(group, LOADERS.get(name, ()))
        if not path or not os.path.isfile(path):
            flask.abort(404)
        LOG.info('serving %s to %s', name, client_address(proxies))
        return _send(path, 'application/efi')

    def _send_image(arch: str, name: str) -> flask.Response:
        path = image_path(group, arch, name)
        if name not in IMAGES or not os.path.exists(path):
            flask.abort(404)
        return _send(path, 'application/octet-stream')

    @app.get('/images/<name>')
    def image(name: str) -> flask.Response:
        return _send_image(DEFAULT_ARCH, name)

    @app.get('/images/<sub>/<name>')
    def arch_image(sub: str, name: str) -> flask.Response:
        arch = {d: a for a, d in ARCHES.items() if d}.get(sub)
        if arch is None:
            flask.abort(404)
        return _send_image(arch, name)

    @app.get('/healthz')
    def health() -> flask.Response:
        return flask.Response('ok\n', mimetype='text/plain')

    return app
