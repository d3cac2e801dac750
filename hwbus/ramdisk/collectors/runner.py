"""Running the collectors and assembling one hardware document.

Collectors run in parallel threads (most of their time is waiting on
dmidecode, lsblk, ipmitool or an LLDP listen) under one overall deadline.
A collector that raises or overruns costs only its own part: its error is
recorded in ``plugin_data.errors`` and the document still goes out, as
ironic-python-agent does, because a machine that reports nothing cannot be
debugged.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from importlib import metadata
from typing import Any

from hwbus import inventory
from hwbus.errors import PermanentError
from hwbus.ramdisk.collectors.base import Collector, Contribution, Options
from hwbus.ramdisk.probes.sysroot import SystemRoot
from hwbus.version import version_string

LOG = logging.getLogger(__name__)

NAMESPACE = 'hwbus.collectors'
# Seconds all collectors together may take, beyond the LLDP listen time.
DEFAULT_DEADLINE = 60.0
# Most collector errors one document carries (the schema allows 256).
MAX_ERRORS = 200
# Built-in collectors in the order their results are merged.
DEFAULT_COLLECTORS = ('system', 'boot', 'cpu', 'memory', 'disks',
                      'interfaces', 'bmc', 'pci', 'gpus', 'numa', 'dmi',
                      'lldp')


class UnknownCollector(PermanentError, ValueError):
    """A collector name that no installed entry point provides."""

    reason = 'unknown-collector'


def available() -> dict[str, metadata.EntryPoint]:
    """Installed collectors by name (built-in and site plug-ins)."""
    return {ep.name: ep for ep in metadata.entry_points(group=NAMESPACE)}


def load(names: Iterable[str] | None = None
         ) -> dict[str, Collector | Exception]:
    """The collectors to run: the named ones, or all installed ones.

    Built-ins come first in their documented order, plug-ins after them
    in name order, so that merging is deterministic. A plug-in that fails
    to import is returned as its exception, to be reported, not raised.
    """
    installed = available()
    if names is None:
        wanted = [n for n in DEFAULT_COLLECTORS if n in installed]
        wanted += sorted(set(installed) - set(DEFAULT_COLLECTORS))
    else:
        wanted = list(dict.fromkeys(names))
        missing = [n for n in wanted if n not in installed]
        if missing:
            raise UnknownCollector(
                f'unknown collector(s): {", ".join(missing)}; installed: '
                f'{", ".join(sorted(installed))}')
    loaded: dict[str, Collector | Exception] = {}
    for name in wanted:
        try:
            loaded[name] = installed[name].load()
        except Exception as exc:
            LOG.error('Collector %s cannot be loaded: %s', name, exc)
            loaded[name] = exc
    return loaded


class _Run(threading.Thread):
    """One collector on its own daemon thread, so a hang cannot block exit."""

    def __init__(self, name: str, func: Collector | Exception,
                 root: SystemRoot,
                 options: Options) -> None:
        super().__init__(name=f'collector-{name}', daemon=True)
        self.collector = name
        self.func, self.root, self.options = func, root, options
        self.result: Contribution | None = None
        self.error: str | None = None
        self.elapsed = 0.0

    def run(self) -> None:
        start = time.monotonic()
        try:
            if isinstance(self.func, Exception):
                raise self.func
            result = self.func(self.root, self.options)
            if not isinstance(result, Contribution):
                raise TypeError(f'returned {type(result).__name__}, '
                                f'not a Contribution')
            self.result = result
        except Exception as exc:
            LOG.warning('Collector %s failed: %s', self.collector, exc,
                        exc_info=LOG.isEnabledFor(logging.DEBUG))
            self.error = f'{type(exc).__name__}: {exc}'
        self.elapsed = time.monotonic() - start


def _merge(document: dict[str, Any], part: Contribution, name: str,
           owners: dict[tuple[str, str], str]) -> None:
    for section in ('inventory', 'plugin_data'):
        for key, value in getattr(part, section).items():
            if (section, key) in (('plugin_data', 'errors'),
                                  ('plugin_data', 'collection')):
                continue
            document[section][key] = value
            owners[(section, key)] = name


def _quarantine(document: dict[str, Any],
                owners: dict[tuple[str, str], str]) -> None:
    """Drop whatever part breaks the schema, and say which collector.

    A site plug-in (or a machine stranger than any we have seen) must not
    cost the whole document: the offending key goes back to "unknown" and
    the problem is recorded against the collector that wrote it.
    """
    empty = inventory.empty_document()
    broken: dict[tuple[str, str], list[str]] = {}
    for path, message in inventory.locate(document):
        if len(path) < 2 or path[0] not in ('inventory', 'plugin_data'):
            continue
        where = '/'.join(str(p) for p in path)
        broken.setdefault((str(path[0]), str(path[1])), []).append(
            f'{where}: {message}')
    for (section, key), found in broken.items():
        document['plugin_data']['errors'].append({
            'collector': owners.get((section, key), 'hwbus'),
            'message': f'dropped {section}.{key}: {"; ".join(found)}'[
                :4096]})
        if key in empty[section]:
            document[section][key] = empty[section][key]
        else:
            document[section].pop(key, None)


def _finish(document: dict[str, Any]) -> None:
    """Cross-collector touches: LLDP frames onto their interfaces."""
    lldp_raw = document['plugin_data'].get('lldp_raw')
    if lldp_raw is not None:
        for interface in document['inventory']['interfaces']:
            interface['lldp'] = lldp_raw.get(interface['name'], [])


def _cap_errors(errors: list[dict[str, str]]) -> None:
    if len(errors) > MAX_ERRORS:
        dropped = len(errors) - MAX_ERRORS + 1
        del errors[MAX_ERRORS - 1:]
        errors.append({'collector': 'hwbus',
                       'message': f'{dropped} more errors not shown'})


def collect(root: SystemRoot, options: Options | None = None,
            names: Iterable[str] | None = None,
            deadline: float = DEFAULT_DEADLINE) -> dict[str, Any]:
    """Collect a whole hardware document from root.

    :param names: collectors to run; all installed ones when None.
    :param deadline: seconds to wait for all collectors, on top of the
        LLDP listen time; stragglers are reported as errors.
    :raises UnknownCollector: a requested collector is not installed.
    """
    options = options or Options()
    runs = [_Run(name, func, root, options)
            for name, func in load(names).items()]
    started = time.monotonic()
    for run in runs:
        run.start()
    until = started + deadline + max(options.lldp_timeout, 0)
    for run in runs:
        run.join(max(until - time.monotonic(), 0))

    document = inventory.empty_document()
    errors = document['plugin_data']['errors']
    durations: dict[str, float] = {}
    owners: dict[tuple[str, str], str] = {}
    for run in runs:
        if run.is_alive():
            errors.append({'collector': run.collector,
                           'message': f'did not finish within '
                                      f'{until - started:.0f} s'})
            continue
        durations[run.collector] = round(run.elapsed * 1000, 1)
        if run.error or run.result is None:
            errors.append({'collector': run.collector,
                           'message': (run.error or 'no result')[:4096]})
            continue
        _merge(document, run.result, run.collector, owners)
        errors.extend({'collector': run.collector, 'message': m[:4096]}
                      for m in run.result.errors)
    _finish(document)
    _cap_errors(errors)
    _quarantine(document, owners)
    _cap_errors(document['plugin_data']['errors'])
    document['plugin_data']['collection'] = {
        'hwbus_version': version_string(),
        'collectors': [run.collector for run in runs],
        'duration_ms': durations,
    }
    return document
