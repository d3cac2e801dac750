"""What an operator installs from etc/, checked against itself and the code.

The systemd units (systemd-analyze verify), the sysusers and tmpfiles
entries (applied to a throwaway root), the Grafana dashboard and the
Prometheus alert rules (every metric they name is one the consumer
exposes; promtool checks and unit-tests the rules), and the dead-letter
queue depth those rely on. The tools are Debian's: systemd-analyze,
systemd-sysusers and systemd-tmpfiles from ``systemd``, promtool from
``prometheus``; a test that needs one is skipped, saying so, only when it
is not installed.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import shlex
import shutil
import stat
import subprocess
import types
import urllib.parse

import pytest
import yaml

from hwbus.broker import topology
from hwbus.conf import bootserver as bootserver_conf
from hwbus.conf import broker as broker_conf
from hwbus.conf import consumer as consumer_conf
from hwbus.conf import database as database_conf
from hwbus.consumer import metrics
from hwbus.consumer.service import Service, Settings

TOP = pathlib.Path(__file__).resolve().parents[2]
ETC = TOP / 'etc'
UNIT_DIR = ETC / 'systemd'
SYSUSERS = ETC / 'sysusers.d' / 'hwbus.conf'
TMPFILES = ETC / 'tmpfiles.d' / 'hwbus.conf'
DASHBOARD = ETC / 'grafana' / 'hwbus-dashboard.json'
ALERTS = ETC / 'prometheus' / 'hwbus-alerts.yml'
OPERATIONS = TOP / 'docs' / 'operations.md'
SERVICES = ('hwbus-consumer', 'hwbus-bootserver')
# The console scripts the units start (setup.cfg entry points).
CONSOLE_SCRIPTS = {'hwbus-consumer': 'hwbus.cmd.consumer:main',
                   'hwbus-bootserver': 'hwbus.cmd.bootserver:main'}


def _default(opts, name):
    return next(opt.default for opt in opts if opt.name == name)


def _need(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f'{tool} is not installed (Debian package {package})')
    return path


# -- systemd units ---------------------------------------------------------

def read_unit(path: pathlib.Path) -> dict[str, dict[str, list[str]]]:
    """A unit file as {section: {key: [values, in order]}}."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in '#;':
            continue
        if line.startswith('[') and line.endswith(']'):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, sep, value = line.partition('=')
        assert sep and current is not None, f'{path}:{number}: {raw!r}'
        assert not value.endswith('\\'), f'{path}:{number}: continued line'
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def service(name: str) -> dict[str, list[str]]:
    return read_unit(UNIT_DIR / f'{name}.service')['Service']


def one(section: dict[str, list[str]], key: str) -> str:
    values = [v for v in section.get(key, []) if v]
    assert len(values) == 1, f'{key}: {values}'
    return values[0]


def seconds(value: str) -> float:
    """A systemd time span (90, 90s, 1min 30s) in seconds."""
    units = {'': 1, 's': 1, 'sec': 1, 'm': 60, 'min': 60, 'h': 3600}
    total = 0.0
    for number, unit in re.findall(r'(\d+(?:\.\d+)?)\s*([a-z]*)', value):
        total += float(number) * units[unit]
    return total


def exec_argv(value: str) -> list[str]:
    """An Exec*= value as argv, without systemd's prefixes (-@:+!)."""
    return shlex.split(value.lstrip('-@:+!'))


def test_the_units_are_the_consumer_and_the_boot_server():
    assert sorted(p.stem for p in UNIT_DIR.glob('*.service')) == \
        sorted(SERVICES)


