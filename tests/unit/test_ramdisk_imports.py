"""The ramdisk side imports only what the ramdisk image carries.

Walks the import graph of every module the ramdisk runs, starting from the
ramdisk package, and fails on any module-level import of a third-party
package the image does not have (oslo.*, kombu, SQLAlchemy, ...).
Function-level imports are optional features and are allowed.
"""

import ast
import json
import os
import pathlib
import subprocess
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
    assert 'psutil' in outside


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


# What a plain collection loads -----------------------------------------------
#
# hwbus-collect runs once per boot from a cold interpreter, where imports
# are most of its time (docs/benchmarks.md, "Collection"). The walk above
# allows what the image carries; this checks what one collection really
# loads, in a fresh interpreter.

# Top-level packages a collection must not load: validation (jsonschema's
# tree, fastjsonschema) only when a document is broken, YAML only for
# --format yaml, publishing (pika, cryptography) only in hwbus-ramdisk,
# the server side never, and the ssl module only for the server side.
NOT_FOR_A_COLLECTION = {
    'yaml', 'jsonschema', 'jsonschema_specifications', 'referencing',
    'attrs', 'rpds', 'fastjsonschema', 'pika', 'cryptography', 'kombu',
    'amqp', 'sqlalchemy', 'oslo_config', 'oslo_log', 'oslo_utils',
    'pbr', 'pkg_resources', 'ssl'}
RECORDED = TOP.parent / 'tests' / 'fixtures' / 'machines' / 'dell-r740'


def _modules_after(*args):
    """Every module a fresh interpreter has loaded after
    ``hwbus-collect ARGS``, with the document it printed."""
    script = (
        'import contextlib, io, json, sys\n'
        'from hwbus.cmd import collect\n'
        'out = io.StringIO()\n'
        'with contextlib.redirect_stdout(out):\n'
        f'    status = collect.main({list(args)!r})\n'
        'print(json.dumps([status, out.getvalue(), sorted(sys.modules)]))\n')
    result = subprocess.run([sys.executable, '-c', script],
                            cwd=TOP.parent, capture_output=True, text=True,
                            check=True, timeout=120)
    status, printed, modules = json.loads(result.stdout)
    return status, printed, {name.split('.')[0] for name in modules}


def test_a_plain_collection_loads_only_what_the_collectors_need():
    status, printed, loaded = _modules_after('--root', str(RECORDED))
    assert status == 0
    assert json.loads(printed)['inventory']['disks']
    assert loaded & NOT_FOR_A_COLLECTION == set()
    # The check really ran in the tree under test, with the collectors.
    assert {'hwbus', 'psutil'} <= loaded


def test_what_a_collection_skips_is_still_loaded_when_asked_for():
    """The guard above is not vacuous: the same script sees YAML loaded
    for --format yaml."""
    status, _, loaded = _modules_after(
        '--root', str(RECORDED), '--format', 'yaml')
    assert status == 0 and 'yaml' in loaded


def test_the_console_handler_is_left_out_when_stderr_is_the_console(
        tmp_path):
    """/init's stderr is the console: --console /dev/console on top of
    it printed every line twice."""
    from hwbus.cmd.ramdisk import same_device

    path = tmp_path / 'console'
    with open(path, 'w') as same, open(tmp_path / 'other', 'w') as other:
        assert same_device(same, str(path))
        assert not same_device(other, str(path))
    assert not same_device(object(), str(path))
    if os.path.exists('/dev/null'):
        with open('/dev/null', 'w') as null:
            assert same_device(null, '/dev/null')
            assert not same_device(null, str(path))


# What hwbus-ramdisk loads before its first step ------------------------------
#
# Under emulation every import costs seconds (docs/benchmarks.md, "Boot
# time"): hwbus-ramdisk checks its command line and says which boot it
# is before it loads the signing and publishing libraries; collecting
# comes first and needs neither.
NOT_AT_START = {'pika', 'cryptography', 'ssl', 'psutil', 'jsonschema'}


def _modules_at_start():
    script = ('import json, sys\n'
              'import hwbus.cmd.ramdisk\n'
              'print(json.dumps(sorted(sys.modules)))\n')
    result = subprocess.run([sys.executable, '-c', script],
                            cwd=TOP.parent, capture_output=True, text=True,
                            check=True, timeout=120)
    return {name.split('.')[0] for name in json.loads(result.stdout)}


def test_hwbus_ramdisk_starts_without_the_signing_and_publishing_libraries():
    loaded = _modules_at_start()
    assert loaded & NOT_AT_START == set()
    assert 'hwbus' in loaded


def test_a_refused_command_line_loads_no_cryptography():
    """The seed is checked at start without the library that signs."""
    script = ('import json, sys\n'
              'from hwbus.ramdisk import main\n'
              'status = main.run("hwbus.boot=0123abcd hwbus.url=amqp://'
              'boot-0123:pw@10.0.0.1:5672/%2F hwbus.key=AAAA")\n'
              'print(json.dumps([status, sorted(sys.modules)]))\n')
    result = subprocess.run([sys.executable, '-c', script],
                            cwd=TOP.parent, capture_output=True, text=True,
                            check=True, timeout=120)
    status, modules = json.loads(result.stdout)
    assert status == 2
    assert 'an Ed25519 seed has 32 bytes, not 3' in result.stderr
    assert {name.split('.')[0] for name in modules} & NOT_AT_START == set()
