"""Soak: the whole chain at a steady rate, for minutes.

A real RabbitMQ node, a real standalone Ironic (SQLite, auto-discovery,
the inspection hooks), ``hwbus-consumer`` (inspection applier, SQLite
store). A driver issues a credential and publishes one boot's inventory
(the QEMU guest's, a MAC each) every 1/rate seconds, as ramdisks
arriving steadily would. Every few seconds it samples the consumer's
RSS, the queue depth and the applied count. At the end it prints the
throughput against the offered rate, p50/p99/max latency from publish to
applied (the store's applied timestamp), RSS at start, middle and end,
and the largest queue depth; ``--plot FILE`` draws them (matplotlib).

    .venv/bin/python benchmarks/soak.py [--rate 2] [--minutes 10] \\
        [--applier inspection|null] [--plot docs/soak.png]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import pathlib
import statistics
import tempfile
import threading
import time

import _broker
import psutil

from hwbus.localstack.consumer import ConsumerProcess, write_config
from hwbus.localstack.ironic import IronicServer
from hwbus.store import State
from tests.functional import boots


def drive(credentials, rate: float, seconds: float,
          published: dict[str, float]) -> int:
    """Offer `rate` boots per second for `seconds`; returns failures."""
    failures = 0
    lock = threading.Lock()

    def one(i: int) -> None:
        nonlocal failures
        try:
            issued = credentials.issue(mac=boots.mac_for(50000 + i),
                                       after='none')
            sent = time.time()  # latency includes the publish itself
            boots.publish(issued, 50000 + i, deadline=120)
            with lock:
                published[issued.credential.boot_id] = sent
        except Exception:
            with lock:
                failures += 1

    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        i = 0
        while time.monotonic() - start < seconds:
            pool.submit(one, i)
            i += 1
            time.sleep(max(0.0, start + i / rate - time.monotonic()))
    return failures


def one_sample(proc, server, store, start: float) -> dict:
    try:
        depth = server.api('GET', '/api/queues/%2F/hwbus.inventory'
                           ).json().get('messages', 0)
    except Exception:
        depth = None
    return {'t': time.monotonic() - start,
            'rss_mib': proc.memory_info().rss / 2 ** 20, 'depth': depth,
            'applied': store.count([State.APPLIED])}


def sample(consumer, server, store, stop: threading.Event,
           samples: list[dict], start: float, every: float) -> None:
    proc = psutil.Process(consumer.proc.pid)
    while not stop.wait(every):
        samples.append(one_sample(proc, server, store, start))
    samples.append(one_sample(proc, server, store, start))  # the end


def latencies(store, published: dict[str, float],
              start_wall: float) -> list[tuple[float, float]]:
    """(seconds into the run, publish-to-applied seconds) per boot."""
    result = []
    for credential in store.list([State.APPLIED], limit=10 ** 6):
        sent = published.get(credential.boot_id)
        if sent is None:
            continue
        applied = credential.changed_at.replace(
            tzinfo=datetime.UTC).timestamp()
        result.append((sent - start_wall, applied - sent))
    return sorted(result)


def plot(path: str, samples: list[dict], lat: list[tuple[float, float]],
         rate: float) -> None:
    import matplotlib

    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    t = [s['t'] / 60 for s in samples]
    fig, axes = plt.subplots(3, 1, figsize=(8, 9))
    axes[0].plot(t, [s['applied'] for s in samples], label='applied')
    axes[0].plot(t, [rate * s['t'] for s in samples], '--',
                 label=f'offered ({rate}/s)')
    axes[0].set_ylabel('inventories')
    axes[0].legend()
    rss = [s['rss_mib'] for s in samples]
    axes[1].plot(t, rss, color='tab:red', label='consumer RSS')
    axes[1].set_ylabel('consumer RSS (MiB)')
    axes[1].set_ylim(0, max(rss) * 1.3)
    ax2 = axes[1].twinx()
    ax2.plot(t, [s['depth'] or 0 for s in samples], color='tab:gray',
             alpha=0.6)
    ax2.set_ylabel('queue depth (gray)')
    ax2.set_ylim(bottom=0)
    axes[2].scatter([when / 60 for when, _ in lat], [v for _, v in lat],
                    s=2)
    values = sorted(v for _, v in lat)
    for p, style in ((50, '-'), (99, '--')):
        axes[2].axhline(pct(values, p), linestyle=style, color='k',
                        linewidth=0.8, label=f'p{p}')
    axes[2].set_yscale('log')
    axes[2].set_ylabel('publish to applied (s)')
    axes[2].set_xlabel('minutes')
    axes[2].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def pct(values: list[float], p: float) -> float:
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--rate', type=float, default=2.0)
    parser.add_argument('--minutes', type=float, default=10.0)
    parser.add_argument('--every', type=float, default=5.0)
    parser.add_argument('--applier', default='inspection',
                        help='"null" loads the consumer alone (no Ironic '
                             'calls; Ironic still runs)')
    parser.add_argument('--plot')
    args = parser.parse_args()
    work = pathlib.Path(tempfile.mkdtemp(prefix='hwbus-soak-'))
    server, credentials = _broker.start()
    ironic = IronicServer(work / 'ironic').start()
    config = write_config(work / 'hwbus.conf', server,
                          str(credentials.store.engine.url), ironic.url,
                          'bench-consumer', appliers=args.applier)
    config.write_text(config.read_text().replace('debug = true',
                                                 'debug = false'))
    consumer = ConsumerProcess(config, work / 'consumer.log').start()
    store = credentials.store
    published: dict[str, float] = {}
    samples: list[dict] = []
    stop = threading.Event()
    start = time.monotonic()
    start_wall = time.time()
    sampler = threading.Thread(target=sample, args=(
        consumer, server, store, stop, samples, start, args.every))
    sampler.start()
    try:
        failures = drive(credentials, args.rate, args.minutes * 60,
                         published)
        drained_by = time.monotonic() + 300
        while (store.count([State.APPLIED]) < len(published)
               and time.monotonic() < drained_by):
            time.sleep(1)
        stop.set()
        sampler.join()
        lat = latencies(store, published, start_wall)
        dead = consumer.counter('dead', 'node-not-found')
    finally:
        stop.set()
        consumer.stop()
        ironic.stop()
        server.stop()
    elapsed = samples[-1]['t']
    applied = samples[-1]['applied']
    steady = [s for s in samples if s['t'] <= args.minutes * 60]
    rss = [s['rss_mib'] for s in steady]
    third = max(1, len(rss) // 3)
    print(f'offered {args.rate}/s for {args.minutes} min: '
          f'{len(published)} published, {failures} failed to publish, '
          f'{applied} applied, {int(dead)} dead')
    print(f'throughput {applied / elapsed:.2f}/s over {elapsed:.0f} s '
          f'({applied / elapsed / args.rate:.2f}x the offered rate)')
    values = sorted(v for _, v in lat)
    if values:
        print(f'publish to applied: p50 {pct(values, 50):.3f} s, '
              f'p99 {pct(values, 99):.3f} s, max {values[-1]:.2f} s')
    early = statistics.median(rss[:third])
    late = statistics.median(rss[-third:])
    print(f'consumer RSS: first third median {early:.0f} MiB, last third '
          f'median {late:.0f} MiB (ratio {late / early:.2f}), max '
          f'{max(rss):.0f} MiB')
    print(f'queue depth: max {max(s["depth"] or 0 for s in samples)}')
    if args.plot:
        plot(args.plot, samples, lat, args.rate)
        print(f'plot: {args.plot}')


if __name__ == '__main__':
    main()
