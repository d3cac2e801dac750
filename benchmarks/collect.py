"""Collection speed: hwbus against ironic-python-agent and lshw.

Times, on this machine and in the same run:

* hwbus: ``collect()`` of every built-in collector, in one process;
* ironic-python-agent: ``hardware.list_hardware_info()``, in one process
  (from .cache/ipa-venv: ``tools/install-deps --bench``);
* ``lshw -json``, which ironic-python-agent runs inside that call;
* both whole commands from a cold interpreter (imports included).

Prints medians of N runs (default 15) and hwbus's time as a ratio of each
reference, plus how many values each document holds.

    .venv/bin/python benchmarks/collect.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import subprocess
import sys
import time

from hwbus.ramdisk.collectors import runner
from hwbus.ramdisk.probes.sysroot import SystemRoot

TOP = pathlib.Path(__file__).resolve().parents[1]
IPA_PYTHON = TOP / '.cache' / 'ipa-venv' / 'bin' / 'python'
IPA_DRIVER = pathlib.Path(__file__).with_name('_ipa_collect.py')


def leaves(value) -> int:
    """How many scalar values a document holds (lists and dicts opened)."""
    if isinstance(value, dict):
        return sum(leaves(v) for v in value.values())
    if isinstance(value, list):
        return sum(leaves(v) for v in value) or 0
    return 0 if value in (None, '') else 1


def timed(func, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return times


def run_cmd(argv: list[str]) -> None:
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--runs', type=int, default=15)
    args = parser.parse_args()
    if not IPA_PYTHON.exists():
        print('ironic-python-agent is not installed: run '
              'tools/install-deps --bench', file=sys.stderr)
        return 2

    ipa_proc = subprocess.Popen(
        [str(IPA_PYTHON), str(IPA_DRIVER)], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    ipa_import = json.loads(ipa_proc.stdout.readline())['import_s']

    def ipa_once() -> dict:
        ipa_proc.stdin.write('go\n')
        ipa_proc.stdin.flush()
        return json.loads(ipa_proc.stdout.readline())

    # Warm the page cache and the tools once, for everyone alike.
    document = runner.collect(SystemRoot('/'))
    ipa_inventory = ipa_once()['inventory']

    # Rounds interleave the contenders, so that drift in the machine's
    # load hits all of them alike.
    times: dict[str, list[float]] = {k: [] for k in (
        'hwbus', 'ipa', 'lshw', 'hwbus_cold', 'ipa_cold')}
    for _ in range(args.runs):
        times['hwbus'] += timed(lambda: runner.collect(SystemRoot('/')), 1)
        times['ipa'].append(ipa_once()['seconds'])
        times['lshw'] += timed(lambda: run_cmd(['lshw', '-quiet', '-json']),
                               1)
        times['hwbus_cold'] += timed(lambda: run_cmd(
            [str(TOP / '.venv' / 'bin' / 'hwbus-collect')]), 1)
        times['ipa_cold'] += timed(lambda: run_cmd(
            [str(IPA_PYTHON), str(IPA_DRIVER), '--once']), 1)
    ipa_proc.stdin.close()
    ipa_proc.wait()

    med = {name: statistics.median(values) for name, values in times.items()}
    hw_values = leaves(document)
    ipa_values = leaves(ipa_inventory)

    print(f'collection on this machine, median of {args.runs} runs')
    print(f'{"":34}{"median ms":>10}{"hwbus / this":>14}')
    rows = [
        ('hwbus collect() in-process', med['hwbus'], None),
        ('IPA list_hardware_info()', med['ipa'], med['hwbus'] / med['ipa']),
        ('lshw -json', med['lshw'], med['hwbus'] / med['lshw']),
        ('hwbus-collect command (cold)', med['hwbus_cold'], None),
        ('IPA collection command (cold)', med['ipa_cold'],
         med['hwbus_cold'] / med['ipa_cold']),
    ]
    for label, value, ratio in rows:
        shown = f'{ratio:14.2f}' if ratio is not None else f'{"":14}'
        print(f'{label:34}{value * 1000:10.1f}{shown}')
    print(f'values collected: hwbus {hw_values}, IPA inventory {ipa_values} '
          f'({hw_values / ipa_values:.1f}x)')
    print(f'IPA import and setup: {ipa_import * 1000:.0f} ms')
    return 0


if __name__ == '__main__':
    sys.exit(main())