@pytest.mark.parametrize('name', SERVICES)
def test_unit_runs_its_command_as_hwbus_with_the_config(name):
    unit = read_unit(UNIT_DIR / f'{name}.service')
    svc = unit['Service']
    assert one(svc, 'User') == one(svc, 'Group') == 'hwbus'
    assert one(svc, 'StateDirectory') == 'hwbus'
    argv = exec_argv(one(svc, 'ExecStart'))
    assert pathlib.PurePath(argv[0]).name == name
    assert argv[0] == f'/opt/hwbus/bin/{name}'  # docs/operations.md
    assert argv[1:] == ['--config-file', '/etc/hwbus/hwbus.conf']
    setup_cfg = (TOP / 'setup.cfg').read_text()
    assert f'{name} = {CONSOLE_SCRIPTS[name]}' in setup_cfg
    for key in ('ExecStartPre', 'ExecStartPost', 'ExecStop', 'ExecReload'):
        for value in svc.get(key, []):
            assert exec_argv(value)[0].startswith('/opt/hwbus/bin/')
    assert one(svc, 'Restart') == 'on-failure'
    assert one(svc, 'KillSignal') == 'SIGTERM'
    assert one(svc, 'NoNewPrivileges') == 'yes'
    assert one(svc, 'ProtectSystem') == 'strict'
    assert unit['Install']['WantedBy'] == ['multi-user.target']
    assert 'network-online.target' in one(unit['Unit'], 'Wants').split()
    assert 'network-online.target' in one(unit['Unit'], 'After').split()


def test_consumer_may_drain_before_systemd_kills_it():
    shutdown = _default(consumer_conf.OPTS, 'shutdown_timeout')
    assert Settings(urls=[]).shutdown_timeout == shutdown
    assert seconds(one(service('hwbus-consumer'), 'TimeoutStopSec')) >= \
        shutdown + 15


def test_boot_server_capabilities_fit_its_default_port():
    svc = service('hwbus-bootserver')
    port = _default(bootserver_conf.OPTS, 'port')
    caps = {key: set(' '.join(svc.get(key, [])).split())
            for key in ('AmbientCapabilities', 'CapabilityBoundingSet')}
    if port < 1024:
        assert all('CAP_NET_BIND_SERVICE' in c for c in caps.values())
    else:  # 8086: no privilege at all
        assert caps == {'AmbientCapabilities': set(),
                        'CapabilityBoundingSet': set()}


def test_the_state_directory_holds_the_default_store_and_images():
    state = pathlib.PurePath('/var/lib', one(service('hwbus-consumer'),
                                             'StateDirectory'))
    url = _default(database_conf.OPTS, 'connection')
    store = pathlib.PurePath(urllib.parse.urlsplit(url).path[1:])
    assert url.startswith('sqlite:') and store.parent == state
    images = pathlib.PurePath(_default(bootserver_conf.OPTS, 'image_dir'))
    assert images.parent == state
    boot = service('hwbus-bootserver')
    assert boot['ReadOnlyPaths'] == [f'-{images}']


def verify(unit_paths: list[pathlib.Path],
           tmp_path: pathlib.Path) -> list[str]:
    """systemd-analyze verify's complaints about these units: its exit
    status and every diagnostic (it only warns about an unknown key or a
    value it cannot parse, and goes on). The executables the units name
    are replaced by stubs of the same name, which verify requires to
    exist; other units' own warnings (a dependency installed here) are
    not ours."""
    tool = _need('systemd-analyze', 'systemd')
    stubs = tmp_path / 'bin'
    stubs.mkdir(exist_ok=True)
    copies = []
    for path in unit_paths:
        lines = []
        for line in path.read_text().splitlines():
            key, sep, value = line.partition('=')
            prefix = value[:len(value) - len(value.lstrip('-@:+!'))]
            command, _, rest = value[len(prefix):].partition(' ')
            if sep and key.startswith('Exec') and command.startswith('/'):
                stub = stubs / pathlib.PurePath(command).name
                stub.write_text('#!/bin/sh\nexit 0\n')
                stub.chmod(0o755)
                line = f'{key}={prefix}{stub} {rest}'.rstrip()
            lines.append(line)
        copy = tmp_path / path.name
        copy.write_text('\n'.join(lines) + '\n')
        copies.append(copy)
    result = subprocess.run(
        [tool, 'verify', '--man=no', *map(str, copies)],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, 'SYSTEMD_LOG_COLOR': '0'})
    problems = []
    if result.returncode:
        problems.append(f'exit status {result.returncode}')
    for line in (result.stdout + result.stderr).splitlines():
        other = re.match(r'(/\S+):\d+: ', line)
        if other and not other.group(1).startswith(str(tmp_path)):
            continue
        if line.strip():
            problems.append(line)
    return problems


