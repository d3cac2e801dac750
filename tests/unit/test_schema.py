"""The document schema: what is valid, what is not, and the docs example."""

import copy
import json
import pathlib

import pytest

from hwbus import inventory
from hwbus.inventory import quick
from tests.unit.machine import json_paths

EXAMPLE = pathlib.Path(__file__).parents[2] / 'docs' / 'inventory-example.json'


def test_the_schema_is_itself_valid_json_schema():
    import jsonschema
    cls = jsonschema.validators.validator_for(inventory.schema())
    cls.check_schema(inventory.schema())


def test_an_empty_document_is_valid():
    inventory.validate(inventory.empty_document())


def test_the_example_in_the_docs_is_valid():
    inventory.validate(json.loads(EXAMPLE.read_text()))


@pytest.mark.parametrize('mutate, where', [
    (lambda d: d['inventory'].pop('cpu'), 'inventory'),
    (lambda d: d['inventory']['interfaces'].append(
        {'name': 'eth0', 'mac_address': 'a0:00:02:20:fe:80:00:00'}),
     'inventory/interfaces/0'),
    (lambda d: d['inventory']['disks'].append({'name': 'sda'}),
     'inventory/disks/0'),
    (lambda d: d['inventory']['boot'].update(current_boot_mode='efi'),
     'inventory/boot/current_boot_mode'),
    (lambda d: d['inventory']['cpu'].update(count=-1),
     'inventory/cpu/count'),
    (lambda d: d.update(extra=1), '(root)'),
    (lambda d: d['inventory']['cpu'].update(model_name='x' * 5000),
     'inventory/cpu/model_name'),
    (lambda d: d['plugin_data'].update(lldp_raw={'eth0': [[200, 'zz']]}),
     'plugin_data/lldp_raw/eth0/0'),
])
def test_invalid_documents_are_refused_with_where(mutate, where):
    document = inventory.empty_document()
    mutate(document)
    with pytest.raises(inventory.InvalidDocument) as caught:
        inventory.validate(document)
    assert any(p.startswith(where) for p in caught.value.problems), \
        caught.value.problems


def test_site_plugin_data_keys_are_allowed():
    document = inventory.empty_document()
    document['plugin_data']['site_asset_db'] = {'rack': 'A12'}
    inventory.validate(document)


def test_empty_document_is_a_fresh_copy_each_time():
    first = inventory.empty_document()
    first['inventory']['disks'].append(1)
    assert inventory.empty_document()['inventory']['disks'] == []
    assert copy.deepcopy(inventory.empty_document()) == \
        inventory.empty_document()


def _machines():
    import pathlib
    top = pathlib.Path(__file__).parents[1] / 'fixtures' / 'machines'
    # The smallest real document keeps the slow reference check quick.
    return [json.loads((top / 'qemu-guest' / 'expected.json').read_text())]


_FUZZ_VALUES = [None, 0, -1, 1.5, '', 'x', [], {}, [1, 'aa'], [[1, 'aa']],
                [['x', 'aa']], [[1, 'aa', 'b']], True, 'aa:bb']


def test_fast_validators_agree_with_jsonschema_on_every_mutation():
    """fastjsonschema (consumer), the standard-library check (ramdisk)
    and jsonschema (reports) must call the same documents valid: every
    field of every recorded machine replaced by each of a set of wrong
    and right values."""
    import copy

    from hwbus import inventory

    assert inventory._fast() is not None
    checked = 0
    for document in _machines():
        for path in list(json_paths(document, 3))[1:300]:
            for value in _FUZZ_VALUES:
                mutated = copy.deepcopy(document)
                node = mutated
                for key in path[:-1]:
                    node = node[key]
                node[path[-1]] = value
                slow = not any(True for _ in
                               inventory._validator().iter_errors(mutated))
                assert inventory.is_valid(mutated) == slow, (path, value)
                assert inventory._quick()(mutated) == slow, (path, value)
                checked += 1
    assert checked > 2000


