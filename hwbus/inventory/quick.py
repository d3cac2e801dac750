"""A standard-library answer to "is this document valid?", and no more.

Importing jsonschema costs a one-shot process (``hwbus-collect``, the
ramdisk) more than the whole collection, and compiling fastjsonschema
more again. Nearly every document a machine produces is valid, so this
module answers that common case from the shipped schema itself, with the
standard library only; jsonschema is loaded when a document fails here,
to write the report (and to decide: it has the last word).

It understands exactly the keywords ``schema.json`` uses and refuses to
compile anything else (:class:`Unsupported`), so a new construct in the
schema cannot slip past it. Where it could differ from jsonschema it
errs on the refusing side: calling a valid document invalid costs only
the jsonschema report, which then finds nothing; accepting one that
jsonschema refuses would be a bug. tests/unit/test_schema.py and
test_fuzz_schema.py hold it to jsonschema's answers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from hwbus.errors import PermanentError

Check = Callable[[Any], bool]

DRAFT = 'https://json-schema.org/draft/2020-12/schema'
# Keywords that say nothing about validity.
_ANNOTATIONS = frozenset({'$schema', '$id', 'title', 'description'})


class Unsupported(PermanentError, ValueError):
    """The schema uses a keyword this module does not implement: a bug
    in this module or the schema, caught by every unit test run."""

    reason = 'schema-unsupported'


def _is_integer(value: Any) -> bool:
    # jsonschema counts 3.0 as an integer, never True.
    return (type(value) is int or
            (type(value) is float and value.is_integer()))


_TYPES: dict[str, Check] = {
    'null': lambda v: v is None,
    'boolean': lambda v: type(v) is bool,
    'integer': _is_integer,
    'number': lambda v: type(v) in (int, float),
    'string': lambda v: type(v) is str,
    'array': lambda v: type(v) is list,
    'object': lambda v: type(v) is dict,
}


def _same(a: Any, b: Any) -> bool:
    """Equal and of the same JSON type (stricter than jsonschema, which
    also equates 1 and 1.0: the safe side)."""
    return type(a) is type(b) and a == b


def compile_schema(schema: dict[str, Any]) -> Check:
    """A function answering whether an instance matches schema."""
    if schema.get('$schema') != DRAFT:
        raise Unsupported(f'only {DRAFT} is understood, not '
                          f'{schema.get("$schema")!r}')
    return _compile(schema)


def _compile(node: Any) -> Check:
    if node is True or node == {}:
        return lambda value: True
    if node is False:
        return lambda value: False
    if not isinstance(node, dict):
        raise Unsupported(f'not a schema: {node!r}')
    checks: list[Check] = []
    for keyword, arg in node.items():
        if keyword in _ANNOTATIONS:
            continue
        make = _KEYWORDS.get(keyword)
        if make is None:
            raise Unsupported(f'keyword {keyword!r}')
        if keyword == 'items' and 'prefixItems' in node:
            continue  # compiled together with prefixItems
        checks.append(make(arg, node))
    if len(checks) == 1:
        return checks[0]
    return lambda value: all(check(value) for check in checks)


def _type(arg: Any, node: dict) -> Check:
    names = [arg] if isinstance(arg, str) else list(arg)
    unknown = set(names) - _TYPES.keys()
    if unknown:
        raise Unsupported(f'type {", ".join(sorted(unknown))}')
    tests = [_TYPES[name] for name in names]
    return lambda value: any(test(value) for test in tests)


def _enum(arg: list, node: dict) -> Check:
    return lambda value: any(_same(value, choice) for choice in arg)


def _const(arg: Any, node: dict) -> Check:
    return lambda value: _same(value, arg)


def _minimum(arg: float, node: dict) -> Check:
    return lambda value: type(value) not in (int, float) or value >= arg


def _maximum(arg: float, node: dict) -> Check:
    return lambda value: type(value) not in (int, float) or value <= arg


def _min_length(arg: int, node: dict) -> Check:
    return lambda value: type(value) is not str or len(value) >= arg


def _max_length(arg: int, node: dict) -> Check:
    return lambda value: type(value) is not str or len(value) <= arg


def _pattern(arg: str, node: dict) -> Check:
    search = re.compile(arg).search
    return lambda value: type(value) is not str or search(value) is not None


def _min_items(arg: int, node: dict) -> Check:
    return lambda value: type(value) is not list or len(value) >= arg


def _max_items(arg: int, node: dict) -> Check:
    return lambda value: type(value) is not list or len(value) <= arg


def _items(arg: Any, node: dict) -> Check:
    """``prefixItems`` and ``items`` (the rest) together."""
    prefix = [_compile(n) for n in node.get('prefixItems', [])]
    rest = _compile(node.get('items', True))

    def check(value: Any) -> bool:
        if type(value) is not list:
            return True
        for item, item_check in zip(value, prefix, strict=False):
            if not item_check(item):
                return False
        return all(rest(item) for item in value[len(prefix):])
    return check


def _required(arg: list[str], node: dict) -> Check:
    return lambda value: type(value) is not dict or all(
        name in value for name in arg)


def _max_properties(arg: int, node: dict) -> Check:
    return lambda value: type(value) is not dict or len(value) <= arg


def _property_names(arg: Any, node: dict) -> Check:
    name_check = _compile(arg)
    return lambda value: type(value) is not dict or all(
        name_check(name) for name in value)


def _properties(arg: dict[str, Any], node: dict) -> Check:
    known = {name: _compile(child) for name, child in arg.items()}
    return lambda value: type(value) is not dict or all(
        known[name](item) for name, item in value.items() if name in known)


def _additional_properties(arg: Any, node: dict) -> Check:
    known = frozenset(node.get('properties', ()))
    extra = _compile(arg)
    return lambda value: type(value) is not dict or all(
        extra(item) for name, item in value.items() if name not in known)


_KEYWORDS: dict[str, Callable[[Any, dict], Check]] = {
    'type': _type,
    'enum': _enum,
    'const': _const,
    'minimum': _minimum,
    'maximum': _maximum,
    'minLength': _min_length,
    'maxLength': _max_length,
    'pattern': _pattern,
    'minItems': _min_items,
    'maxItems': _max_items,
    'prefixItems': _items,
    'items': _items,
    'required': _required,
    'maxProperties': _max_properties,
    'propertyNames': _property_names,
    'properties': _properties,
    'additionalProperties': _additional_properties,
}
