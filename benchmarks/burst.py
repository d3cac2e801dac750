"""A burst of boots: hwbus through the queue vs posting straight to Ironic.

Both paths end in the same real standalone Ironic (a fresh one each, same
configuration: SQLite, noauth, auto-discovery, the inspection hooks):

* hwbus: N boots (the QEMU guest's document, a MAC each) issued and
  published at once (8 publisher threads), ``hwbus-consumer`` with the
  ``inspection`` applier turns them into nodes;
* direct: the same N documents POSTed to ``/v1/continue_inspection`` by 32
  concurrent HTTP clients, as N ramdisks calling back at once would.

It samples the number of nodes every half second, prints the time until
all N exist, the drain rate and how many were lost (requests that failed
on the direct path; inventories never applied on the hwbus path), and
plots both curves (``--plot FILE``, needs matplotlib).

    .venv/bin/python benchmarks/burst.py [--boots N] [--plot docs/burst.png]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import pathlib
import tempfile
import threading
import time

import _broker
import requests

from hwbus import envelope, keys
from hwbus.localstack.consumer import ConsumerProcess, write_config
from hwbus.localstack.ironic import API_VERSION, IronicServer
from hwbus.ramdisk import publisher
from tests.functional import boots


def sampler(ironic: IronicServer, target: int, stop: threading.Event,
            curve: list[tuple[float, int]], start: float) -> None:
    while not stop.is_set():
        try:
            count = len(requests.get(
                f'{ironic.url}/v1/nodes?fields=uuid',
                headers={'X-OpenStack-Ironic-API-Version': API_VERSION},
                timeout=30).json()['nodes'])
        except (requests.RequestException, ValueError, KeyError):
            count = curve[-1][1] if curve else 0
        curve.append((time.perf_counter() - start, count))
        if count >= target:
            return
        stop.wait(0.5)


def wait_curve(ironic, target, start, timeout):
    curve: list[tuple[float, int]] = []
    stop = threading.Event()
    thread = threading.Thread(target=sampler,
                              args=(ironic, target, stop, curve, start))
    thread.start()
    thread.join(timeout)
    stop.set()
    thread.join()
    return curve


def documents(count: int, offset: int) -> list[dict]:
    return [boots.document('qemu-guest', boots.mac_for(offset + i))
            for i in range(count)]


def run_hwbus(work: pathlib.Path, count: int, timeout: float):
    server, credentials = _broker.start()
    ironic = IronicServer(work / 'ironic-hwbus').start()
    config = write_config(work / 'hwbus.conf', server,
                          str(credentials.store.engine.url), ironic.url,
                          'bench-consumer')
    config.write_text(config.read_text().replace('debug = true',
                                                 'debug = false'))
    consumer = ConsumerProcess(config, work / 'consumer.log').start()
    try:
        docs = documents(count, 0)
        issued = [credentials.issue(mac=d['inventory']['boot'][
            'pxe_interface'], after='none') for d in docs]

        def boot(pair):
            one, doc = pair
            sealed = envelope.seal(
                boot_id=one.params.boot_id, user=one.params.user,
                key=keys.private_key(one.params.key),
                inventory=doc['inventory'], plugin_data=doc['plugin_data'])
            publisher.publish(sealed, one.params, deadline=120)

        start = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(boot, zip(issued, docs, strict=True)))
        published = time.perf_counter() - start
        curve = wait_curve(ironic, count, start, timeout)
        dead = consumer.counter('dead', 'node-not-found')
        return curve, published, int(dead)
    finally:
        consumer.stop()
        ironic.stop()
        server.stop()


def run_direct(work: pathlib.Path, count: int, timeout: float):
    ironic = IronicServer(work / 'ironic-direct').start()
    try:
        docs = documents(count, 100000)
        failures = []

        def post(doc):
            body = dict(doc['plugin_data'], inventory=doc['inventory'])
            try:
                response = requests.post(
                    f'{ironic.url}/v1/continue_inspection', json=body,
                    headers={'X-OpenStack-Ironic-API-Version': API_VERSION},
                    timeout=60)
                if response.status_code not in (200, 202):
                    failures.append(response.status_code)
            except requests.RequestException as exc:
                failures.append(type(exc).__name__)

        start = time.perf_counter()
        stop = threading.Event()
        curve: list[tuple[float, int]] = []
        thread = threading.Thread(target=sampler,
                                  args=(ironic, count, stop, curve, start))
        thread.start()
        with concurrent.futures.ThreadPoolExecutor(32) as pool:
            list(pool.map(post, docs))
        thread.join(timeout)
        stop.set()
        thread.join()
        return curve, failures
    finally:
        ironic.stop()


def summary(name: str, curve, count: int) -> float:
    final = curve[-1][1] if curve else 0
    done = next((t for t, n in curve if n >= count), None)
    if done is None:
        print(f'  {name}: {final}/{count} nodes after {curve[-1][0]:.0f} s '
              f'(not all)')
        return final / curve[-1][0] if curve else 0.0
    print(f'  {name}: all {count} nodes after {done:.1f} s '
          f'({count / done:.1f} nodes/s)')
    return count / done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--boots', type=int, default=1000)
    parser.add_argument('--timeout', type=float, default=1800)
    parser.add_argument('--plot', metavar='FILE')
    args = parser.parse_args()
    work = pathlib.Path(tempfile.mkdtemp(prefix='hwbus-burst-'))
    hwbus_curve, published, dead = run_hwbus(work, args.boots, args.timeout)
    direct_curve, failures = run_direct(work, args.boots, args.timeout)
    print(f'{args.boots} boots at once into a standalone Ironic (SQLite, '
          f'2 cores)')
    print(f'  hwbus: all published and confirmed in {published:.1f} s')
    hwbus_rate = summary('hwbus (queue + consumer, inspection)',
                         hwbus_curve, args.boots)
    direct_rate = summary('direct (32 clients, continue_inspection)',
                          direct_curve, args.boots)
    lost_hwbus = args.boots - (hwbus_curve[-1][1] if hwbus_curve else 0)
    print(f'  lost: hwbus {lost_hwbus} (dead-lettered {dead}), direct '
          f'{len(failures)} failed requests '
          f'{sorted(set(map(str, failures)))[:5]}')
    if direct_rate:
        print(f'  drain rate hwbus / direct: {hwbus_rate / direct_rate:.2f}')
    (work / 'curves.json').write_text(json.dumps(
        {'hwbus': hwbus_curve, 'direct': direct_curve}))
    if args.plot:
        import matplotlib

        matplotlib.use('Agg')
        from matplotlib import pyplot

        figure, axes = pyplot.subplots(figsize=(7, 4))
        for label, curve in (('hwbus (queue + consumer)', hwbus_curve),
                             ('direct continue_inspection, 32 clients',
                              direct_curve)):
            axes.plot([t for t, _ in curve], [n for _, n in curve],
                      label=label)
        axes.axhline(args.boots, color='grey', linewidth=0.5)
        axes.set_xlabel('seconds since the burst started')
        axes.set_ylabel('nodes in Ironic')
        axes.set_title(f'{args.boots} boots at once, standalone Ironic')
        axes.legend()
        figure.tight_layout()
        figure.savefig(args.plot, dpi=100)
        print(f'  plot: {args.plot}')


if __name__ == '__main__':
    main()
