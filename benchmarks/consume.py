"""The consumer pipeline with a null applier: messages per second, RSS.

N boots are issued and published first (the Dell R740 document, each its
own credential); then ``hwbus-consumer`` (the installed command next to
this Python, appliers ``null``; ``--processes`` of them) is started and
timed until every message is applied. Every message goes through the
whole pipeline: size, properties, credential lookup, signature, the
``received`` transition, schema, the ``applied`` transition, archive,
ack; the broker users are deleted by each consumer's batching revoker
meanwhile, and the run waits for the last of them (the delay from
received to deleted is read from ``hwbus_revoke_delay_seconds``).
The reference, in the same run, drains the same number of messages with a
bare kombu consumer that only acks (the broker's floor).

    .venv/bin/python benchmarks/consume.py [--boots N] [--workers W]
        [--processes P] [--profile FILE]

(with ``PYTHONPATH=$PWD`` to measure a checkout other than the one the
virtualenv has installed).
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


def run_hwbus(server, credentials, work: pathlib.Path, args) -> dict:
    """Start ``args.processes`` consumers on the queued messages and time
    them until all are applied and every used user is deleted."""
    consumers = []
    for n in range(args.processes):
        config = write_config(
            work / f'hwbus-{n}.conf', server,
            str(credentials.store.engine.url), None, 'bench-consumer',
            appliers='null',
            extra=f'\n[consumer]\nworkers = {args.workers}\n'
                  f'prefetch = {args.workers * 4}\n')
        config.write_text(
            config.read_text().replace('debug = true', 'debug = false'))
        consumers.append(ConsumerProcess(config, work / f'consumer-{n}.log'))
    # Started side by side; the steady rate counts from the first one
    # "consuming", so that a later one's start-up is not left out.
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(len(consumers)) as pool:
        ready = min(pool.map(
            lambda c: (c.start(), time.perf_counter())[1], consumers))
    processes = [psutil.Process(c.proc.pid) for c in consumers]
    spy = None
    if args.profile:
        spy = subprocess.Popen(
            [os.environ.get('PY_SPY') or shutil.which('py-spy') or 'py-spy',
             'record', '--format', 'raw', '--threads', '--nonblocking',
             '--rate', '250', '--output', args.profile,
             '--pid', str(processes[0].pid)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    broker = psutil.Process(server.proc.pid)

    def rss() -> int:  # all consumer processes together
        return sum(p.memory_info().rss for p in processes)

    def applied() -> float:
        return sum(c.counter('applied') for c in consumers)

    samples = [rss()]
    cpu_before = sum(sum(p.cpu_times()[:2]) for p in processes)
    broker_before = broker_cpu(broker)
    deadline = time.monotonic() + 600
    while applied() < args.boots:
        samples.append(rss())
        if time.monotonic() > deadline:
            raise SystemExit('the consumers did not finish in 10 min')
        time.sleep(0.1)
    done = time.perf_counter()
    if spy is not None:
        spy.send_signal(signal.SIGINT)
        spy.wait(60)
    cpu = sum(sum(p.cpu_times()[:2]) for p in processes) - cpu_before
    broker_seconds = broker_cpu(broker) - broker_before
    # The last users are deleted just after the last message.
    while any('hwbus_revoke_pending 0.0' not in c.metrics()
              for c in consumers):
        samples.append(rss())
        time.sleep(0.05)
    samples.append(rss())
    delays: dict[float, float] = {}
    steps: dict[str, float] = {}
    for consumer in consumers:
        text = consumer.metrics()
        for bound, count in histogram(text, 'hwbus_revoke_delay_seconds'):
            delays[bound] = delays.get(bound, 0) + count
        for line in text.splitlines():
            if line.startswith('hwbus_step_seconds_sum'):
                name = line.split('step="')[1].split('"')[0]
                steps[name] = steps.get(name, 0) + float(line.split()[-1])
    result = {
        'applied': applied(), 'seconds': done - started,
        'steady_seconds': done - ready, 'cpu': cpu,
        'broker_cpu': broker_seconds, 'rss_start': samples[0],
        'rss_max': max(samples), 'delays': sorted(delays.items()),
        'steps': steps,
        'left': sum(1 for u in server.users() if u.startswith('boot-'))}
    for consumer in consumers:
        consumer.stop()
    return result


def run_reference(server, credentials, document, args) -> float:
    """Seconds a bare kombu consumer takes to ack the same messages."""
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
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--boots', type=int, default=1000)
    parser.add_argument('--workers', type=int, default=8,
                        help='worker threads of each consumer process')
    parser.add_argument('--processes', type=int, default=1,
                        help='hwbus-consumer processes on the one queue '
                             'and SQLite store (as several consumers of '
                             'one host would run)')
    parser.add_argument('--profile', metavar='FILE',
                        help='record where the (first) consumer spends its '
                             'time while draining, with py-spy (on PATH or '
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
        hwbus = run_hwbus(server, credentials, work, args)
        reference_seconds = run_reference(server, credentials, document,
                                          args)
    finally:
        server.stop()
    n = args.boots
    rate = n / hwbus['seconds']
    steady = n / hwbus['steady_seconds']
    reference = n / reference_seconds
    delays = hwbus['delays']
    mib = 2 ** 20
    print(f'{n} messages (Dell R740, 3.4 KiB each), {args.processes} '
          f'consumer process(es) x {args.workers} workers, RabbitMQ and '
          f'SQLite on loopback, {os.cpu_count()} cores, load average '
          f'{load[0]:.2f} before, {os.getloadavg()[0]:.2f} after')
    print(f'  hwbus-consumer, null applier  {hwbus["seconds"]:6.2f} s  '
          f'{rate:7.1f} msg/s  (applied {hwbus["applied"]:.0f}; includes '
          f'start-up)')
    print(f'  the same from "consuming"     {hwbus["steady_seconds"]:6.2f} s'
          f'  {steady:7.1f} msg/s')
    print(f'  reference: kombu ack only     {reference_seconds:6.2f} s  '
          f'{reference:7.1f} msg/s')
    print(f'  ratio: {steady / reference:.3f}x the reference (from '
          f'"consuming"); RSS {hwbus["rss_start"] / mib:.0f} MiB at start, '
          f'{hwbus["rss_max"] / mib:.0f} MiB max (all consumer processes)')
    print(f'  consumer CPU (all threads) per message: '
          f'{hwbus["cpu"] / n * 1000:.2f} ms; while draining the '
          f'consumer(s) used {hwbus["cpu"] / hwbus["steady_seconds"]:.2f} '
          f'cores (the threads of one process share one GIL), RabbitMQ '
          f'{hwbus["broker_cpu"] / hwbus["steady_seconds"]:.2f}')
    print('  time in each step, summed over workers, per message: ' +
          ', '.join(f'{k} {v / n * 1000:.1f} ms'
                    for k, v in sorted(hwbus['steps'].items())))
    print(f'  received -> broker user deleted: p50 '
          f'{quantile(delays, 0.5) * 1000:.0f} ms, p99 '
          f'{quantile(delays, 0.99) * 1000:.0f} ms over '
          f'{delays[-1][1] if delays else 0:.0f} users '
          f'(hwbus_revoke_delay_seconds, linear within a bucket); per-boot '
          f'users left on the broker: {hwbus["left"]}')
    met = steady >= 1000 and hwbus['rss_max'] <= 120 * mib
    print(f'  target >= 1,000 msg/s and RSS <= 120 MiB: '
          f'{"met" if met else "missed"} ({steady:.0f} msg/s from '
          f'"consuming", {hwbus["rss_max"] / mib:.0f} MiB max)')


if __name__ == '__main__':
    sys.exit(main())
