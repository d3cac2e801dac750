"""A burst of boots: hwbus through the queue vs posting straight to Ironic.

Both paths end in the same real standalone Ironic (a fresh one each, same
configuration: SQLite, noauth, auto-discovery, the inspection hooks):

* hwbus: N boots (the QEMU guest's document, a MAC each) issued and
  published at once (8 publisher threads), ``hwbus-consumer`` with the
  ``inspection`` applier on its defaults (16 workers, the adaptive limit
  on applies in flight to Ironic, ceiling ``--ceiling``) turns them into
  nodes;
* direct: the same N documents POSTed to ``/v1/continue_inspection`` by
  ``--clients`` concurrent HTTP clients (32), as N ramdisks calling back
  at once would.

During each burst it samples the number of nodes every half second, an
*unrelated client's* ``GET /v1/nodes`` latency every second (an operator
or a service using the same Ironic), and hwbus's concurrency limit
(``hwbus_ironic_concurrency_limit``). It prints, for each path, the time
until all N exist, the overall and the best 20-s drain rate, how many were
lost (requests that failed on the direct path; inventories never applied
on the hwbus path) and the unrelated client's latency (median, 95th
percentile, worst, failures), then hwbus's sustained rate against the
direct path's best 20-s rate, and plots both (``--plot FILE``, needs
matplotlib).

    .venv/bin/python benchmarks/burst.py [--boots N] [--plot docs/burst.png]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import json
import pathlib
import statistics
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

HEADERS = {'X-OpenStack-Ironic-API-Version': API_VERSION}
BEST_WINDOW = 20.0  # seconds: the direct path's best rate is over this


@dataclasses.dataclass
class Run:
    """What one burst measured; times in seconds from its start."""
    nodes: list[tuple[float, int]] = dataclasses.field(default_factory=list)
    latency: list[tuple[float, float | None]] = dataclasses.field(
        default_factory=list)
    limit: list[tuple[float, int]] = dataclasses.field(default_factory=list)
    lost: int = 0
    detail: str = ''

    def done(self, count: int) -> float | None:
        return next((t for t, n in self.nodes if n >= count), None)

    def best_rate(self, window: float = BEST_WINDOW) -> float:
        """The most nodes per second over any ``window`` seconds (over
        the whole run when it was shorter)."""
        if len(self.nodes) > 1 and \
                self.nodes[-1][0] - self.nodes[0][0] < window:
            window = self.nodes[-1][0] - self.nodes[0][0]
        best = 0.0
        for i, (t0, n0) in enumerate(self.nodes):
            for t1, n1 in self.nodes[i:]:
                if t1 - t0 >= window:
                    best = max(best, (n1 - n0) / (t1 - t0))
                    break
        return best

    def latencies(self, until: float | None = None) -> tuple[list, int]:
        chosen = [s for t, s in self.latency if until is None or t <= until]
        return [s for s in chosen if s is not None], chosen.count(None)


class Watch:
    """Threads that sample Ironic (and the consumer) during a burst."""

    def __init__(self, ironic: IronicServer, target: int, run: Run,
                 consumer: ConsumerProcess | None = None) -> None:
        self.ironic, self.target, self.run = ironic, target, run
        self.consumer = consumer
        self.stop = threading.Event()
        self.all_there = threading.Event()
        self.start = time.perf_counter()
        self.threads = [threading.Thread(target=f, daemon=True) for f in
                        (self._count, self._unrelated, self._limit)]
        for thread in self.threads:
            thread.start()

    def now(self) -> float:
        return time.perf_counter() - self.start

    def _count(self) -> None:
        while not self.stop.is_set():
            try:
                count = len(requests.get(
                    f'{self.ironic.url}/v1/nodes?fields=uuid',
                    headers=HEADERS, timeout=30).json()['nodes'])
            except (requests.RequestException, ValueError, KeyError):
                count = self.run.nodes[-1][1] if self.run.nodes else 0
            self.run.nodes.append((self.now(), count))
            if count >= self.target:
                self.all_there.set()
                return
            self.stop.wait(0.5)

    def _unrelated(self) -> None:
        """An operator's client: the whole node list, once a second."""
        while not self.stop.is_set():
            began = time.perf_counter()
            try:
                requests.get(f'{self.ironic.url}/v1/nodes', headers=HEADERS,
                             timeout=30).raise_for_status()
                took: float | None = time.perf_counter() - began
            except requests.RequestException:
                took = None
            self.run.latency.append((began - self.start, took))
            self.stop.wait(max(0.0, 1.0 - (time.perf_counter() - began)))

    def _limit(self) -> None:
        while self.consumer is not None and not self.stop.is_set():
            try:
                value = self.consumer.gauge('hwbus_ironic_concurrency_limit')
            except requests.RequestException:
                value = None
            if value is not None:
                self.run.limit.append((self.now(), int(value)))
            self.stop.wait(1.0)

    def wait(self, timeout: float) -> None:
        self.all_there.wait(timeout)
        self.stop.set()
        for thread in self.threads:
            thread.join()


