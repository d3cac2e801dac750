"""The document schema: what is valid, what is not, and the docs example."""

import copy
import json
import pathlib

import pytest

from hwbus import inventory

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
