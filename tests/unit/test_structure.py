"""Rules of the structure: one error family with unique reasons; only
the commands read the configuration."""

import importlib
import pkgutil

import hwbus
from hwbus.errors import HwbusError, PermanentError, TransientError


def _all_subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_subclasses(sub)


def _import_everything():
    for module in pkgutil.walk_packages(hwbus.__path__, 'hwbus.'):
        if '.migrations' not in module.name:
            importlib.import_module(module.name)


def test_every_reason_belongs_to_one_error_class():
    _import_everything()
    seen: dict[str, str] = {}
    for cls in _all_subclasses(HwbusError):
        if 'reason' not in vars(cls):
            continue
        where = f'{cls.__module__}.{cls.__qualname__}'
        assert cls.reason not in seen, \
            f'{where} and {seen[cls.reason]} both say {cls.reason!r}'
        seen[cls.reason] = where


def test_every_error_hwbus_raises_on_purpose_is_in_the_family():
    """Classes named *Error or *Exception in hwbus descend from
    HwbusError, and each is permanent or transient unless it is a
    start-up error (configuration, store schema)."""
    _import_everything()
    startup = {'IronicConfigError', 'StoreNotReady', 'SealConfigError'}
    for module in list(_modules()):
        for name, value in vars(module).items():
            if not (isinstance(value, type) and issubclass(value, Exception)
                    and value.__module__ == module.__name__) or \
                    name.startswith('_'):  # private control flow
                continue
            assert issubclass(value, HwbusError), f'{module.__name__}.{name}'
            if value is not HwbusError and name not in startup:
                assert issubclass(value, PermanentError | TransientError), \
                    f'{module.__name__}.{name} is in neither family'


def _modules():
    import sys

    return [m for n, m in sys.modules.items()
            if n.startswith('hwbus.') and m is not None]


def test_only_the_commands_read_the_configuration():
    """hwbus.conf is imported by hwbus/cmd (the wiring) and the option
    modules themselves; the library gets plain values."""
    import ast
    import pathlib

    top = pathlib.Path(hwbus.__file__).parent
    readers = []
    for path in top.rglob('*.py'):
        relative = path.relative_to(top).as_posix()
        if relative.startswith(('cmd/', 'conf/')):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            if any(n == 'hwbus.conf' or n.startswith('hwbus.conf.')
                   for n in names):
                readers.append(relative)
    assert readers == []
