"""The consumer pipeline with a null applier: messages per second, RSS.

N boots are issued and published first (the Dell R740 document, each its
own credential); then ``hwbus-consumer`` (the installed command, appliers
``null``) is started and timed until the queue is empty. Every message
goes through the whole pipeline: size, properties, credential lookup,
signature, state transition, schema, archive, ack; the broker users are
deleted by the consumer's batching revoker meanwhile, and the run ends
when the last is gone (its delay from received to deleted is read from
``hwbus_revoke_delay_seconds``).
The reference, in the same run, drains the same number of messages with a
bare kombu consumer that only acks (the broker's floor).

    .venv/bin/python benchmarks/consume.py [--boots N] [--workers W]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import time

import _broker
import kombu
import psutil

from hwbus.localstack.consumer import ConsumerProcess, write_config
from hwbus.ramdisk import main as ramdisk
from hwbus.ramdisk import publisher

TOP = pathlib.Path(__file__).resolve().parents[1]
MACHINE = TOP / 'tests' / 'fixtures' / 'machines' / 'dell-r740'


def publish(credentials, document, count, offset):
    issued = [credentials.issue(mac=f'52:54:02:{(i + offset) >> 8 & 255:02x}'
                                    f':{(i + offset) & 255:02x}:00',
                                after='none') for i in range(count)]
    text = json.dumps(document)

    def boot(one):
        # The credential is bound to the boot MAC: give each its own.
        mine = json.loads(text.replace('bc:97:e1:5a:30:10',
                                       one.credential.mac))
        sealed = ramdisk.seal(mine, None, one.params)
        publisher.publish(sealed, one.params, deadline=60)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(boot, issued))


def histogram(metrics: str, name: str) -> list[tuple[float, float]]:
    """(upper bound, cumulative count) of a Prometheus histogram."""
    buckets = []
    for line in metrics.splitlines():
        if line.startswith(f'{name}_bucket{{'):
            bound = line.split('le="')[1].split('"')[0]
            buckets.append((float(bound), float(line.split()[-1])))
    return sorted(buckets)


def quantile(buckets: list[tuple[float, float]], q: float) -> float:
    """The q-quantile, linear within its bucket (as PromQL's
    histogram_quantile estimates it)."""
    total = buckets[-1][1] if buckets else 0
    if not total:
        return float('nan')
    rank = q * total
    lower, below = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound == float('inf'):
                return lower
            return lower + (bound - lower) * (rank - below) / \
                max(count - below, 1e-9)
        lower, below = bound, count
    return lower


def broker_cpu(broker: psutil.Process) -> float:
    """CPU seconds of the broker's process tree (beam.smp, epmd...)."""
    total = 0.0
    for one in [broker, *broker.children(recursive=True)]:
        try:
            total += sum(one.cpu_times()[:2])
        except psutil.NoSuchProcess:
            pass
    return total