# Every value in a document has a bound --------------------------------------
#
# The schema is the only gate between a signed message and Ironic: a holder
# of a valid per-boot credential can sign anything. So no value may be
# unbounded, and the rule is checked on the schema itself, node by node,
# rather than field by field.

MACHINES = pathlib.Path(__file__).parents[1] / 'fixtures' / 'machines'
RECORDED = sorted(p.parent.name for p in MACHINES.glob('*/expected.json'))

# Keywords whose values are subschemas, and every other keyword the schema
# may use. Anything else (anyOf, $ref, ...) fails the walk below, so a new
# construct cannot carry an unbounded branch past it.
_SUBSCHEMA_KEYWORDS = {'properties', 'items', 'prefixItems',
                       'additionalProperties', 'propertyNames'}
_OTHER_KEYWORDS = {'$schema', '$id', 'title', 'description', 'type',
                   'required', 'enum', 'const', 'minimum', 'maximum',
                   'minLength', 'maxLength', 'pattern', 'minItems',
                   'maxItems', 'maxProperties'}
# The one place that takes arbitrary JSON: site collectors' own plugin_data
# keys (their number and names are bounded; their size only by the
# envelope's 1 MiB).
_OPEN_OBJECTS = {('properties', 'plugin_data')}


def _subschemas(path=(), node=None):
    """(path, node) for the schema and every subschema in it."""
    node = inventory.schema() if node is None else node
    yield path, node
    for key in _SUBSCHEMA_KEYWORDS & node.keys():
        value = node[key]
        if key == 'properties':
            for name, child in value.items():
                yield from _subschemas((*path, key, name), child)
        elif key == 'prefixItems':
            for index, child in enumerate(value):
                yield from _subschemas((*path, key, index), child)
        elif isinstance(value, dict):
            yield from _subschemas((*path, key), value)


def _unbounded(path, node) -> list[str]:
    """What is wrong with one schema node under the every-value-bounded
    rule; empty when nothing is."""
    wrong = [f'unknown keyword {k}' for k in node.keys() -
             _SUBSCHEMA_KEYWORDS - _OTHER_KEYWORDS]
    if 'enum' in node or 'const' in node:
        return wrong
    types = node.get('type')
    types = {types} if isinstance(types, str) else set(types or ())
    if not types:
        wrong.append('no type: anything goes')
    if types & {'integer', 'number'}:
        low, high = node.get('minimum'), node.get('maximum')
        if low is None or high is None or not low <= high:
            wrong.append(f'number without minimum and maximum '
                         f'({low}, {high})')
    if 'string' in types and 'maxLength' not in node:
        wrong.append('string without maxLength')
    if 'array' in types:
        if 'maxItems' not in node:
            wrong.append('array without maxItems')
        if 'items' not in node and not (
                'prefixItems' in node and
                node.get('maxItems', 1e9) <= len(node['prefixItems'])):
            wrong.append('array items without a schema')
    if 'object' in types and node.get('additionalProperties') is not False:
        if 'maxProperties' not in node:
            wrong.append('open object without maxProperties')
        if 'maxLength' not in node.get('propertyNames', {}):
            wrong.append('open object without propertyNames.maxLength')
        if node.get('additionalProperties', True) is True and \
                path not in _OPEN_OBJECTS:
            wrong.append('object takes any value under any extra key')
    return wrong


def test_every_value_in_the_schema_has_a_bound():
    """Every integer and number has a minimum and a maximum, every string
    a maxLength (or an enum), every array maxItems, every object either no
    extra keys or a bounded number of bounded ones."""
    found = {'/'.join(map(str, path)) or '(root)': wrong
             for path, node in _subschemas()
             if (wrong := _unbounded(path, node))}
    assert found == {}


def test_the_bound_walk_sees_every_number_in_the_schema():
    """The walk above reaches every numeric node: as many as the schema
    text has "integer" and "number" types."""
    text = json.dumps(inventory.schema())
    numeric = sum(1 for _, node in _subschemas()
                  if _numeric_schema_node(node))
    assert numeric == text.count('"integer"') + text.count('"number"')
    assert numeric >= 45


