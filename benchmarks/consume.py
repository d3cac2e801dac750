"""The consumer pipeline with a null applier: messages per second, RSS.

N boots are issued and published first (the Dell R740 document, each its
own credential); then ``hwbus-consumer`` (the installed command, appliers
``null``) is started and timed until the queue is empty. Every message
goes through the whole pipeline: size, properties, credential lookup,
signature, state transition, broker user deletion, schema, archive, ack.
The reference, in the same run, drains the same number of messages with a
bare kombu consumer that only acks (the broker's floor).

    .venv/bin/python benchmarks/consume.py [--boots N] [--workers W]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import pathlib
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


def depth(server) -> int:
    with kombu.Connection(server.amqp_url) as connection:
        return connection.default_channel.queue_declare(
            'hwbus.inventory', passive=True).message_count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--boots', type=int, default=1000)
    parser.add_argument('--workers', type=int, default=8)
    args = parser.parse_args()
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
        rss = [process.memory_info().rss]
        idle_rss = rss[0]
        deadline = time.monotonic() + 600
        while consumer.counter('applied') < args.boots:
            rss.append(process.memory_info().rss)
            if time.monotonic() > deadline:
                raise SystemExit('the consumer did not finish in 10 min')
            time.sleep(0.1)
        pipeline_seconds = time.perf_counter() - started
        steady_seconds = time.perf_counter() - ready
        rss.append(process.memory_info().rss)
        applied = consumer.counter('applied')
        steps = {}
        for line in consumer.metrics().splitlines():
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
          f'2 cores')
    print(f'  hwbus-consumer, null applier  {pipeline_seconds:6.2f} s  '
          f'{rate:7.1f} msg/s  (applied {applied:.0f}; includes start-up)')
    print(f'  the same from "consuming"     {steady_seconds:6.2f} s  '
          f'{args.boots / steady_seconds:7.1f} msg/s')
    print(f'  reference: kombu ack only     {reference_seconds:6.2f} s  '
          f'{args.boots / reference_seconds:7.1f} msg/s')
    print('  time in each step, summed over workers, per message: ' +
          ', '.join(f'{k} {v / args.boots * 1000:.1f} ms'
                    for k, v in sorted(steps.items())))
    print(f'  ratio: {rate / (args.boots / reference_seconds):.2f}x the '
          f'reference; consumer RSS {idle_rss / 2 ** 20:.0f} MiB idle, '
          f'{max(rss) / 2 ** 20:.0f} MiB max')


if __name__ == '__main__':
    sys.exit(main())
