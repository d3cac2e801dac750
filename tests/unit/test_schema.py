"""The document schema: what is valid, what is not, and the docs example."""

import copy
import json
import pathlib

import pytest

from hwbus import inventory
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


def test_fast_validator_agrees_with_jsonschema_on_every_mutation():
    """fastjsonschema (consumer) and jsonschema (ramdisk, reports) must
    call the same documents valid: every field of every recorded machine
    replaced by each of a set of wrong and right values."""
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
                checked += 1
    assert checked > 2000