def test_the_bound_walk_refuses_unbounded_nodes():
    assert _unbounded((), {'type': 'integer', 'minimum': 0})
    assert _unbounded((), {'type': ['string', 'null']})
    assert _unbounded((), {'type': 'array', 'items': {}})
    assert _unbounded((), {'type': 'object', 'maxProperties': 3})
    assert _unbounded((), {'anyOf': [{'type': 'integer'}]})
    assert not _unbounded((), {'type': 'string', 'enum': ['a']})


def _with(document, path, value):
    document = copy.deepcopy(document)
    node = document
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return document


def _both_validators(document) -> tuple[bool, bool]:
    """(fastjsonschema's answer, jsonschema's answer): valid or not.

    The standard-library check (hwbus-collect, the ramdisk) must give
    jsonschema's answer too."""
    slow = not any(True for _ in inventory._validator().iter_errors(document))
    assert inventory._quick()(document) == slow
    return inventory.is_valid(document), slow


def test_documents_with_absurd_memory_cpus_or_disks_are_invalid():
    """The values that once reached Ironic, and their neighbours."""
    base = inventory.empty_document()
    disk = json.loads((MACHINES / 'qemu-guest' / 'expected.json')
                      .read_text())['inventory']['disks'][0]
    base['inventory']['disks'] = [disk]
    assert _both_validators(base) == (True, True)
    for path, value in [
            (('inventory', 'memory', 'physical_mb'), 10 ** 30),
            (('inventory', 'memory', 'total'), 10 ** 30),
            (('inventory', 'cpu', 'count'), 2 ** 63),
            (('inventory', 'cpu', 'socket_count'), 2 ** 63),
            (('inventory', 'disks', 0, 'size'), 2 ** 60 + 1),
            (('inventory', 'disks', 0, 'size'), 10 ** 30),
            (('inventory', 'cpu', 'frequency'), '1' * 30),
            (('inventory', 'cpu', 'frequency'), '1e309')]:
        document = _with(base, path, value)
        assert not inventory.is_valid(document), (path, value)
        where = '/'.join(map(str, path))
        assert any(p.startswith(where) for p in inventory.problems(document))
        assert _both_validators(document) == (False, False), (path, value)


def _numeric_schema(path):
    """The schema node a document path leads to, when it is numeric."""
    node = inventory.schema()
    for key in path:
        if isinstance(key, int):
            prefix = node.get('prefixItems', [])
            node = prefix[key] if key < len(prefix) else node.get('items')
        elif key in node.get('properties', {}):
            node = node['properties'][key]
        else:
            node = node.get('additionalProperties')
        if not isinstance(node, dict):
            return None
    return node if _numeric_schema_node(node) else None


def _numeric_schema_node(node) -> bool:
    types = node.get('type', [])
    return bool({'integer', 'number'} &
                set([types] if isinstance(types, str) else types))


def _numeric_documents():
    """The recorded machines, the docs example (it keeps the collection
    timings) and one machine with LLDP heard: between them every numeric
    field of the schema."""
    documents = [json.loads((MACHINES / name / 'expected.json').read_text())
                 for name in RECORDED]
    documents.append(json.loads(EXAMPLE.read_text()))
    heard = copy.deepcopy(documents[0])
    heard['inventory']['interfaces'][0]['lldp'] = [[1, '04aa']]
    heard['plugin_data']['lldp_raw'] = {'eth0': [[1, '04aa']]}
    heard['plugin_data']['bmc_account'] = {
        'username': 'hwbus', 'mode': 'create', 'user_id': 3,
        'channels': [1], 'privilege': 'ADMINISTRATOR', 'enabled': True,
        'action': 'created', 'verified': True, 'verified_how': 'user test',
        'password_length': 20, 'errors': []}
    return [*documents, heard]


