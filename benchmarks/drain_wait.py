"""Why the consumer keeps its own loop instead of kombu's ConsumerMixin.

The consumer's connection thread must send the acks of work its workers
finished. ConsumerMixin waits a fixed ``safety_interval`` in
``drain_events`` between its ``on_iteration`` calls (1 s by default); the
consumer waits briefly while work is in flight and long when idle. This
runs the real consumer (null applier) in-process three ways on the same
broker and store: its own waits, the mixin's default interval, and the
mixin with an interval short enough to keep up; for each, the rate at
which N queued boots are drained and the CPU the process burns while
idle for 10 s afterwards.

    .venv/bin/python benchmarks/drain_wait.py [--boots N]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import threading
import time

import _broker
from consume import MACHINE, depth, publish

from hwbus.cmd import setup_service, wiring
from hwbus.consumer import service as service_module
from hwbus.localstack.consumer import write_config

VARIANTS = {
    # name: (wait while work is in flight, wait when idle), seconds
    'hwbus (0.005 s busy, 0.2 s idle)': (0.005, 0.2),
    'ConsumerMixin default (1 s)': (1.0, 1.0),
    'ConsumerMixin at 0.005 s': (0.005, 0.005),
}


def run(variant: tuple[float, float], server, credentials, document,
        boots: int, offset: int) -> tuple[float, float]:
    publish(credentials, document, boots, offset)
    assert depth(server) == boots
    service_module.BUSY_WAIT, service_module.IDLE_WAIT = variant
    consumer = service_module.Service(wiring.pipeline(),
                                      wiring.consumer_settings(),
                                      credentials=None)
    thread = threading.Thread(target=consumer.run, daemon=True)
    started = time.perf_counter()
    thread.start()
    while depth(server) or consumer.pending:
        time.sleep(0.05)
    drained = time.perf_counter() - started
    cpu = time.process_time()
    time.sleep(10)
    idle_cpu = (time.process_time() - cpu) / 10
    consumer.stop()
    thread.join(timeout=60)
    return boots / drained, idle_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--boots', type=int, default=400)
    args = parser.parse_args()
    document = json.loads((MACHINE / 'expected.json').read_text())
    server, credentials = _broker.start()
    work = pathlib.Path(str(credentials.store.engine.url.database)).parent
    try:
        config = write_config(
            work / 'hwbus.conf', server, str(credentials.store.engine.url),
            None, 'bench-consumer', appliers='null',
            extra='\n[consumer]\nworkers = 4\nprefetch = 16\n')
        config.write_text(config.read_text().replace('debug = true',
                                                     'debug = false'))
        setup_service(['--config-file', str(config)])
        results = {}
        for n, (name, variant) in enumerate(VARIANTS.items()):
            results[name] = run(variant, server, credentials, document,
                                args.boots, n * args.boots)
    finally:
        server.stop()
    reference = results[next(iter(VARIANTS))]
    print(f'{args.boots} queued boots, null applier, 4 workers, prefetch '
          f'16, in-process, 2 cores')
    for name, (rate, cpu) in results.items():
        print(f'  {name:34} {rate:7.1f} msg/s ({rate / reference[0]:.2f}x)'
              f'  idle CPU {cpu * 100:5.1f} % of a core')


if __name__ == '__main__':
    sys.exit(main())
