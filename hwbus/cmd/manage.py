"""hwbus-manage: what an operator does by hand.

    hwbus-manage check
    hwbus-manage db upgrade|version
    hwbus-manage setup-broker [--print-definitions]
    hwbus-manage issue --mac M [--node N] [--ttl 30m]
                       [--bmc create|keep|off] [--format cmdline|ipxe|json]
    hwbus-manage seal-key create --output FILE | show
    hwbus-manage credentials list|revoke BOOT_ID|sweep
    hwbus-manage replay --node N | history --node N
    hwbus-manage dead list|show ID|replay [ID|--reason R|--all]|purge [...]

Configuration comes from /etc/hwbus/hwbus.conf (or --config-file).
Secrets (the boot's password and key) are printed only by ``issue``, on
standard output, for the machine that boots; they never reach the log.
"""

from __future__ import annotations

import json
import os
import re
import sys
from typing import Any

from oslo_config import cfg
from oslo_log import log

from hwbus.broker import topology as broker_topology
from hwbus.cmd import guarded, setup_service, wiring
from hwbus.conf import CONF
from hwbus.store import State, Store

LOG = log.getLogger(__name__)
DOMAIN = 'hwbus'


def parse_duration(text: str) -> int:
    """Seconds from "90", "90s", "30m", "12h" or "2d"."""
    match = re.fullmatch(r'\s*(\d+)\s*([smhd]?)\s*', text)
    if not match:
        raise ValueError(f'{text!r} is not a duration like 30m or 3600')
    return int(match.group(1)) * {'': 1, 's': 1, 'm': 60, 'h': 3600,
                                  'd': 86400}[match.group(2)]


# -- commands --------------------------------------------------------------
def do_db() -> int:
    store = Store(CONF.database.connection, auto_upgrade=False) \
        if CONF.command.action == 'version' else wiring.store()
    if CONF.command.action == 'upgrade':
        store.upgrade()
    print(store.revision() or 'empty')
    return 0


def do_setup_broker() -> int:
    topology = wiring.topology()
    password = CONF.broker.consumer_password
    if CONF.command.print_definitions:
        print(json.dumps(broker_topology.definitions(topology, password),
                         indent=2))
        return 0
    for line in broker_topology.setup(wiring.management(), topology, password):
        print(f'declared {line}')
    print(f'broker configuration needed (rabbitmq.conf on every node): '
          f'{topology.broker_config()}')
    return 0


def do_issue() -> int:
    credentials = wiring.credentials()
    ttl = parse_duration(CONF.command.ttl) if CONF.command.ttl \
        else CONF.credentials.ttl
    if CONF.command.write_node and not CONF.command.node:
        print('hwbus-manage issue: --write-node needs --node',
              file=sys.stderr)
        return 2
    if not (CONF.command.mac or CONF.command.node):
        print('hwbus-manage issue: give --mac, --node or both',
              file=sys.stderr)
        return 2
    node: tuple[Any, Any] | None = None
    if CONF.command.write_node:
        # Find the node first: a credential for a node that does not
        # exist would stay live for nothing.
        node = _find_node(CONF.command.node)
    issued = credentials.issue(
        mac=CONF.command.mac, node=CONF.command.node, ttl=ttl,
        after=CONF.command.after or CONF.ramdisk.after,
        lldp=CONF.ramdisk.lldp_timeout, bmc=_bmc_mode(node))
    record = issued.credential.to_dict()
    if CONF.command.write_node:
        try:
            _write_node(node or _find_node(CONF.command.node),
                        issued.cmdline)
        except Exception:
            credentials.revoke(record['boot_id'])
            raise
        print(f'wrote the hwbus parameters of boot {record["boot_id"]} to '
              f'node {CONF.command.node} driver_info/kernel_append_params')
        return 0
    fmt = CONF.command.format
    if fmt == 'cmdline':
        print(issued.cmdline)
    elif fmt == 'ipxe':
        print('#!ipxe')
        print(f'# hwbus boot {record["boot_id"]}, expires '
              f'{record["expires_at"]}')
        print(f'set hwbus_args {issued.cmdline}')
    else:
        print(json.dumps({**record, 'kernel_params': issued.cmdline},
                         indent=2))
    return 0


def _bmc_mode(found: tuple[Any, Any] | None) -> str | None:
    """hwbus.bmc= for this boot: --bmc, else [bmc] account with the
    rotation rule applied to the node (--node, or the node owning
    --mac)."""
    from hwbus import binding, bmc

    asked = CONF.command.bmc_mode
    if asked is not None:
        return None if asked == 'off' else asked
    account, rotate = CONF.bmc.account, CONF.bmc.rotate
    if account == 'off':
        return None
    if CONF.command.node:
        node = (found or _find_node(CONF.command.node))[1]
        return bmc.issue_mode(account, rotate, node)
    from hwbus.credentials import normalize_mac

    rule = binding.Binding(wiring.ironic_connection(), ())
    return rule.bmc_mode_for(normalize_mac(CONF.command.mac), account,
                             rotate)


