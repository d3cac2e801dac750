"""hwbus-bootserver: the iPXE endpoint that issues per-boot credentials.

    hwbus-bootserver --config-file /etc/hwbus/hwbus.conf

Serves with waitress (a production WSGI server) on [bootserver] host:port;
``hwbus.bootserver.wsgi:application`` suits any other WSGI server.
"""

from __future__ import annotations

import sys

from oslo_log import log

from hwbus.bootserver.app import create_app
from hwbus.cmd import setup_service
from hwbus.cmd.manage import make_credentials

LOG = log.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    conf = setup_service(argv)
    import waitress

    app = create_app(make_credentials(), conf)
    group = conf.bootserver
    LOG.info('hwbus-bootserver listening on %s:%d', group.host, group.port)
    waitress.serve(app, host=group.host, port=group.port, threads=8,
                   ident='hwbus-bootserver')
    return 0


if __name__ == '__main__':
    sys.exit(main())