def test_each_numeric_bound_is_enforced_by_both_validators():
    """On real documents, every numeric field of the schema (null ones
    too) takes its minimum and maximum and refuses one past either, and
    the consumer's fast validator agrees with jsonschema on each."""
    seen = set()
    for document in _numeric_documents():
        for path in json_paths(document):
            node = _numeric_schema(path)
            if node is None or path == () or id(node) in seen:
                continue
            seen.add(id(node))
            low, high = node['minimum'], node['maximum']
            for value, valid in [(low, True), (high, True),
                                 (low - 1, False), (high + 1, False)]:
                answers = _both_validators(_with(document, path, value))
                assert answers == (valid, valid), (path, value)
    numeric = {id(node) for path, node in _subschemas()
               if _numeric_schema_node(node)}
    assert seen == numeric


@pytest.mark.parametrize('frequency', [
    '', '0', '3500', '3500.0000', '2445.406', '50.00', '9999999.9999'])
def test_cpu_frequency_takes_what_the_cpu_collector_prints(frequency):
    document = inventory.empty_document()
    document['inventory']['cpu']['frequency'] = frequency
    assert _both_validators(document) == (True, True)


@pytest.mark.parametrize('frequency', [
    '10000000', '-1', '3500.', '.5', '3,500', '3500 MHz', '1e3', 'NaN',
    ' 3500', '3500.0\n', '1.' + '0' * 17])
def test_cpu_frequency_refuses_anything_but_a_short_decimal(frequency):
    document = inventory.empty_document()
    document['inventory']['cpu']['frequency'] = frequency
    assert _both_validators(document) == (False, False)


def test_a_trailing_newline_does_not_slip_past_a_pattern():
    """Python's re lets "$" match before a final newline; fastjsonschema
    does not. Every pattern ends "$(?!\\n)" so both refuse it."""
    for path, value in [
            (('inventory', 'bmc_mac'), '52:54:00:12:34:56\n'),
            (('inventory', 'boot', 'pxe_interface'), '52:54:00:12:34:56\n'),
            (('plugin_data', 'lldp_raw'), {'eth0': [[1, 'aa\n']]})]:
        document = _with(inventory.empty_document(), path, value)
        assert _both_validators(document) == (False, False), path
    patterns = [node['pattern'] for _, node in _subschemas()
                if 'pattern' in node]
    assert patterns and all(p.endswith('$(?!\\n)') or not p.endswith('$')
                            for p in patterns)


@pytest.mark.parametrize('name', RECORDED)
def test_every_recorded_machine_is_within_the_bounds(name):
    document = json.loads((MACHINES / name / 'expected.json').read_text())
    assert inventory.problems(document) == []
    assert _both_validators(document) == (True, True)


# The standard-library check (hwbus.inventory.quick) -------------------------

@pytest.mark.parametrize('schema', [
    {'$schema': quick.DRAFT, 'anyOf': [{'type': 'integer'}]},
    {'$schema': quick.DRAFT, 'properties': {'a': {'$ref': '#'}}},
    {'$schema': quick.DRAFT, 'type': 'date'},
    {'$schema': 'http://json-schema.org/draft-07/schema#'},
    {'type': 'object'},
])
def test_the_quick_check_refuses_a_schema_it_does_not_understand(schema):
    """A construct added to schema.json that the check does not know
    stops it at compile time (every unit test run compiles it), rather
    than letting a document through unchecked."""
    with pytest.raises(quick.Unsupported):
        quick.compile_schema(schema)


def test_the_quick_check_refuses_what_json_cannot_hold():
    """Python values JSON has no type for (a tuple, a str subclass) are
    refused; jsonschema then has the last word and writes the report."""
    document = inventory.empty_document()
    document['inventory']['disks'] = ()
    assert not inventory._quick()(document)
    assert inventory.problems_once(document)


def test_problems_once_reports_like_problems():
    document = inventory.empty_document()
    document['inventory']['cpu']['count'] = -1
    assert inventory.problems_once(document) == inventory.problems(
        document) != []
    assert inventory.problems_once(inventory.empty_document()) == []