def do_seal_key() -> int:
    """Create the consumer's sealing key, or print its public half."""
    from hwbus import keys, sealing

    if CONF.command.action == 'create':
        path = CONF.command.output
        if not path:
            print('hwbus-manage seal-key create: give --output FILE (then '
                  'set [sealing] private_key_file to it)', file=sys.stderr)
            return 2
        key = sealing.new_private_key()
        try:
            # O_EXCL: never overwrite a key that sealed secrets still open
            # with; 0600: the consumer's secret.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            print(f'hwbus-manage seal-key create: {path} exists; a key in '
                  f'use is never overwritten (rotate: create a new file, '
                  f'move the old one to [sealing] previous_key_files)',
                  file=sys.stderr)
            return 1
        with os.fdopen(fd, 'wb') as f:
            f.write(sealing.private_pem(key))
        print(keys.b64encode(sealing.public_bytes(key)))
        return 0
    public = wiring.seal_public()
    if public is None:
        print('hwbus-manage seal-key show: no key: set [sealing] '
              'private_key_file or public_key', file=sys.stderr)
        return 1
    print(keys.b64encode(public))
    return 0


def _find_node(ident: str) -> tuple[Any, Any]:
    """(baremetal proxy, node) for a node name or UUID Ironic knows."""
    from hwbus import ironic

    baremetal = ironic.baremetal(wiring.ironic_connection())
    with ironic.calling('node lookup'):
        node = baremetal.find_node(ident, ignore_missing=True)
    if node is None:
        raise ironic.NodeNotFound(f'Ironic knows no node {ident}: check '
                                  f'--node ("baremetal node list")')
    return baremetal, node


def _write_node(found: tuple[Any, Any], cmdline: str) -> None:
    """Put the boot's parameters where Ironic's own boot will pass them.

    Existing kernel_append_params are kept, older hwbus.* words replaced.
    They hold this boot's password and key until the credential is used
    or expires, readable to whoever may read the node's driver_info.
    """
    from hwbus import ironic

    baremetal, node = found
    current = (node.driver_info or {}).get('kernel_append_params') or ''
    kept = [w for w in current.split() if not w.startswith('hwbus.')]
    with ironic.calling('node update'):
        baremetal.patch_node(node, [{
            'op': 'add', 'path': '/driver_info/kernel_append_params',
            'value': ' '.join([*kept, cmdline])}])


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
    widths = {c: max([len(c)] + [len(str(r.get(c) or '-')) for r in rows])
              for c in columns}
    lines = ['  '.join(c.upper().ljust(widths[c]) for c in columns)]
    lines += ['  '.join(str(r.get(c) or '-').ljust(widths[c])
                        for c in columns) for r in rows]
    return '\n'.join(line.rstrip() for line in lines)


def do_credentials() -> int:
    action = CONF.command.action
    if action == 'list':
        store = wiring.store()
        wanted = set(CONF.command.state or [])
        # An issued credential past its expiry lists as expired even
        # before a sweep: ask the store for both, filter what is shown.
        states = [State(s) for s in wanted | (
            {State.ISSUED.value} if State.EXPIRED.value in wanted else set())]
        rows = [c.to_dict() for c in store.list(
            states=states, mac=CONF.command.mac, node=CONF.command.node)]
        rows = [r for r in rows if not wanted or r['state'] in wanted]
        if CONF.command.format == 'json':
            print(json.dumps(rows, indent=2))
        else:
            print(_table(rows, ['boot_id', 'username', 'state', 'mac',
                                'node', 'expires_at', 'issued_by']))
        return 0
    credentials = wiring.credentials()
    if action == 'revoke':
        for boot_id in CONF.command.boot_id:
            credential = credentials.revoke(boot_id)
            print(f'{boot_id}: {credential.state}, broker user '
                  f'{credential.username} deleted')
        return 0
    result = credentials.sweep()
    print(f'expired {len(result.expired)}, finished '
          f'{len(result.finished)} revocations, deleted '
          f'{len(result.orphans)} orphan broker users')
    return 0


def _pipeline():
    return wiring.pipeline()


def _archived_properties(record: Any) -> dict[str, Any]:
    from hwbus import envelope

    return {'content_type': envelope.CONTENT_TYPE,
            'content_encoding': record.content_encoding,
            'user_id': record.user_id, 'message_id': record.message_id,
            'headers': {envelope.HEADER_BOOT: record.boot_id,
                        envelope.HEADER_SIGNATURE: record.signature}}


