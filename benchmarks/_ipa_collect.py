"""Runs ironic-python-agent's own collection; used by collect.py.

Executed with the interpreter of .cache/ipa-venv (IPA and its pins live
apart from hwbus). Prints a JSON line with the time its imports took, then
for every line read on stdin runs IPA's ``list_hardware_info`` once and
prints a JSON line with the seconds it took and the inventory, so that the
benchmark can interleave IPA's runs with hwbus's. With --once it runs once
and exits (the cold-start measurement).
"""

import json
import sys
import time

started = time.perf_counter()
from ironic_python_agent import (  # noqa: E402
    config,  # noqa: F401 - registers opts
    encoding,
    hardware,
)
from oslo_config import cfg  # noqa: E402

cfg.CONF([], project='ironic-python-agent')
hardware.get_managers()
imported = time.perf_counter() - started



def once() -> dict:
    start = time.perf_counter()
    info = hardware.list_hardware_info(use_cache=False)
    elapsed = time.perf_counter() - start
    return {'seconds': elapsed, 'inventory': json.loads(
        json.dumps(info, cls=encoding.RESTJSONEncoder))}


if '--once' in sys.argv:
    once()
    sys.exit(0)
print(json.dumps({'import_s': imported}), flush=True)
for _line in sys.stdin:
    print(json.dumps(once()), flush=True)
