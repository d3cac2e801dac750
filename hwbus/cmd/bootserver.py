"""hwbus-bootserver: the iPXE endpoint that issues per-boot credentials.

    hwbus-bootserver --config-file /etc/hwbus/hwbus.conf

Serves with cheroot (CherryPy's production WSGI server, the one Ironic's
own API uses) on [bootserver] host:port, over HTTPS when a certificate is
configured; ``hwbus.bootserver.wsgi:application`` suits any other WSGI
server.
"""

from __future__ import annotations

import signal
import sys
from typing import Any

from oslo_log import log

from hwbus.bootserver.app import create_app
from hwbus.cmd import setup_service
from hwbus.cmd.manage import make_credentials

LOG = log.getLogger(__name__)


def make_server(app: Any, conf: Any) -> Any:
    """The WSGI server for [bootserver], TLS-wrapped when configured."""
    from cheroot import wsgi

    group = conf.bootserver
    server = wsgi.Server((group.host, group.port), app,
                         numthreads=group.threads,
                         server_name='hwbus-bootserver')
    if group.cert_file:
        from cheroot.ssl.builtin import BuiltinSSLAdapter

        server.ssl_adapter = BuiltinSSLAdapter(group.cert_file,
                                               group.key_file)
    return server


def main(argv: list[str] | None = None) -> int:
    conf = setup_service(argv)
    group = conf.bootserver
    if bool(group.cert_file) != bool(group.key_file):
        LOG.error('[bootserver] cert_file and key_file go together')
        return 2
    server = make_server(create_app(make_credentials(), conf), conf)

    def _exit(*_args: Any) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _exit)
    LOG.info('hwbus-bootserver listening on %s://%s:%d',
             'https' if group.cert_file else 'http', group.host, group.port)
    server.safe_start()  # returns after SIGTERM or SIGINT, stopped
    return 0


if __name__ == '__main__':
    sys.exit(main())
