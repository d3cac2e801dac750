"""The schema validation under 100,000 generated documents.

All three validators (fastjsonschema on the consumer's hot path, the
standard-library check of one-shot processes, jsonschema for the error
report) see the same documents: the recorded machines' real
inventories with values replaced, keys dropped or added, and containers
swapped, plus hypothesis-generated JSON. None may raise anything but
its own validation result, and they must agree on every document: a
fast path may never accept what the full schema refuses.

Seeded, so a failure reproduces; HWBUS_FUZZ_COUNT changes the count.
"""

import json
import os
import pathlib
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwbus import inventory
from tests.unit.machine import json_paths

COUNT = int(os.environ.get('HWBUS_FUZZ_COUNT', '100000'))
MACHINES = pathlib.Path(__file__).parents[1] / 'fixtures' / 'machines'
DOCUMENTS = [json.loads(p.read_text())
             for p in sorted(MACHINES.glob('*/expected.json'))]
ODD = [None, True, False, 0, -1, 2 ** 63, 2 ** 64 + 1, -2 ** 70, 1.5e308,
       -0.0, '', 'x' * 5000, '\udcff'.encode('utf-8', 'surrogatepass')
       .decode('utf-8', 'replace'), '\x00', '../../etc', [], {}, [None],
       {'': None}, {'a': {'b': {'c': []}}}]


PATHS = [list(json_paths(d)) for d in DOCUMENTS]


def _change(node, path, rng: random.Random):
    """node with one change at path; containers along the path copied,
    the rest shared (the base documents are never modified)."""
    if not path:
        return rng.choice(ODD)
    head, rest = path[0], path[1:]
    if isinstance(node, dict) and head in node:
        copy = dict(node)
        if rest:
            copy[head] = _change(node[head], rest, rng)
            return copy
        kind = rng.randrange(4)
        if kind == 0:
            copy[head] = rng.choice(ODD)
        elif kind == 1:
            del copy[head]
        elif kind == 2:
            copy[f'extra-{rng.randrange(99)}'] = rng.choice(ODD)
        else:
            value = node[head]
            copy[head] = [value] if not isinstance(value, list) \
                else {'0': value}
        return copy
    if isinstance(node, list) and isinstance(head, int) and \
            head < len(node):
        copy = list(node)
        copy[head] = (_change(node[head], rest, rng) if rest
                      else rng.choice(ODD))
        if not rest and rng.random() < 0.3:
            del copy[head]
        return copy
    return node


def _mutate(i: int, rng: random.Random):
    which = i % len(DOCUMENTS)
    doc = DOCUMENTS[which]
    for _ in range(rng.randint(1, 3)):
        doc = _change(doc, rng.choice(PATHS[which]), rng)
    return doc


def _check(document) -> bool:
    fast = inventory.is_valid(document)
    found = inventory.problems(document)
    assert fast == (found == []), (fast, found[:3])
    assert inventory._quick()(document) == fast
    assert inventory.problems_once(document) == found
    return fast


def test_mutated_inventories_never_crash_and_the_validators_agree():
    """Every document through the consumer's fast check; one in 20 also
    through the standard-library check and the full report, which must
    agree."""
    rng = random.Random(1)
    accepted = 0
    for i in range(COUNT):
        document = _mutate(i, rng)
        if i % 20 == 0:
            accepted += _check(document)
        else:
            inventory.is_valid(document)
    # Most mutations break the schema; some (an extra key where extra
    # keys are allowed, a nullable field set to null) do not.
    assert 0 < accepted < COUNT // 20


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() |
    st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) |
    st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=30)


@settings(max_examples=3000, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.fixed_dictionaries({'inventory': JSON, 'plugin_data': JSON}) |
       JSON)
def test_arbitrary_json_never_crashes_the_validators(document):
    assert not _check(document) or isinstance(document, dict)


def test_the_recorded_machines_are_valid():
    assert all(_check(d) for d in DOCUMENTS) and len(DOCUMENTS) >= 3