def do_replay() -> int:
    """Re-apply the last archived inventory of a node (verified again)."""
    store = wiring.store()
    records = store.inventories(node=_node_uuid(CONF.command.node),
                                limit=1)
    if not records:
        print(f'hwbus-manage: no archived inventory for node '
              f'{CONF.command.node}', file=sys.stderr)
        return 1
    record = records[0]
    outcome = _pipeline().process(record.body, _archived_properties(record),
                                  replay=True)
    print(f'{record.message_id} (boot {record.boot_id}): {outcome.kind}'
          f'{" " + outcome.reason if outcome.reason else ""}'
          f'{" " + outcome.detail if outcome.detail else ""}')
    return 0 if outcome.kind == 'applied' else 1


def _node_uuid(ident: str) -> str:
    """A node's UUID from a name or UUID: the archive keeps UUIDs."""
    import uuid

    try:
        return str(uuid.UUID(ident))
    except ValueError:
        pass
    return _find_node(ident)[1].id


def do_history() -> int:
    """What changed in a node's hardware from one boot to the next."""
    from hwbus.consumer import history

    node = _node_uuid(CONF.command.node)
    # One more than shown: the oldest row shown is then compared with the
    # boot before it, and only the very first is "first inventory".
    records = list(reversed(wiring.store().inventories(
        node=node, limit=CONF.command.limit + 1)))
    if not records:
        print(f'no archived inventory for node {CONF.command.node}')
        return 0
    previous = None
    if len(records) > CONF.command.limit:
        previous = history.document_of(records.pop(0))
    for record in records:
        document = history.document_of(record)
        when = record.applied_at.isoformat(timespec='seconds')
        if previous is None:
            print(f'{when} boot {record.boot_id}: first inventory')
        else:
            changes = history.diff(previous, document) or ['no change']
            print(f'{when} boot {record.boot_id}:')
            for line in changes:
                print(f'    {line}')
        for line in history.applied_changes(record):
            print(f'    applied: {line}')
        previous = document
    return 0


def do_dead() -> int:
    from hwbus.consumer import deadletters

    box = deadletters.DeadLetters(wiring.consumer_urls(),
                                  CONF.broker.dead_queue)
    try:
        action = CONF.command.action
        if action == 'show':
            ids = set(CONF.command.ids)
            shown = [d.full(CONF.broker.max_message_size) for d in box.list()
                     if ids & {d.message_id, d.boot_id}]
            if not shown:
                print(f'hwbus-manage: no dead letter with message or boot id '
                      f'{", ".join(sorted(ids))} ("hwbus-manage dead list" '
                      f'shows them)', file=sys.stderr)
                return 1
            print(json.dumps(shown, indent=2, default=str))
            return 0
        if action == 'list':
            rows = [d.row() for d in box.list()]
            if CONF.command.format == 'json':
                print(json.dumps(rows, indent=2))
            else:
                print(_table(rows, ['message_id', 'reason', 'user_id',
                                    'dead_at', 'size', 'detail']))
            return 0
        match = deadletters.matcher(CONF.command.ids, CONF.command.reason,
                                    CONF.command.all)
        if action == 'purge':
            gone = box.purge(match)
            print(f'purged {len(gone)} dead letters')
            return 0
        results = box.replay(match, _pipeline())
        for dead, outcome in results:
            print(f'{dead.message_id}: {outcome.kind}'
                  f'{" " + outcome.reason if outcome.reason else ""}')
        return 0 if all(o.kind == 'applied' for _, o in results) else 1
    finally:
        box.close()


def do_check() -> int:
    """Every part of the site this configuration names, one line each."""
    from hwbus import checks
    topology = wiring.topology()
    results = []
    results += checks.run(lambda: checks.management(wiring.management(),
                                                    topology),
                          'broker management API')
    results += checks.run(lambda: checks.consumer_login(
        wiring.consumer_urls(), (topology.queue, topology.dead_queue),
        wiring.consumer_tls()), 'consumer broker login')
    results += checks.run(lambda: checks.store(CONF.database.connection),
                          'store')
    if CONF.consumer.appliers != ['null']:
        results += checks.run(lambda: checks.ironic(
            wiring.ironic_connection(), CONF.consumer.appliers,
            CONF.ironic.api_version, CONF.enroll.driver), 'Ironic API')
    results += checks.run(lambda: checks.sealing(
        CONF.bmc.account, wiring.seal_keyring, wiring.seal_public),
        'sealing key')
    results += checks.run(lambda: checks.images(CONF.bootserver),
                          'boot server images')
    results += checks.run(lambda: checks.tls_files({
        '[broker] ca_file': CONF.broker.ca_file,
        '[broker] management_ca_file': CONF.broker.management_ca_file,
        '[bootserver] cert_file': CONF.bootserver.cert_file,
        '[bootserver] key_file': CONF.bootserver.key_file,
        '[ironic] cafile': CONF.ironic.cafile}), 'TLS files')
    for result in results:
        print(result.line())
    failed = [r for r in results if r.status == checks.FAIL]
    print(f'{len(failed)} of {len(results)} checks failed' if failed
          else f'all {len(results)} checks passed')
    return 1 if failed else 0