def documents(count: int, offset: int) -> list[dict]:
    return [boots.document('qemu-guest', boots.mac_for(offset + i))
            for i in range(count)]


def dead_letters(consumer: ConsumerProcess) -> int:
    return int(sum(float(line.split()[-1])
                   for line in consumer.metrics().splitlines()
                   if line.startswith('hwbus_messages_total{outcome="dead"')))


def run_hwbus(work: pathlib.Path, count: int, timeout: float,
              workers: int, ceiling: int, tolerance: float) -> Run:
    server, credentials = _broker.start()
    ironic = IronicServer(work / 'ironic-hwbus').start()
    config = write_config(
        work / 'hwbus.conf', server, str(credentials.store.engine.url),
        ironic.url, 'bench-consumer',
        extra=f'\n[consumer]\nworkers = {workers}\nprefetch = '
              f'{workers * 2}\nironic_concurrency = {ceiling}\n'
              f'ironic_latency_tolerance = {tolerance}\nmax_backoff = 30\n')
    config.write_text(config.read_text().replace('debug = true',
                                                 'debug = false'))
    consumer = ConsumerProcess(config, work / 'consumer.log').start()
    run = Run()
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

        watch = Watch(ironic, count, run, consumer)
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(boot, zip(issued, docs, strict=True)))
        run.detail = f'all published and confirmed in {watch.now():.1f} s'
        watch.wait(timeout)
        dead = dead_letters(consumer)
        run.lost = count - (run.nodes[-1][1] if run.nodes else 0)
        run.detail += f', {dead} dead-lettered'
        return run
    finally:
        consumer.stop()
        ironic.stop()
        server.stop()


def run_direct(work: pathlib.Path, count: int, timeout: float,
               clients: int) -> Run:
    ironic = IronicServer(work / 'ironic-direct').start()
    run = Run()
    try:
        docs = documents(count, 100000)
        failures: list[str] = []

        def post(doc):
            body = dict(doc['plugin_data'], inventory=doc['inventory'])
            try:
                response = requests.post(
                    f'{ironic.url}/v1/continue_inspection', json=body,
                    headers=HEADERS, timeout=60)
                if response.status_code not in (200, 202):
                    failures.append(str(response.status_code))
            except requests.RequestException as exc:
                failures.append(type(exc).__name__)

        watch = Watch(ironic, count, run)
        pool = concurrent.futures.ThreadPoolExecutor(clients)
        list(pool.submit(post, doc) for doc in docs)
        watch.wait(timeout)
        pool.shutdown(wait=True, cancel_futures=True)
        run.lost = len(failures)
        run.detail = (f'{len(failures)} requests failed '
                      f'{sorted(set(failures))[:5]}')
        return run
    finally:
        ironic.stop()


def describe(name: str, run: Run, count: int) -> float:
    """Print one path's figures; return its overall drain rate."""
    done = run.done(count)
    last_t, last_n = run.nodes[-1] if run.nodes else (0.0, 0)
    if done is None:
        rate = last_n / last_t if last_t else 0.0
        print(f'  {name}: {last_n}/{count} nodes after {last_t:.0f} s (not '
              f'all), {rate:.2f} nodes/s')
    else:
        rate = count / done
        print(f'  {name}: all {count} nodes after {done:.1f} s '
              f'({rate:.2f} nodes/s overall)')
    print(f'    best {BEST_WINDOW:.0f}-s rate {run.best_rate():.2f} nodes/s;'
          f' {run.detail}')
    if run.limit:
        values = [n for _, n in run.limit]
        print(f'    concurrency limit: min {min(values)}, median '
              f'{statistics.median(values):.0f}, max {max(values)}')
    return rate


def latency_line(label: str, samples: list[float], failed: int) -> str:
    if not samples:
        return f'    {label}: no answer ({failed} failed)'
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return (f'    {label}: median {statistics.median(ordered) * 1000:.0f} '
            f'ms, p95 {p95 * 1000:.0f} ms, worst {ordered[-1] * 1000:.0f} '
            f'ms, {failed} failed, {len(ordered)} answered')