def depth(server) -> int:
    with kombu.Connection(server.amqp_url) as connection:
        return connection.default_channel.queue_declare(
            'hwbus.inventory', passive=True).message_count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--boots', type=int, default=1000)
    parser.add_argument('--workers', type=int, default=8)
    parser.add_argument('--profile', metavar='FILE',
                        help='record where the consumer spends its time '
                             'while draining, with py-spy (on PATH or '
                             '$PY_SPY), into FILE as collapsed stacks '
                             '(one "frame;frame;... count" line each, '
                             'for flamegraph.pl or grep)')
    args = parser.parse_args()
    load = os.getloadavg()
    document = json.loads((MACHINE / 'expected.json').read_text())
    server, credentials = _broker.start()
    work = pathlib.Path(str(credentials.store.engine.url.database)).parent
    try:
        publish(credentials, document, args.boots, 0)
        assert depth(server) == args.boots
        config = write_config(
            work / 'hwbus.conf', server,
            str(credentials.store.engine.url), None, 'bench-consumer',
            appliers='null',
            extra=f'\n[consumer]\nworkers = {args.workers}\n'
                  f'prefetch = {args.workers * 4}\n')
        text = config.read_text().replace('debug = true', 'debug = false')
        config.write_text(text)
        consumer = ConsumerProcess(config, work / 'consumer.log')
        started = time.perf_counter()
        consumer.start()
        ready = time.perf_counter()
        process = psutil.Process(consumer.proc.pid)
        spy = None
        if args.profile:
            spy = subprocess.Popen(
                [os.environ.get('PY_SPY') or shutil.which('py-spy') or
                 'py-spy', 'record', '--format', 'raw', '--threads',
                 '--nonblocking', '--rate', '250', '--output', args.profile,
                 '--pid', str(consumer.proc.pid)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        rss = [process.memory_info().rss]
        cpu_before = sum(process.cpu_times()[:2])
        broker = psutil.Process(server.proc.pid)
        broker_before = broker_cpu(broker)
        idle_rss = rss[0]
        deadline = time.monotonic() + 600
        while consumer.counter('applied') < args.boots:
            rss.append(process.memory_info().rss)
            if time.monotonic() > deadline:
                raise SystemExit('the consumer did not finish in 10 min')
            time.sleep(0.1)
        pipeline_seconds = time.perf_counter() - started
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(60)
        steady_seconds = time.perf_counter() - ready
        cpu = sum(process.cpu_times()[:2]) - cpu_before
        broker_seconds = broker_cpu(broker) - broker_before
        # The last users are deleted just after the last message.
        while 'hwbus_revoke_pending 0.0' not in consumer.metrics():
            rss.append(process.memory_info().rss)
            time.sleep(0.05)
        rss.append(process.memory_info().rss)
        applied = consumer.counter('applied')
        text = consumer.metrics()
        delays = histogram(text, 'hwbus_revoke_delay_seconds')
        left = sum(1 for user in server.users() if user.startswith('boot-'))
        steps = {}
        for line in text.splitlines():
            if line.startswith('hwbus_step_seconds_sum'):
                name = line.split('step="')[1].split('"')[0]
                steps[name] = float(line.split()[-1])
        consumer.stop()

        publish(credentials, document, args.boots, args.boots)
        started = time.perf_counter()
        count = 0
        with kombu.Connection(server.amqp_url) as connection:
            queue = kombu.Queue('hwbus.inventory', no_declare=True)

            def on_message(message):
                nonlocal count
                message.ack()
                count += 1

            with connection.Consumer(queue, on_message=on_message) as c:
                c.qos(prefetch_count=args.workers * 4)
                while count < args.boots:
                    connection.drain_events(timeout=10)
        reference_seconds = time.perf_counter() - started
    finally:
        server.stop()
    rate = args.boots / pipeline_seconds
    print(f'{args.boots} messages (Dell R740, 3.4 KiB each), '
          f'{args.workers} workers, RabbitMQ and SQLite on loopback, '
          f'{os.cpu_count()} cores, load average {load[0]:.2f} before, '
          f'{os.getloadavg()[0]:.2f} after')
    print(f'  hwbus-consumer, null applier  {pipeline_seconds:6.2f} s  '
          f'{rate:7.1f} msg/s  (applied {applied:.0f}; includes start-up)')
    print(f'  the same from "consuming"     {steady_seconds:6.2f} s  '
          f'{args.boots / steady_seconds:7.1f} msg/s')
    print(f'  reference: kombu ack only     {reference_seconds:6.2f} s  '
          f'{args.boots / reference_seconds:7.1f} msg/s')
    print(f'  consumer CPU (all threads) per message: '
          f'{cpu / args.boots * 1000:.2f} ms; while draining the consumer '
          f'used {cpu / steady_seconds:.2f} cores (its threads share one '
          f'GIL), RabbitMQ {broker_seconds / steady_seconds:.2f}')
    print('  time in each step, summed over workers, per message: ' +
          ', '.join(f'{k} {v / args.boots * 1000:.1f} ms'
                    for k, v in sorted(steps.items())))
    print(f'  ratio: {rate / (args.boots / reference_seconds):.2f}x the '
          f'reference; consumer RSS {idle_rss / 2 ** 20:.0f} MiB idle, '
          f'{max(rss) / 2 ** 20:.0f} MiB max')
    print(f'  received -> broker user deleted: p50 '
          f'{quantile(delays, 0.5) * 1000:.0f} ms, p99 '
          f'{quantile(delays, 0.99) * 1000:.0f} ms over '
          f'{delays[-1][1] if delays else 0:.0f} users '
          f'(hwbus_revoke_delay_seconds, linear within a bucket); per-boot '
          f'users left on the broker: {left}')
    steady = args.boots / steady_seconds
    met = steady >= 1000 and max(rss) <= 120 * 2 ** 20
    print(f'  target >= 1,000 msg/s and RSS <= 120 MiB: '
          f'{"met" if met else "missed"}'
          f' ({steady:.0f} msg/s from "consuming", '
          f'{max(rss) / 2 ** 20:.0f} MiB max)')


if __name__ == '__main__':
    sys.exit(main())
