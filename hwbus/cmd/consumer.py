"""hwbus-consumer: verify inventories, revoke their credentials, apply them.

    hwbus-consumer --config-file /etc/hwbus/hwbus.conf
"""

from __future__ import annotations

import sys

from oslo_log import log

from hwbus import version
from hwbus.cmd import setup_service
from hwbus.cmd.manage import make_credentials
from hwbus.conf import CONF
from hwbus.consumer import factory, metrics
from hwbus.consumer.notify import Notifier
from hwbus.consumer.service import Service

LOG = log.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    setup_service(argv)
    credentials = make_credentials()
    notifier = Notifier(CONF)
    pipeline = factory.pipeline(CONF, credentials, notifier)
    service = Service(pipeline, factory.settings(CONF), credentials)
    service.install_signal_handlers()
    metrics.serve(CONF.consumer.metrics_host, CONF.consumer.metrics_port)
    LOG.info('hwbus-consumer %s starting: appliers %s, %d workers',
             version.version_string(), ', '.join(CONF.consumer.appliers),
             CONF.consumer.workers)
    service.run()
    return 0


if __name__ == '__main__':
    sys.exit(main())
