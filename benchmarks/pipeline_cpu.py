"""CPU of one message in the consumer's pipeline, in one thread.

The real pipeline (null applier, archive, metrics and log observers) on
the real broker and a SQLite store, without kombu or worker threads: N
boots are issued and sealed (the Dell R740 document), a third are
processed to warm up, the rest are timed. With ``--revoker`` the broker
users are deleted by the consumer's batching revoker (a thread of its
own, as in hwbus-consumer); without it, inline as before it existed.
``--profile`` prints cProfile's top functions, for finding what to cut
(the profiler roughly doubles the times).

    .venv/bin/python benchmarks/pipeline_cpu.py [--boots N] [--revoker]
        [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pathlib
import pstats
import sys
import time

import _broker
import psutil

from hwbus.consumer import appliers, observers
from hwbus.consumer.pipeline import Pipeline
from hwbus.credentials.revoker import Revoker
from hwbus.ramdisk import main as ramdisk

TOP = pathlib.Path(__file__).resolve().parents[1]
MACHINE = TOP / 'tests' / 'fixtures' / 'machines' / 'dell-r740'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--boots', type=int, default=600)
    parser.add_argument('--revoker', action='store_true')
    parser.add_argument('--profile', action='store_true')
    args = parser.parse_args()
    text = (MACHINE / 'expected.json').read_text()
    server, credentials = _broker.start()
    try:
        messages = []
        for i in range(args.boots):
            one = credentials.issue(mac=f'52:54:02:{i >> 8 & 255:02x}:'
                                        f'{i & 255:02x}:00', after='none')
            document = json.loads(text.replace('bc:97:e1:5a:30:10',
                                               one.credential.mac))
            sealed = ramdisk.seal(document, None, one.params)
            messages.append((sealed.body, sealed.properties))
        delays: list[float] = []
        if args.revoker:
            credentials.revoker = Revoker(
                credentials.store, credentials.management,
                observe=delays.append)
            credentials.revoker.start()
        pipeline = Pipeline(
            credentials, appliers.load(['null'], {'null': None}, None),
            observers=[observers.Archive(credentials.store),
                       observers.Metrics(), observers.LogLine()])
        warm = args.boots // 3
        for body, properties in messages[:warm]:
            assert pipeline.process(body, properties).kind == 'applied'
        me = psutil.Process()
        profile = cProfile.Profile()
        wall, cpu = time.perf_counter(), time.process_time()
        thread = time.thread_time()
        if args.profile:
            profile.enable()
        for body, properties in messages[warm:]:
            outcome = pipeline.process(body, properties)
            assert outcome.kind == 'applied', outcome
        profile.disable()
        n = args.boots - warm
        thread = time.thread_time() - thread
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        if credentials.revoker is not None:
            credentials.revoker.stop()
    finally:
        server.stop()
    print(f'{n} messages in one thread (after {warm} to warm up), '
          f'{"revoker thread" if args.revoker else "inline deletion"}')
    print(f'  pipeline thread CPU {thread / n * 1000:.2f} ms/message, '
          f'process CPU {cpu / n * 1000:.2f} ms, wall '
          f'{wall / n * 1000:.2f} ms; RSS {me.memory_info().rss >> 20} MiB')
    if delays:
        delays.sort()
        print(f'  received -> user deleted: p50 '
              f'{delays[len(delays) // 2] * 1000:.0f} ms, p99 '
              f'{delays[int(len(delays) * 0.99)] * 1000:.0f} ms')
    if args.profile:
        pstats.Stats(profile).sort_stats('cumulative').print_stats(30)


if __name__ == '__main__':
    sys.exit(main())