def plot(path: str, count: int, hwbus: Run, direct: Run,
         clients: int) -> None:
    import matplotlib

    matplotlib.use('Agg')
    from matplotlib import pyplot

    figure, (nodes, latency) = pyplot.subplots(
        2, 1, figsize=(7, 6), sharex=True,
        gridspec_kw={'height_ratios': [3, 2]})
    for label, run, colour in (
            ('hwbus (queue + consumer)', hwbus, 'tab:blue'),
            (f'direct continue_inspection, {clients} clients', direct,
             'tab:orange')):
        nodes.plot([t for t, _ in run.nodes], [n for _, n in run.nodes],
                   label=label, color=colour)
        latency.plot([t for t, s in run.latency if s is not None],
                     [s for _, s in run.latency if s is not None],
                     color=colour, linewidth=0.8)
        failed = [t for t, s in run.latency if s is None]
        if failed:
            latency.plot(failed, [30.0] * len(failed), 'x', color=colour)
    if hwbus.limit:
        limits = nodes.twinx()
        limits.step([t for t, _ in hwbus.limit], [n for _, n in hwbus.limit],
                    where='post', color='tab:green', linewidth=0.8)
        limits.set_ylabel('hwbus concurrency limit', color='tab:green')
    nodes.axhline(count, color='grey', linewidth=0.5)
    nodes.set_ylabel('nodes in Ironic')
    nodes.set_title(f'{count} boots at once, standalone Ironic')
    nodes.legend(loc='upper left')
    latency.set_yscale('log')
    latency.set_ylabel('unrelated GET /v1/nodes (s)')
    latency.set_xlabel('seconds since the burst started (x: failed)')
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    print(f'  plot: {path}')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--boots', type=int, default=1000)
    parser.add_argument('--timeout', type=float, default=1800,
                        help='seconds each path may take at most')
    parser.add_argument('--clients', type=int, default=32,
                        help='concurrent clients of the direct path')
    parser.add_argument('--workers', type=int, default=16)
    parser.add_argument('--ceiling', type=int, default=16,
                        help='[consumer] ironic_concurrency')
    parser.add_argument('--tolerance', type=float, default=2.0,
                        help='[consumer] ironic_latency_tolerance')
    parser.add_argument('--plot', metavar='FILE')
    parser.add_argument('--replot', metavar='RUNS_JSON',
                        help='only plot the samples an earlier run saved')
    args = parser.parse_args()
    if args.replot:
        saved = json.loads(pathlib.Path(args.replot).read_text())
        plot(args.plot, args.boots, Run(**saved['hwbus']),
             Run(**saved['direct']), args.clients)
        return
    work = pathlib.Path(tempfile.mkdtemp(prefix='hwbus-burst-'))
    hwbus = run_hwbus(work, args.boots, args.timeout, args.workers,
                      args.ceiling, args.tolerance)
    direct = run_direct(work, args.boots, args.timeout, args.clients)
    print(f'{args.boots} boots at once into a standalone Ironic (SQLite, '
          f'2 cores)')
    hwbus_rate = describe(f'hwbus ({args.workers} workers, ceiling '
                          f'{args.ceiling}, tolerance {args.tolerance:g})',
                          hwbus, args.boots)
    print(latency_line('unrelated GET /v1/nodes, whole burst',
                       *hwbus.latencies()))
    describe(f'direct ({args.clients} clients)', direct, args.boots)
    print(latency_line(f'unrelated GET /v1/nodes, first '
                       f'{BEST_WINDOW:.0f} s', *direct.latencies(BEST_WINDOW)))
    print(latency_line('unrelated GET /v1/nodes, whole burst',
                       *direct.latencies()))
    print(f'  lost: hwbus {hwbus.lost}, direct {direct.lost}')
    if direct.best_rate():
        print(f'  hwbus overall rate / direct best {BEST_WINDOW:.0f}-s rate:'
              f' {hwbus_rate / direct.best_rate():.2f}')
    (work / 'runs.json').write_text(json.dumps(
        {'hwbus': dataclasses.asdict(hwbus),
         'direct': dataclasses.asdict(direct)}))
    print(f'  samples: {work / "runs.json"}')
    if args.plot:
        plot(args.plot, args.boots, hwbus, direct, args.clients)


if __name__ == '__main__':
    main()
