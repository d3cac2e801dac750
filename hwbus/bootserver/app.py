"""hwbus-bootserver's WSGI application (Flask).

``GET /boot.ipxe?mac=${net0/mac}`` issues a credential bound to that MAC
and answers an iPXE script that boots the hwbus ramdisk with the boot's
``hwbus.*`` parameters. Refusals (a malformed MAC, a rate limit, too many
outstanding credentials, the broker unreachable) answer an iPXE script
too, which prints why on the machine's console and exits, so firmware
falls through to its next boot device instead of hanging.

Only GET has effects: HEAD and every other method on /boot.ipxe are
answered 405 (``Allow: GET``) and issue nothing. Client-supplied text
(the raw MAC, the method) reaches logs and scripts only through
``printable()`` or ``repr()``.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Callable
from typing import Any

import flask

from hwbus.bootserver.ratelimit import Limiter
from hwbus.credentials import BOOTSERVER, BadMac, Credentials, normalize_mac
from hwbus.errors import HwbusError
from hwbus.text import escape

LOG = logging.getLogger(__name__)
IMAGES = ('vmlinuz', 'initramfs.zst')


def printable(text: str, limit: int = 200) -> str:
    """Text safe for one log line or one iPXE ``echo``: control and
    non-ASCII characters escaped, cut at ``limit`` characters."""
    return escape(text, limit).encode('ascii', 'backslashreplace').decode()


def _script(lines: list[str], status: int = 200) -> flask.Response:
    return flask.Response('#!ipxe\n' + '\n'.join(lines) + '\n',
                          status=status, mimetype='text/plain')


def _refuse(why: str, status: int, client: str) -> flask.Response:
    """An iPXE script that prints why and exits, so the firmware moves on
    to its next boot device; one log line naming the client."""
    safe = printable(why)
    LOG.warning('boot request from %s refused (%d): %s', client, status,
                safe)
    return _script([f'echo hwbus: boot refused: {safe}', 'sleep 10',
                    'exit 1'], status)


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


def missing_images(group: Any) -> list[str]:
    """The ramdisk files this server should serve and cannot."""
    wanted = [name for name, url in zip(IMAGES, (group.kernel_url,
                                                 group.initrd_url),
                                        strict=True) if not url]
    return [name for name in wanted
            if not os.path.isfile(os.path.join(group.image_dir, name))]


def create_app(credentials: Credentials, settings: Any,
               limiter: Limiter | None = None,
               refusal_for: Callable[[str], str | None] | None = None,
               bmc_mode_for: Callable[[str], str | None] | None = None,
               ) -> flask.Flask:
    """The application; ``settings`` holds the [bootserver] and [ramdisk]
    values (``settings.bootserver.port``...: hwbus.cmd.wiring.plain).

    ``refusal_for(mac)`` says why a MAC must not get a credential (the
    binding rule asks Ironic: hwbus.binding.Binding.refusal_for), None
    when it may. ``bmc_mode_for(mac)`` is the boot's hwbus.bmc= (None:
    leave the BMC alone; hwbus.binding.Binding.bmc_mode_for).
    """
    group = settings.bootserver
    limiter = limiter or Limiter.from_settings(group)
    proxies = _networks(group.trusted_proxies)
    app = flask.Flask('hwbus.bootserver')

    def base_url() -> str:
        return (group.public_url or flask.request.host_url).rstrip('/')

    @app.get('/boot.ipxe', provide_automatic_options=False)
    def boot() -> flask.Response:
        client = client_address(proxies)
        if flask.request.method != 'GET':
            # Werkzeug routes HEAD to GET handlers: only GET has effects.
            return _only_get(client)
        raw = flask.request.args.get('mac')
        if raw is None:
            # iPXE does not expand settings in a DHCP boot file name: ask
            # it to come back with its MAC.
            return _script([f'chain {base_url()}/boot.ipxe'
                            '?mac=${net0/mac}'])
        try:
            mac = normalize_mac(raw)
        except BadMac as exc:  # its text holds repr() of the raw value
            return _refuse(str(exc), 400, client)
        why = limiter.check(client, mac)
        if why:
            return _refuse(why, 429, client)
        why = refusal_for(mac) if refusal_for else None
        if why:
            return _refuse(why, 403, client)
        missing = missing_images(group)
        if missing:  # a credential the machine could not use
            return _refuse(f'{", ".join(missing)} missing in [bootserver] '
                           f'image_dir {group.image_dir}', 503, client)
        try:
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
            return _refuse(f'{exc.reason}: {exc}', status, client)
        kernel = group.kernel_url or f'{base_url()}/images/vmlinuz'
        initrd = group.initrd_url or f'{base_url()}/images/initramfs.zst'
        LOG.info('issued boot %s for %s to %s (expires %s)',
                 issued.credential.boot_id, mac, client,
                 issued.credential.expires_at)
        return _script([
            f'echo hwbus: discovery boot {issued.credential.boot_id} for '
            f'{mac}',
            f'kernel {kernel} initrd=initramfs.zst {group.kernel_args} '
            f'{issued.cmdline} BOOTIF=01-${{net0/mac:hexhyp}}',
            f'initrd {initrd}',
            'boot'])

    def _only_get(client: str) -> flask.Response:
        response = _refuse(f'{printable(flask.request.method, 20)} '
                           f'/boot.ipxe: only GET issues a credential', 405,
                           client)
        response.headers['Allow'] = 'GET'
        return response

    @app.errorhandler(405)
    def not_allowed(exc: Exception) -> Any:
        if flask.request.path == '/boot.ipxe':
            return _only_get(client_address(proxies))
        return exc

    @app.get('/images/<name>')
    def image(name: str) -> flask.Response:
        if name not in IMAGES:
            flask.abort(404)
        path = os.path.join(group.image_dir, name)
        if not os.path.exists(path):
            flask.abort(404)
        return flask.send_file(path, mimetype='application/octet-stream',
                               conditional=True)

    @app.get('/healthz')
    def health() -> flask.Response:
        return flask.Response('ok\n', mimetype='text/plain')

    return app
