"""hwbus-bootserver: the iPXE endpoint that issues per-boot credentials.

    hwbus-bootserver --config-file /etc/hwbus/hwbus.conf

Serves with Hypercorn on an asyncio event loop (hwbus.bootserver.server:
slow clients hold no thread, request heads have a size and a time limit)
on [bootserver] host:port, over HTTPS when a certificate is configured.
``hwbus.bootserver.app.create_app`` is a WSGI application for any other
server; docs/bootserver.md has the nginx setup for production.
"""

from __future__ import annotations

import resource
import sys
import types
from collections.abc import Callable
from typing import Any

from oslo_log import log

from hwbus import bmc
from hwbus.bootserver import server
from hwbus.bootserver.app import create_app, missing_images
from hwbus.cmd import guarded, setup_service, wiring

LOG = log.getLogger(__name__)


def _raise_file_limit() -> int:
    """Every connection is a file descriptor: allow as many as the hard
    limit does (1,024 is a common soft limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = 1048576 if hard == resource.RLIM_INFINITY else hard
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            return target
        except (ValueError, OSError):
            pass
    return soft


def _bmc_policy(group: Any, rule: Any) -> Callable[[str], str | None]:
    """hwbus.bmc= per MAC: [bmc] account and rotate, asking Ironic
    whether the MAC's node holds credentials when [bootserver]
    check_ironic allows it."""
    account, rotate = group.account, group.rotate

    def mode_for(mac: str) -> str | None:
        if rule is None:
            return bmc.issue_mode(account, rotate, None)
        return rule.bmc_mode_for(mac, account, rotate)

    return mode_for


@guarded
def main(argv: list[str] | None = None) -> int:
    conf = setup_service(argv)
    group = wiring.plain(conf.bootserver)
    if bool(group.cert_file) != bool(group.key_file):
        LOG.error('[bootserver] cert_file and key_file go together')
        return 2
    credentials = wiring.credentials()
    if conf.bmc.account != 'off' and credentials.seal_key is None:
        LOG.error('[bmc] account = %s needs the consumer\'s sealing key: set '
                  '[sealing] public_key or private_key_file ("hwbus-manage '
                  'seal-key create")', conf.bmc.account)
        return 2
    rule = None
    if group.check_ironic:
        from hwbus import binding

        rule = binding.Binding(wiring.ironic_connection(), ())
    else:
        LOG.warning('[bootserver] check_ironic is off: credentials are '
                    'issued for MACs of nodes in use too (the consumer '
                    'still refuses to write those nodes)')
    missing = missing_images(group)
    if missing:
        LOG.warning('%s missing in [bootserver] image_dir %s: boot requests '
                    'are refused until they are there (build them with '
                    'tools/build-ramdisk, or set kernel_url and initrd_url)',
                    ', '.join(missing), group.image_dir)
    settings = types.SimpleNamespace(bootserver=group,
                                     ramdisk=wiring.plain(conf.ramdisk))
    app = create_app(credentials, settings,
                     refusal_for=rule.refusal_for if rule else None,
                     bmc_mode_for=_bmc_policy(conf.bmc, rule),
                     file_header=server.FILE_HEADER.decode())
    files = _raise_file_limit()
    LOG.info('hwbus-bootserver listening on %s://%s:%d (request heads: '
             '%d bytes within %.0f s; %d + %d image threads; %d open '
             'files)', 'https' if group.cert_file else 'http', group.host,
             group.port, group.max_header_size, group.header_timeout,
             group.threads, group.image_threads, files)
    server.serve(app, group)  # returns after SIGTERM or SIGINT
    return 0


if __name__ == '__main__':
    sys.exit(main())
