"""The ramdisk side imports only what the ramdisk image carries.

Walks the import graph of every module the ramdisk runs, starting from the
ramdisk package, and fails on any module-level import of a third-party
package the image does not have (oslo.*, kombu, SQLAlchemy, ...).
Function-level imports are optional features and are allowed.
"""

import ast
import pathlib
import sys

import hwbus

TOP = pathlib.Path(hwbus.__file__).parent
# What the image installs besides the standard library (docs/ramdisk.md).
ALLOWED = {'pika', 'psutil', 'cryptography', 'jsonschema'}
ENTRY_POINTS = ['hwbus.ramdisk', 'hwbus.cmd.collect', 'hwbus.cmd.ramdisk',
                'hwbus.envelope', 'hwbus.bootparams', 'hwbus.keys']


def _module_file(name):
    path = TOP.parent.joinpath(*name.split('.'))
    if path.is_dir():
        return path / '__init__.py'
    return path.with_suffix('.py')


def _top_level_imports(path):
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            yield node.module
            for alias in node.names:
                yield f'{node.module}.{alias.name}'


def _closure():
    todo = list(ENTRY_POINTS)
    for path in (TOP / 'ramdisk').rglob('*.py'):
        todo.append('.'.join(path.relative_to(TOP.parent).with_suffix(
            '').parts).removesuffix('.__init__'))
    seen, outside = set(), {}
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = _module_file(name)
        if not path.exists():
            continue  # "from pkg import name" where name is not a module
        for imported in _top_level_imports(path):
            top = imported.split('.')[0]
            if top == 'hwbus':
                todo.append(imported)
            elif top not in sys.stdlib_module_names and top != '__future__':
                outside.setdefault(top, set()).add(name)
    return seen, outside


def test_ramdisk_side_imports_only_what_the_image_carries():
    _, outside = _closure()
    forbidden = {k: sorted(v) for k, v in outside.items()
                 if k not in ALLOWED}
    assert forbidden == {}


def test_the_walk_really_covers_the_collectors():
    seen, outside = _closure()
    assert 'hwbus.ramdisk.collectors.disks' in seen
    assert 'hwbus.ramdisk.probes.sysroot' in seen
    assert 'hwbus.ramdisk.probes.lldp_listener' in seen
    assert 'hwbus.macs' in seen
    assert 'hwbus.inventory' in seen
    assert {'psutil', 'jsonschema'} <= set(outside)


# The ramdisk side's layers, lowest first (docs/ramdisk.md): each may
# import only from the layers below it, never from one above.
LAYERS = ['hwbus.ramdisk.probes', 'hwbus.ramdisk.collectors',
          'hwbus.ramdisk']


def _layer(name):
    for index, prefix in enumerate(LAYERS):
        if name == prefix or name.startswith(prefix + '.'):
            return index
    return None


def test_imports_go_down_the_layers_only():
    upward = []
    for path in (TOP / 'ramdisk').rglob('*.py'):
        name = '.'.join(path.relative_to(TOP.parent).with_suffix(
            '').parts).removesuffix('.__init__')
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):  # function-level imports count too
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                targets = [node.module] + [f'{node.module}.{a.name}'
                                           for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                continue
            for target in targets:
                if _layer(target) is not None and \
                        _layer(target) > _layer(name):
                    upward.append(f'{name} imports {target}')
    assert upward == []
