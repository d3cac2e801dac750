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
import os
from typing import Any

from hwbus.errors import PermanentError
from hwbus.inventory import quick

# How many validation problems one report lists; a broken document can have
# thousands and the first few say what went wrong.
MAX_REPORTED_ERRORS = 20


class InvalidDocument(PermanentError, ValueError):
    """The document does not match the schema; ``problems`` says where."""

    reason = 'schema'

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__('; '.join(problems))


@functools.cache
def schema() -> dict[str, Any]:
    """The document schema as shipped in the package."""
    # Next to this module, read with open(): importlib.resources would
    # cost a one-shot process more than reading the file.
    path = os.path.join(os.path.dirname(__file__), 'schema.json')
    with open(path, encoding='utf-8') as f:
        return json.load(f)


@functools.cache
def _validator() -> Any:
    import jsonschema

    # check_schema() would cost 100 ms on every start; the schema is
    # checked once by the unit tests instead.
    return jsonschema.validators.validator_for(schema())(schema())


@functools.cache
def _quick() -> quick.Check:
    return quick.compile_schema(schema())


def locate(document: Any) -> list[tuple[tuple[str | int, ...], str]]:
    """Every schema violation as (path, message), deepest-first order.

    A document the standard-library check accepts has none; only one it
    refuses loads jsonschema, which finds them (or none: the check errs
    on the refusing side).
    """
    if _quick()(document):
        return []
    found = []
    for error in _validator().iter_errors(document):
        message = error.message
        if len(message) > 300:
            message = message[:300] + '...'
        found.append((tuple(error.absolute_path), message))
    return found


def _as_draft7(node: Any) -> Any:
    """The schema in draft-07 terms, for fastjsonschema.

    Only ``prefixItems`` needs translating: 2020-12's ``prefixItems: P``
    plus ``items: S`` is draft-07's ``items: P`` plus
    ``additionalItems: S`` (absent ``items`` means anything goes).
    """
    if isinstance(node, list):
        return [_as_draft7(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _as_draft7(v) for k, v in node.items()
           if k not in ('prefixItems', '$schema')}
    if 'prefixItems' in node:
        out['items'] = _as_draft7(node['prefixItems'])
        if 'items' in node:
            out['additionalItems'] = _as_draft7(node['items'])
    return out


@functools.cache
def _fast() -> Any:
    """A compiled validator when fastjsonschema is installed (the server
    side), else None. It answers valid / invalid 30-40 times faster than
    jsonschema; jsonschema still writes the problem report."""
    try:
        import fastjsonschema
    except ImportError:
        return None
    draft7 = _as_draft7(schema())
    draft7['$schema'] = 'http://json-schema.org/draft-07/schema#'
    return fastjsonschema.compile(draft7)


def prepare() -> None:
    """Compile the fast validator now rather than at the first document:
    a long-running process (the consumer) does it before it takes
    messages, and can hand the compiler's scratch memory back to the
    system afterwards (about 40 MiB of a 0.8 MB generated module)."""
    _fast()


def is_valid(document: Any) -> bool:
    fast = _fast()
    if fast is None:
        return not locate(document)
    import fastjsonschema

    try:
        fast(document)
    except fastjsonschema.JsonSchemaException:
        return False
    return True


def problems(document: Any) -> list[str]:
    """Where document breaks the schema, as "path: message" lines.

    For a process that checks many documents (the consumer): the first
    call compiles fastjsonschema when it is installed (about 100 ms), and
    every later one answers valid / invalid 30-40 times faster than
    jsonschema. A process that checks one document uses
    :func:`problems_once`.
    """
    if _fast() is not None and is_valid(document):
        return []
    return problems_once(document)


def problems_once(document: Any) -> list[str]:
    """:func:`problems` for a process that checks one document
    (``hwbus-collect``, the ramdisk): nothing compiled, jsonschema loaded
    only when the document is broken. Same lines as :func:`problems`."""
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