def test_units_pass_systemd_analyze_verify(tmp_path):
    units = sorted(UNIT_DIR.glob('*.service'))
    assert verify(units, tmp_path) == []


@pytest.mark.parametrize('old, new', [
    ('Restart=on-failure', 'Restart=sometimes'),
    ('ProtectSystem=strict', 'ProtectSytem=strict'),
    ('TimeoutStopSec=90', 'TimeoutStopSec=ninety'),
    ('[Install]', '[Instal]'),
    ('ExecStart=/opt/hwbus/bin/', 'ExecStart=opt/hwbus/bin/'),
])
def test_systemd_analyze_verify_catches_a_broken_unit(tmp_path, old, new):
    broken = tmp_path / 'src' / 'hwbus-consumer.service'
    broken.parent.mkdir()
    text = (UNIT_DIR / 'hwbus-consumer.service').read_text()
    assert f'\n{old}' in text
    broken.write_text(text.replace(f'\n{old}', f'\n{new}', 1))
    assert verify([broken], tmp_path) != []


# -- sysusers.d and tmpfiles.d ---------------------------------------------

def sysusers_entries() -> list[list[str]]:
    return [shlex.split(line) for line in SYSUSERS.read_text().splitlines()
            if line.strip() and not line.lstrip().startswith('#')]


def tmpfiles_entries() -> dict[str, list[str]]:
    """{path: [type, mode, user, group, age]}"""
    entries = {}
    for line in TMPFILES.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith('#'):
            continue
        kind, path, *rest = line.split()
        assert path not in entries, f'{path} twice'
        entries[path] = [kind, *rest]
    return entries


def test_sysusers_creates_the_units_user_with_the_state_home():
    entries = sysusers_entries()
    assert len(entries) == 1
    kind, name, uid, _gecos, home, *shell = entries[0]
    svc = service('hwbus-consumer')
    assert (kind, name, uid) == ('u', one(svc, 'User'), '-')
    assert home == f'/var/lib/{one(svc, "StateDirectory")}'
    assert shell in ([], ['-'])  # nologin


def test_tmpfiles_agree_with_the_units():
    entries = tmpfiles_entries()
    for name in SERVICES:
        svc = service(name)
        user, group = one(svc, 'User'), one(svc, 'Group')
        state = f'/var/lib/{one(svc, "StateDirectory")}'
        assert entries[state] == ['d', one(svc, 'StateDirectoryMode'), user,
                                  group, '-']
        config = pathlib.PurePath(exec_argv(one(svc, 'ExecStart'))[2])
        assert entries[str(config.parent)] == ['d', '0750', 'root', group,
                                               '-']
        assert entries[str(config)] == ['z', '0640', 'root', group, '-']
        assert one(svc, 'UMask') == '0027'
    images = _default(bootserver_conf.OPTS, 'image_dir')
    assert entries[images] == ['d', '0755', user, group, '-']


