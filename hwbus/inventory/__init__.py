"""The hardware document both sides agree on, and its JSON Schema.

A document is ``{"inventory": ..., "plugin_data": ...}``. ``inventory`` is
ironic-python-agent's format field for field so that Ironic's inspection
code takes it unchanged; ``plugin_data`` holds everything else. The schema
ships in this package (``schema.json``) and is the single definition of
what is valid: the ramdisk checks its own document before signing it and
the consumer checks it again before anything reaches Ironic.
"""

from __future__ import annotations

import copy
import functools
import json
from importlib import resources
from typing import Any

import jsonschema

# How many validation problems one report lists; a broken document can have
# thousands and the first few say what went wrong.
MAX_REPORTED_ERRORS = 20


class InvalidDocument(ValueError):
    """The document does not match the schema; ``problems`` says where."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__('; '.join(problems))


@functools.cache
def schema() -> dict[str, Any]:
    """The document schema as shipped in the package."""
    text = resources.files(__package__).joinpath('schema.json').read_text(
        encoding='utf-8')
    return json.loads(text)


@functools.cache
def _validator() -> Any:
    # check_schema() would cost 100 ms on every start; the schema is
    # checked once by the unit tests instead.
    return jsonschema.validators.validator_for(schema())(schema())


def locate(document: Any) -> list[tuple[tuple[str | int, ...], str]]:
    """Every schema violation as (path, message), deepest-first order."""
    found = []
    for error in _validator().iter_errors(document):
        message = error.message
        if len(message) > 300:
            message = message[:300] + '...'
        found.append((tuple(error.absolute_path), message))
    return found


def problems(document: Any) -> list[str]:
    """Where document breaks the schema, as "path: message" lines."""
    lines = sorted(f'{"/".join(str(p) for p in path) or "(root)"}: {msg}'
                   for path, msg in locate(document))
    return lines[:MAX_REPORTED_ERRORS]


def validate(document: Any) -> None:
    """Raise InvalidDocument unless document matches the schema."""
    found = problems(document)
    if found:
        raise InvalidDocument(found)


_EMPTY_INVENTORY: dict[str, Any] = {
    'cpu': {'model_name': '', 'frequency': '', 'count': 0,
            'architecture': '', 'flags': [], 'socket_count': None},
    'memory': {'total': None, 'physical_mb': None},
    'disks': [],
    'interfaces': [],
    'bmc_address': None,
    'bmc_v6address': None,
    'bmc_mac': None,
    'system_vendor': {'product_name': '', 'serial_number': '',
                      'manufacturer': '', 'sku': None, 'uuid': None,
                      'firmware': {'vendor': '', 'version': '',
                                   'build_date': ''}},
    'boot': {'current_boot_mode': 'bios', 'pxe_interface': None},
    'hostname': None,
}


def empty_document() -> dict[str, Any]:
    """A valid document that knows nothing yet.

    Collectors fill it in; whatever a failed collector leaves untouched
    stays at these "unknown" values, so a broken machine still yields a
    document Ironic can store and an operator can read.
    """
    return {'inventory': copy.deepcopy(_EMPTY_INVENTORY),
            'plugin_data': {'errors': []}}