def add_command_parsers(subparsers: Any) -> None:
    check = subparsers.add_parser(
        'check', help='check the broker, the store, Ironic, the boot '
                      'server\'s images and TLS files this configuration '
                      'names; each line says OK or what fixes it')
    check.set_defaults(func=do_check)

    db = subparsers.add_parser('db', help='store schema')
    db.add_argument('action', choices=['upgrade', 'version'])
    db.set_defaults(func=do_db)

    setup = subparsers.add_parser(
        'setup-broker', help='declare exchanges, queues and the consumer '
                             'user (idempotent)')
    setup.add_argument('--print-definitions', action='store_true',
                       help='print a RabbitMQ definitions file instead')
    setup.set_defaults(func=do_setup_broker)

    issue = subparsers.add_parser(
        'issue', help='issue a credential for one boot and print its kernel '
                      'parameters (they hold secrets)')
    issue.add_argument('--mac', help='MAC the machine boots from')
    issue.add_argument('--node', help='Ironic node name or UUID')
    issue.add_argument('--ttl', help='validity, e.g. 30m (default: '
                                     '[credentials] ttl)')
    issue.add_argument('--after', choices=['poweroff', 'reboot', 'agent',
                                           'none'],
                       help='after-action (default: [ramdisk] after)')
    issue.add_argument('--format', choices=['cmdline', 'ipxe', 'json'],
                       default='cmdline')
    issue.add_argument('--write-node', action='store_true',
                       help='write the parameters into the node\'s '
                            'driver_info/kernel_append_params instead of '
                            'printing them, so that Ironic\'s own '
                            'inspection boots the hwbus ramdisk')
    issue.add_argument('--bmc', dest='bmc_mode',
                       choices=['create', 'keep', 'off'],
                       help='the BMC user for this boot (default: [bmc] '
                            'account, keeping the credentials of a node '
                            'that has some unless [bmc] rotate)')
    issue.set_defaults(func=do_issue)

    seal = subparsers.add_parser(
        'seal-key', help='the consumer\'s X25519 key that BMC passwords are '
                         'sealed to')
    seal.add_argument('action', choices=['create', 'show'],
                      help='create: write a new private key (mode 0600) '
                           'and print its public key; show: print the '
                           'public key of [sealing]')
    seal.add_argument('--output', help='file for the new private key')
    seal.set_defaults(func=do_seal_key)

    creds = subparsers.add_parser('credentials', help='per-boot credentials')
    actions = creds.add_subparsers(dest='action', required=True)
    listing = actions.add_parser('list')
    listing.add_argument('--state', action='append',
                         choices=[s.value for s in State])
    listing.add_argument('--mac')
    listing.add_argument('--node')
    listing.add_argument('--format', choices=['table', 'json'],
                         default='table')
    revoke = actions.add_parser('revoke')
    revoke.add_argument('boot_id', nargs='+')
    actions.add_parser('sweep')
    creds.set_defaults(func=do_credentials)

    replay = subparsers.add_parser(
        'replay', help='re-apply the last archived inventory of a node')
    replay.add_argument('--node', required=True)
    replay.set_defaults(func=do_replay)

    hist = subparsers.add_parser(
        'history', help='hardware changes of a node between boots')
    hist.add_argument('--node', required=True)
    hist.add_argument('--limit', type=int, default=20)
    hist.set_defaults(func=do_history)

    dead = subparsers.add_parser('dead', help='dead letters')
    dead_actions = dead.add_subparsers(dest='action', required=True)
    dead_list = dead_actions.add_parser('list')
    dead_list.add_argument('--format', choices=['table', 'json'],
                           default='table')
    dead_show = dead_actions.add_parser('show')
    dead_show.add_argument('ids', nargs='+', metavar='ID')
    for name in ('replay', 'purge'):
        sub = dead_actions.add_parser(name)
        sub.add_argument('ids', nargs='*', metavar='ID',
                         help='message ids or boot ids')
        sub.add_argument('--reason', help='only dead letters of this reason')
        sub.add_argument('--all', action='store_true')
    dead.set_defaults(func=do_dead)


@guarded
def main(argv: list[str] | None = None) -> int:
    setup_service(argv, [cfg.SubCommandOpt(
        'command', title='Commands', handler=add_command_parsers)])
    try:
        return CONF.command.func()
    except ValueError as exc:  # what the operator typed (a duration, ids)
        print(f'hwbus-manage: {exc}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
