"""Collection speed: hwbus against ironic-python-agent and lshw.

Times, on this machine and in the same run:

* hwbus: ``collect()`` of every built-in collector, in one process;
* ironic-python-agent: ``hardware.list_hardware_info()``, in one process
  (from .cache/ipa-venv: ``tools/install-deps --bench``);
* ``lshw -json``, which ironic-python-agent runs inside that call;
* both whole commands from a cold interpreter (imports included), as a
  ramdisk runs them once per boot: ``hwbus-collect`` is the console
  script next to the interpreter running this benchmark (so a checkout on
  PYTHONPATH is measured as it is).

Prints medians of N runs (default 15) and hwbus's time as a ratio of each
reference, how many values each document holds, where the cold
``hwbus-collect`` spends its import time (``python -X importtime``,
median of the runs) and the load average before and after.

With ``--against DIR`` (another checkout, e.g. ``git archive`` of an
older commit) that tree's ``hwbus-collect`` is run cold in the same
rounds, with its code first on PYTHONPATH, and gets its own row and
import breakdown: a before / after in one run.

    .venv/bin/python benchmarks/collect.py [--runs N] [--against DIR]
"""

from __future__ import annotations

import argparse
import json
import os
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
# The cold-start target (issue 16), shown beside the cold row.
COLD_TARGET_S = 0.150
# How many importers the import-time breakdown lists.
TOP_IMPORTERS = 12


def hwbus_collect_command() -> list[str]:
    """hwbus-collect as installed for this interpreter."""
    script = pathlib.Path(sys.executable).with_name('hwbus-collect')
    if script.exists():
        return [str(script)]
    return [sys.executable, '-m', 'hwbus.cmd.collect']


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


def run_cmd(argv: list[str], env: dict[str, str] | None = None) -> None:
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, env=env)


def with_tree(tree: str | None) -> dict[str, str] | None:
    """The environment that runs hwbus from tree (None: this one)."""
    return None if tree is None else dict(os.environ, PYTHONPATH=tree)


def import_times(command: list[str], tree: str | None = None
                 ) -> dict[str, tuple[int, float]]:
    """One cold run under ``-X importtime``: for each module, its depth
    in the import tree and its cumulative import time in seconds."""
    env = dict(with_tree(tree) or os.environ, PYTHONPROFILEIMPORTTIME='1')
    done = subprocess.run(command, env=env, check=True, text=True,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    found: dict[str, tuple[int, float]] = {}
    for line in done.stderr.splitlines():
        if not line.startswith('import time:') or 'cumulative' in line:
            continue
        _, cumulative, name = line.split('|')
        depth = (len(name) - len(name.lstrip())) // 2
        found[name.strip()] = (depth, int(cumulative) / 1e6)
    return found


def top_importers(runs: list[dict[str, tuple[int, float]]]
                  ) -> list[tuple[str, int, float]]:
    """The modules with the largest median cumulative import time, as
    (name, depth, seconds); a module only some runs load counts as 0
    in the others."""
    names = set().union(*runs)
    medians = []
    for name in names:
        depth = next(run[name][0] for run in runs if name in run)
        medians.append((name, depth, statistics.median(
            run[name][1] if name in run else 0.0 for run in runs)))
    medians.sort(key=lambda row: -row[2])
    return medians[:TOP_IMPORTERS]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--runs', type=int, default=15)
    parser.add_argument('--against', metavar='DIR',
                        help='also run this checkout\'s hwbus-collect cold '
                             '(before / after)')
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

    hwbus_cold = hwbus_collect_command()
    load_before = os.getloadavg()
    # Rounds interleave the contenders, so that drift in the machine's
    # load hits all of them alike.
    times: dict[str, list[float]] = {k: [] for k in (
        'hwbus', 'ipa', 'lshw', 'hwbus_cold', 'ipa_cold', 'against_cold')}
    imports: dict[str, list] = {'this tree': [], args.against: []}
    against = with_tree(args.against)
    for _ in range(args.runs):
        times['hwbus'] += timed(lambda: runner.collect(SystemRoot('/')), 1)
        times['ipa'].append(ipa_once()['seconds'])
        times['lshw'] += timed(lambda: run_cmd(['lshw', '-quiet', '-json']),
                               1)
        times['hwbus_cold'] += timed(lambda: run_cmd(hwbus_cold), 1)
        times['ipa_cold'] += timed(lambda: run_cmd(
            [str(IPA_PYTHON), str(IPA_DRIVER), '--once']), 1)
        if args.against:
            times['against_cold'] += timed(
                lambda: run_cmd(hwbus_cold, env=against), 1)
            imports[args.against].append(
                import_times(hwbus_cold, args.against))
        # Apart from the timed cold run: -X importtime slows imports.
        imports['this tree'].append(import_times(hwbus_cold))
    ipa_proc.stdin.close()
    ipa_proc.wait()
    load_after = os.getloadavg()

    med = {name: statistics.median(values)
           for name, values in times.items() if values}
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
    if args.against:
        rows.append(('hwbus-collect (cold), --against', med['against_cold'],
                     med['hwbus_cold'] / med['against_cold']))
    for label, value, ratio in rows:
        shown = f'{ratio:14.2f}' if ratio is not None else f'{"":14}'
        print(f'{label:34}{value * 1000:10.1f}{shown}')
    print(f'values collected: hwbus {hw_values}, IPA inventory {ipa_values} '
          f'({hw_values / ipa_values:.1f}x)')
    print(f'IPA import and setup: {ipa_import * 1000:.0f} ms')
    verdict = 'met' if med['hwbus_cold'] <= COLD_TARGET_S else 'MISSED'
    print(f'hwbus-collect cold: {med["hwbus_cold"] * 1000:.1f} ms, target '
          f'{COLD_TARGET_S * 1000:.0f} ms {verdict} '
          f'({" ".join(hwbus_cold)})')
    for tree, runs in imports.items():
        if not runs:
            continue
        print(f'hwbus-collect imports ({tree}), median cumulative ms under '
              f'-X importtime (top {TOP_IMPORTERS}):')
        for name, depth, seconds in top_importers(runs):
            print(f'  {seconds * 1000:7.1f}  {"  " * depth}{name}')
    print('load average (1, 5, 15 min): before '
          + ' '.join(f'{v:.2f}' for v in load_before) + ', after '
          + ' '.join(f'{v:.2f}' for v in load_after))
    return 0


if __name__ == '__main__':
    sys.exit(main())
