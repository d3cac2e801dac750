"""1,000 distinct boots sealed and published with confirms, real broker.

Each boot does what a ramdisk does: seal its inventory (a recorded
Dell R740, about 30 kB of JSON) with its own key and publish it over its
own connection as its own broker user, waiting for the confirm. Boots run
from a pool of threads, as machines would arrive at once. The reference,
in the same run: the same number of already-encoded bodies published by
one administrator connection with confirms (the broker's floor).

    .venv/bin/python benchmarks/publish.py [--boots N] [--threads T]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import pathlib
import time

import _broker
import pika

from hwbus import keys
from hwbus.ramdisk import main as ramdisk
from hwbus.ramdisk import publisher

MACHINE = (pathlib.Path(__file__).resolve().parents[1] / 'tests' /
           'fixtures' / 'machines' / 'dell-r740' / 'expected.json')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--boots', type=int, default=1000)
    parser.add_argument('--threads', type=int, default=32)
    args = parser.parse_args()
    document = json.loads(MACHINE.read_text())
    server, credentials = _broker.start()
    try:
        issued = [credentials.issue(mac=f'52:54:01:{i >> 16 & 255:02x}:'
                                        f'{i >> 8 & 255:02x}:{i & 255:02x}')
                  for i in range(args.boots)]
        for one in issued:
            keys.private_key(one.params.key)  # parse outside the clock

        def boot(one):
            sealed = ramdisk.seal(document, None, one.params)
            publisher.publish(sealed, one.params, deadline=60)
            return len(sealed.body)

        start = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(args.threads) as pool:
            sizes = list(pool.map(boot, issued))
        hwbus_seconds = time.perf_counter() - start

        bodies = [ramdisk.seal(document, None, one.params) for one in issued]
        connection = pika.BlockingConnection(
            pika.URLParameters(server.amqp_url))
        channel = connection.channel()
        channel.confirm_delivery()
        start = time.perf_counter()
        for sealed in bodies:
            channel.basic_publish('hwbus.inventory',
                                  'inventory.reference', sealed.body,
                                  mandatory=True)
        reference_seconds = time.perf_counter() - start
        depth = channel.queue_declare('hwbus.inventory',
                                      passive=True).method.message_count
        connection.close()
    finally:
        server.stop()
    print(f'{args.boots} boots, {args.threads} at a time, '
          f'{sum(sizes) / len(sizes) / 1024:.1f} KiB gzipped each '
          f'(Dell R740 document)')
    print(f'  hwbus: seal + connect + publish + confirm  '
          f'{hwbus_seconds:6.2f} s  {args.boots / hwbus_seconds:7.1f} boots/s')
    print(f'  reference: one connection, confirms        '
          f'{reference_seconds:6.2f} s  '
          f'{args.boots / reference_seconds:7.1f} msgs/s')
    ratio = hwbus_seconds / reference_seconds
    print(f'  ratio hwbus / reference: {ratio:.1f}x; queue depth after '
          f'both: {depth}')


if __name__ == '__main__':
    main()
