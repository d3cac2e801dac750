"""hwbus-bootserver's WSGI application (Flask).

``GET /boot.ipxe?mac=${net0/mac}`` issues a credential bound to that MAC
and answers an iPXE script that boots the hwbus ramdisk with the boot's
``hwbus.*`` parameters. Refusals (a malformed MAC, a rate limit, too many
outstanding credentials, the broker unreachable) answer an iPXE script
too, which prints why on the machine's console and exits, so firmware
falls through to its next boot device instead of hanging.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import flask

from hwbus.bootserver.ratelimit import Limiter
from hwbus.credentials import BadMac, Credentials, normalize_mac
from hwbus.errors import HwbusError

LOG = logging.getLogger(__name__)
IMAGES = ('vmlinuz', 'initramfs.zst')


def _script(lines: list[str], status: int = 200) -> flask.Response:
    return flask.Response('#!ipxe\n' + '\n'.join(lines) + '\n',
                          status=status, mimetype='text/plain')


def _refuse(why: str, status: int) -> flask.Response:
    LOG.warning('boot request refused: %s', why)
    safe = why.replace('\n', ' ')[:200]
    return _script([f'echo hwbus: boot refused: {safe}', 'sleep 10',
                    'exit 1'], status)


def create_app(credentials: Credentials, conf: Any,
               limiter: Limiter | None = None) -> flask.Flask:
    """The application; ``conf`` is the [bootserver] and [credentials]
    option groups' parent (oslo CONF or any object with the same shape)."""
    group = conf.bootserver
    limiter = limiter or Limiter(group.per_mac_interval, group.global_rate,
                                 group.global_burst)
    app = flask.Flask('hwbus.bootserver')

    @app.get('/boot.ipxe')
    def boot() -> flask.Response:
        raw = flask.request.args.get('mac')
        if raw is None:
            # iPXE does not expand settings in a DHCP boot file name: ask
            # it to come back with its MAC.
            return _script([f'chain {flask.request.base_url}'
                            '?mac=${net0/mac}'])
        try:
            mac = normalize_mac(raw)
        except BadMac as exc:
            return _refuse(str(exc), 400)
        why = limiter.check(mac)
        if why:
            return _refuse(why, 429)
        try:
            issued = credentials.issue(mac=mac, ttl=conf.credentials.ttl,
                                       after=conf.ramdisk.after,
                                       issued_by='bootserver',
                                       lldp=conf.ramdisk.lldp_timeout)
        except HwbusError as exc:
            status = 503 if exc.reason in ('too-many-outstanding',
                                           'broker-unavailable',
                                           'store-unavailable') else 500
            return _refuse(f'{exc.reason}: {exc}', status)
        base = (group.public_url or flask.request.host_url).rstrip('/')
        kernel = group.kernel_url or f'{base}/images/vmlinuz'
        initrd = group.initrd_url or f'{base}/images/initramfs.zst'
        LOG.info('issued boot %s for %s (expires %s)',
                 issued.credential.boot_id, mac,
                 issued.credential.expires_at)
        return _script([
            f'echo hwbus: discovery boot {issued.credential.boot_id} for '
            f'{mac}',
            f'kernel {kernel} initrd=initramfs.zst {group.kernel_args} '
            f'{issued.cmdline} BOOTIF=01-${{net0/mac:hexhyp}}',
            f'initrd {initrd}',
            'boot'])

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