def apply_sysusers(root: pathlib.Path) -> tuple[dict, dict]:
    """systemd-sysusers on an empty root: its passwd and group entries."""
    sysusers = _need('systemd-sysusers', 'systemd')
    (root / 'etc').mkdir(parents=True)
    result = subprocess.run([sysusers, f'--root={root}', str(SYSUSERS)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    passwd = {line.split(':')[0]: line.split(':')
              for line in (root / 'etc/passwd').read_text().splitlines()}
    groups = {line.split(':')[0]: line.split(':')
              for line in (root / 'etc/group').read_text().splitlines()}
    return passwd, groups


def test_sysusers_applies_to_a_root(tmp_path):
    passwd, groups = apply_sysusers(tmp_path / 'root')
    user = passwd['hwbus']
    assert user[5] == '/var/lib/hwbus'
    assert user[6].endswith('/nologin')
    assert groups['hwbus'][2] == user[3]
    assert int(user[2]) < 1000  # a system user


def test_tmpfiles_apply_to_a_root(tmp_path):
    """Names resolve against the root's own /etc/passwd (from sysusers);
    an existing directory and config file are brought to the modes."""
    tmpfiles = _need('systemd-tmpfiles', 'systemd')
    if os.geteuid() != 0:
        pytest.skip('systemd-tmpfiles --create needs root to chown')
    root = tmp_path / 'root'
    passwd, groups = apply_sysusers(root)
    (root / 'etc/hwbus').mkdir(mode=0o755)
    (root / 'etc/hwbus/hwbus.conf').write_text('[DEFAULT]\n')
    (root / 'etc/hwbus/hwbus.conf').chmod(0o644)
    result = subprocess.run(
        [tmpfiles, f'--root={root}', '--create', str(TMPFILES)],
        capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stderr) == (0, '')
    uids = {'root': 0, 'hwbus': int(passwd['hwbus'][2])}
    gids = {'root': 0, 'hwbus': int(groups['hwbus'][2])}
    for path, (_, mode, owner, group, _) in tmpfiles_entries().items():
        found = (root / path.lstrip('/')).stat()
        assert (stat.S_IMODE(found.st_mode), found.st_uid, found.st_gid) == \
            (int(mode, 8), uids[owner], gids[group]), path


# -- the dashboard and the alert rules ---------------------------------------

PROMQL_WORDS = {
    'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and',
    'or', 'unless', 'offset', 'bool', 'sum', 'min', 'max', 'avg', 'group',
    'stddev', 'stdvar', 'count', 'count_values', 'bottomk', 'topk',
    'quantile', 'inf', 'nan', 'atan2'}
# Series Prometheus makes itself, per scrape target.
PROMETHEUS_SERIES = {'up'}


def promql_metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (a small reading, not
    a parser: strings, label matchers, ranges, grouping clauses, function
    calls and keywords are not names)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)
    text = re.sub(r'\{[^{}]*\}', ' ', text)
    text = re.sub(r'\[[^\[\]]*\]', ' ', text)
    text = re.sub(r'\b(?:by|without|on|ignoring|group_left|group_right)'
                  r'\s*\([^()]*\)', ' ', text)
    names = set()
    for match in re.finditer(r'\d[\w.]*|([A-Za-z_:][\w:]*)(\s*\()?', text):
        name, call = match.groups()
        if name and not call and name not in PROMQL_WORDS:
            names.add(name)
    return names


def test_promql_names_are_read_as_the_checks_need():
    assert promql_metric_names(
        'histogram_quantile(0.95, sum by (le, step) (rate('
        'hwbus_step_seconds_bucket{job=~"$job", le!="1e3"}'
        '[$__rate_interval]))) > 1e3 and on (job) up{x="a b"} == bool 1'
    ) == {'hwbus_step_seconds_bucket', 'up'}
    assert promql_metric_names('sum(hwbus_nope_total) / hwbus_messages'
                               '_total offset 5m') == {
        'hwbus_nope_total', 'hwbus_messages_total'}


def exposed() -> set[str]:
    return metrics.exposed_names() | PROMETHEUS_SERIES


def test_exposed_names_follow_the_metric_types():
    names = metrics.exposed_names()
    assert {'hwbus_messages_total', 'hwbus_pipeline_seconds_bucket',
            'hwbus_pipeline_seconds_sum', 'hwbus_pipeline_seconds_count',
            'hwbus_queue_depth', 'hwbus_in_flight'} <= names
    assert 'hwbus_messages' not in names
    assert 'hwbus_pipeline_seconds' not in names


def dashboard_panels(panels=None):
    for panel in (json.loads(DASHBOARD.read_text())['panels']
                  if panels is None else panels):
        yield panel
        yield from dashboard_panels(panel.get('panels', []))


def dashboard_queries() -> list[str]:
    queries = [target['expr'] for panel in dashboard_panels()
               for target in panel.get('targets', [])]
    for variable in json.loads(DASHBOARD.read_text())['templating']['list']:
        if variable['type'] == 'query':
            query = variable['query']
            query = query['query'] if isinstance(query, dict) else query
            inner = re.fullmatch(r'label_values\((.*),\s*\w+\)', query)
            assert inner, query
            queries.append(inner.group(1))
    return queries


def test_dashboard_reads_only_metrics_the_consumer_exposes():
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard['uid'] and dashboard['schemaVersion'] >= 36
    ids = [panel['id'] for panel in dashboard_panels()]
    assert len(ids) == len(set(ids))
    for panel in dashboard_panels():
        assert {'h', 'w', 'x', 'y'} <= set(panel['gridPos'])
        if panel['type'] == 'row':
            continue
        assert panel['datasource']['uid'] == '${datasource}'
        assert panel['targets'], panel['title']
        for target in panel['targets']:
            names = promql_metric_names(target['expr'])
            assert names, target['expr']
            assert names <= exposed(), (panel['title'], names - exposed())
    for query in dashboard_queries():
        assert promql_metric_names(query) <= exposed(), query


def test_dashboard_shows_every_hwbus_metric():
    shown = set().union(*map(promql_metric_names, dashboard_queries()))
    for family in metrics.prom.REGISTRY.collect():
        if family.name.startswith('hwbus_'):
            assert shown & metrics.exposed_names(_only(family)), family.name


def _only(family):
    return types.SimpleNamespace(collect=lambda: [family])


def alert_rules() -> list[dict]:
    document = yaml.safe_load(ALERTS.read_text())
    assert set(document) == {'groups'}
    rules = []
    names = set()
    for group in document['groups']:
        assert set(group) <= {'name', 'interval', 'rules', 'limit'}
        assert group['name'] not in names
        names.add(group['name'])
        assert group['rules']
        rules += group['rules']
    return rules


def test_alert_rules_have_the_prometheus_structure():
    rules = alert_rules()
    alerts = [rule['alert'] for rule in rules]
    assert len(alerts) == len(set(alerts))
    for rule in rules:
        assert set(rule) <= {'alert', 'expr', 'for', 'keep_firing_for',
                             'labels', 'annotations'}, rule
        assert re.fullmatch(r'Hwbus[A-Za-z]+', rule['alert'])
        assert isinstance(rule['expr'], str) and rule['expr'].strip()
        if 'for' in rule:
            assert re.fullmatch(r'(\d+[smhdwy])+', rule['for'])
        assert rule['labels']['severity'] in ('warning', 'critical')
        assert {'summary', 'description'} <= set(rule['annotations'])
        for text in rule['annotations'].values():
            assert text.count('{{') == text.count('}}'), text


def test_alert_rules_read_only_metrics_the_consumer_exposes():
    for rule in alert_rules():
        names = promql_metric_names(rule['expr'])
        assert names, rule['alert']
        assert names <= exposed(), (rule['alert'], names - exposed())


def test_every_alert_is_explained_in_the_operations_guide():
    guide = OPERATIONS.read_text()
    for rule in alert_rules():
        assert f'`{rule["alert"]}`' in guide, rule['alert']
    for family in metrics.prom.REGISTRY.collect():
        if family.name.startswith('hwbus_'):
            assert family.name in guide, family.name


def test_one_dead_letter_queue_name_everywhere():
    name = _default(broker_conf.OPTS, 'dead_queue')
    assert Settings(urls=[]).dead_queue == topology.Topology().dead_queue \
        == name
    variables = {v['name']: v for v in
                 json.loads(DASHBOARD.read_text())['templating']['list']}
    assert variables['dead_queue']['query'] == name
    queue = _default(broker_conf.OPTS, 'queue')
    for rule in alert_rules():
        for value in re.findall(r'queue="([^"]*)"', rule['expr']):
            assert value in (queue, name), rule['alert']


def test_alert_rules_pass_promtool():
    promtool = _need('promtool', 'prometheus')
    result = subprocess.run([promtool, 'check', 'rules', str(ALERTS)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_queries_parse_with_promtool(tmp_path):
    """Grafana's variables filled in, each query as a recording rule."""
    promtool = _need('promtool', 'prometheus')
    values = {'$__rate_interval': '1m', '$job': '.+', '$instance': '.+',
              '$dead_queue': 'hwbus.inventory.dead'}
    rules = []
    for number, query in enumerate(dashboard_queries()):
        for variable, value in sorted(values.items(), reverse=True):
            query = query.replace(variable, value)
        assert '$' not in query, query
        rules.append({'record': f'dashboard:query{number}', 'expr': query})
    path = tmp_path / 'dashboard.yml'
    path.write_text(yaml.safe_dump({'groups': [{'name': 'dashboard',
                                                'rules': rules}]}))
    result = subprocess.run([promtool, 'check', 'rules', str(path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


UP = 'up{job="hwbus-consumer", instance="c1:9464"}'
DEAD = 'hwbus_queue_depth{job="hwbus-consumer", instance="c1:9464", ' \
    'queue="hwbus.inventory.dead"}'
INVENTORY = 'hwbus_queue_depth{job="hwbus-consumer", instance="c1:9464", ' \
    'queue="hwbus.inventory"}'


def _messages(outcome, reason):
    return (f'hwbus_messages_total{{job="hwbus-consumer", '
            f'instance="c1:9464", outcome="{outcome}", reason="{reason}"}}')


def _bucket(le):
    return (f'hwbus_pipeline_seconds_bucket{{job="hwbus-consumer", '
            f'instance="c1:9464", le="{le}"}}')


C1 = {'job': 'hwbus-consumer', 'instance': 'c1:9464'}
# alert: (input series, [(minute, labels of each firing alert)])
SCENARIOS = {
    'HwbusConsumerDown': [
        ({UP: '1x5 0x20'}, [(4, []), (10, [C1])]),
        ({UP: '1x30'}, [(20, [])])],
    'HwbusConsumerAbsent': [
        ({'other{job="x"}': '1x30'}, [(5, []),
                                      (15, [{'job': 'hwbus-consumer'}])]),
        ({UP: '0x30'}, [(15, [])])],
    'HwbusDeadLettersGrowing': [
        ({DEAD: '0x20 3x30'},
         [(15, []), (25, [{'queue': 'hwbus.inventory.dead'}]), (45, [])]),
        ({DEAD: '5x40'}, [(30, [])]),
        ({INVENTORY: '0x20 30x30'}, [(25, [])])],
    'HwbusInventoryQueueNotDraining': [
        ({INVENTORY: '50x60'}, [(10, []),
                                (40, [{'queue': 'hwbus.inventory'}])]),
        ({INVENTORY: '10+2x60'}, [(40, [{'queue': 'hwbus.inventory'}])]),
        ({INVENTORY: '200-3x60'}, [(40, [])]),
        ({INVENTORY: '0x60'}, [(40, [])]),
        ({DEAD: '50x60'}, [(40, [])])],
    'HwbusQueueDepthUnknown': [
        ({UP: '1x20'}, [(3, []), (10, [C1])]),
        ({UP: '1x20', DEAD: '0x20'}, [(10, [])]),
        ({UP: '0x20'}, [(10, [])])],
    'HwbusInternalErrors': [
        ({_messages('retry', 'internal-error'): '0x5 1x5 2x20'},
         [(4, []), (10, [C1])]),
        ({_messages('retry', 'internal-error'): '3x30'}, [(20, [])])],
    'HwbusIronicUnavailable': [
        ({_messages('retry', 'ironic-unavailable'): '0+6x40'},
         [(8, []), (20, [{'job': 'hwbus-consumer'}])]),
        ({_messages('applied', '-'): '0+6x40',
          _messages('retry', 'store-unavailable'): '0+6x40'}, [(20, [])])],
    'HwbusBackendUnavailable': [
        ({_messages('retry', 'store-unavailable'): '0+6x40'},
         [(8, []), (20, [{'job': 'hwbus-consumer',
                          'reason': 'store-unavailable'}])]),
        ({_messages('retry', 'ironic-unavailable'): '0+6x40'}, [(20, [])])],
    'HwbusPipelineSlow': [
        ({_bucket('1'): '0x60', _bucket('5'): '0x60',
          _bucket('10'): '0+10x60', _bucket('+Inf'): '0+10x60'},
         [(10, []), (40, [{'job': 'hwbus-consumer'}])]),
        ({_bucket('1'): '0+10x60', _bucket('5'): '0+10x60',
          _bucket('10'): '0+10x60', _bucket('+Inf'): '0+10x60'},
         [(40, [])])],
}


def test_every_alert_has_scenarios():
    assert {rule['alert'] for rule in alert_rules()} == set(SCENARIOS)


def test_alerts_fire_when_they_should_and_only_then(tmp_path):
    """promtool's rule unit tests, one scenario at a time. Annotations
    are left out of the copy the tests load: promtool compares them
    whole, and check rules has already parsed their templates."""
    promtool = _need('promtool', 'prometheus')
    document = yaml.safe_load(ALERTS.read_text())
    for group in document['groups']:
        for rule in group['rules']:
            rule.pop('annotations', None)
    rules = tmp_path / 'rules.yml'
    rules.write_text(yaml.safe_dump(document))
    tests = []
    for alert, scenarios in SCENARIOS.items():
        for series, checks in scenarios:
            severity = next(r['labels']['severity'] for r in alert_rules()
                            if r['alert'] == alert)
            tests.append({
                'interval': '1m',
                'input_series': [{'series': s, 'values': v}
                                 for s, v in series.items()],
                'alert_rule_test': [
                    {'eval_time': f'{minute}m', 'alertname': alert,
                     'exp_alerts': [{'exp_labels': {**labels,
                                                    'severity': severity}}
                                    for labels in firing]}
                    for minute, firing in checks]})
    spec = tmp_path / 'tests.yml'
    spec.write_text(yaml.safe_dump({'rule_files': [str(rules)],
                                    'evaluation_interval': '1m',
                                    'tests': tests}))
    result = subprocess.run([promtool, 'test', 'rules', str(spec)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


# -- the dead-letter queue's depth -------------------------------------------

class FakeChannel:
    """A py-amqp channel: passive declares answer from ``depths`` or
    fail (the broker would close the channel)."""

    def __init__(self, connection, depths):
        self.connection, self.depths = connection, depths
        self.declared, self.closed = [], False

    def queue_declare(self, queue, passive=False):
        assert passive
        self.declared.append(queue)
        if isinstance(self.depths.get(queue), Exception):
            raise self.depths[queue]
        return queue, self.depths[queue], 0

    def close(self):
        self.closed = True


class FakeConnection:
    def __init__(self, depths, fail_open=False):
        self.depths, self.fail_open, self.opened = depths, fail_open, []

    def channel(self):
        if self.fail_open:
            raise ConnectionError('no channel')
        self.opened.append(FakeChannel(self, self.depths))
        return self.opened[-1]


def _depth_of(queue):
    return metrics.prom.REGISTRY.get_sample_value('hwbus_queue_depth',
                                                  {'queue': queue})


def _service(**settings):
    return types.SimpleNamespace(settings=Settings(urls=[], **settings))


def test_depth_reports_the_inventory_and_the_dead_letter_queue():
    connection = FakeConnection({'t1.inventory': 7, 't1.dead': 3,
                                 't1.dead.broker': 1})
    consuming = FakeChannel(connection, {})
    Service._depth(_service(queue='t1.inventory', dead_queue='t1.dead',
                            broker_dead_queue='t1.dead.broker'), consuming)
    assert (_depth_of('t1.inventory'), _depth_of('t1.dead'),
            _depth_of('t1.dead.broker')) == (7, 3, 1)
    # never on the consuming channel, and every probe channel closed
    assert consuming.declared == []
    assert [c.declared for c in connection.opened] == [
        ['t1.inventory'], ['t1.dead'], ['t1.dead.broker']]
    assert all(c.closed for c in connection.opened)


def test_a_failing_depth_check_stops_nothing():
    depths = {'t2.inventory': 4, 't2.dead': 2}
    connection = FakeConnection(depths)
    service = _service(queue='t2.inventory', dead_queue='t2.dead',
                       broker_dead_queue=None)
    Service._depth(service, FakeChannel(connection, {}))
    assert _depth_of('t2.dead') == 2
    depths['t2.dead'] = PermissionError('(403) ACCESS_REFUSED')
    depths['t2.inventory'] = 5
    Service._depth(service, FakeChannel(connection, {}))
    # the inventory depth still updates; the unreadable one is removed,
    # not left at a stale value
    assert (_depth_of('t2.inventory'), _depth_of('t2.dead')) == (5, None)
    assert all(c.closed for c in connection.opened)
    Service._depth(service, FakeChannel(FakeConnection({}, fail_open=True),
                                        {}))
    Service._depth(service, types.SimpleNamespace(connection=None))
