"""hwbus-consumer: verify inventories, revoke their credentials, apply them.

    hwbus-consumer --config-file /etc/hwbus/hwbus.conf
"""

from __future__ import annotations

import gc
import sys

from oslo_log import log

from hwbus import inventory, version
from hwbus.cmd import guarded, setup_service, wiring
from hwbus.conf import CONF
from hwbus.consumer import metrics
from hwbus.consumer.service import Service

LOG = log.getLogger(__name__)


def limit_malloc_arenas(count: int = 2) -> None:
    """Fewer glibc malloc arenas: with one per worker thread, freed JSON
    documents fragment them and RSS doubles under load (measured: 379 MiB
    vs 194 MiB after 1,000 messages, benchmarks/consume.py)."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
        libc.mallopt(-8, count)  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass


def trim_malloc() -> None:
    """Hand the C heap's free pages back to the system. Compiling the
    schema validator peaks at about 45 MiB that glibc keeps mapped after
    Python frees it; trimmed, the consumer starts about 35 MiB smaller."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6')
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        pass


@guarded
def main(argv: list[str] | None = None) -> int:
    limit_malloc_arenas()
    setup_service(argv)
    credentials = wiring.credentials()
    revoker = wiring.revoker(credentials)
    pipeline = wiring.pipeline(CONF, credentials, wiring.notifier())
    inventory.prepare()
    gc.collect()
    trim_malloc()
    service = Service(pipeline, wiring.consumer_settings(), credentials,
                      revoker)
    service.install_signal_handlers()
    metrics.serve(CONF.consumer.metrics_host, CONF.consumer.metrics_port)
    LOG.info('hwbus-consumer %s starting: appliers %s, %d workers',
             version.version_string(), ', '.join(CONF.consumer.appliers),
             CONF.consumer.workers)
    service.run()
    return 0


if __name__ == '__main__':
    sys.exit(main())
