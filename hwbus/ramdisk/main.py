"""The ramdisk's one job: collect, seal, publish, then the after-action.

Whatever goes wrong, the operator learns why: a collection that fails
badly is sent as a signed error report, every step logs a line on the
console, and nothing waits forever (collectors and the publish both have
deadlines).
"""

from __future__ import annotations

import logging
import traceback
from typing import TYPE_CHECKING, Any

from hwbus import bootparams, inventory, keys
from hwbus.errors import HwbusError
from hwbus.ramdisk import after
from hwbus.ramdisk.collectors import runner
from hwbus.ramdisk.collectors.base import Options
from hwbus.ramdisk.probes.sysroot import SystemRoot

if TYPE_CHECKING:
    from hwbus import envelope

# Each step imports what it needs when it starts: the signing and BMC
# steps (cryptography) in seal and run, publishing (pika, ssl) in run.
# Under emulation (QEMU TCG) those imports take seconds; the program's
# first line on the console, and a refused command line, come before.

LOG = logging.getLogger('hwbus.ramdisk')

EXIT_OK, EXIT_FAILED, EXIT_BAD_PARAMS = 0, 1, 2


def gather(root: SystemRoot, params: bootparams.BootParams,
           names: list[str] | None = None,
           deadline: float = runner.DEFAULT_DEADLINE,
           ) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The document to send, and an error report when collection broke."""
    try:
        document = runner.collect(root, Options(lldp_timeout=params.lldp),
                                  names, deadline=deadline)
    except Exception as exc:
        LOG.error('collection failed: %s', exc)
        return ({'inventory': {}, 'plugin_data': {'errors': []}},
                {'stage': 'collect', 'message': f'{type(exc).__name__}: '
                 f'{exc}'[:2000],
                 'traceback': traceback.format_exc()[-4000:]})
    problems = inventory.problems_once(document)
    if problems:
        LOG.error('the inventory does not match the schema: %s',
                  '; '.join(problems[:5]))
        return document, {'stage': 'validate',
                          'message': 'the inventory does not match the '
                                     'schema', 'problems': problems[:50]}
    errors = document['plugin_data'].get('errors', [])
    LOG.info('collected %d disks, %d interfaces, %d CPUs; %d collector '
             'errors', len(document['inventory'].get('disks', [])),
             len(document['inventory'].get('interfaces', [])),
             document['inventory'].get('cpu', {}).get('count', 0),
             len(errors))
    return document, None


def seal(document: dict[str, Any], error: dict[str, Any] | None,
         params: bootparams.BootParams,
         max_size: int | None = None,
         secrets: dict[str, Any] | None = None) -> envelope.Sealed:
    """Seal, shedding plugin_data and then the inventory when oversize
    (``max_size``, default envelope.MAX_SIZE). ``secrets`` (sealed to
    the consumer) are never shed."""
    from hwbus import envelope

    if max_size is None:
        max_size = envelope.MAX_SIZE
    key = keys.private_key(params.key)
    attempts = [(document['inventory'], document['plugin_data'], error)]
    shed = {'stage': 'seal', 'message': 'the document exceeded the size '
            f'limit of {max_size} bytes; plugin_data was left out'}
    attempts.append((document['inventory'],
                     {'errors': document['plugin_data'].get('errors', [])},
                     error or shed))
    attempts.append(({}, {'errors': []},
                     {'stage': 'seal', 'message': 'the inventory alone '
                      f'exceeded the size limit of {max_size} bytes'}))
    for inv, plugin_data, report in attempts:
        try:
            return envelope.seal(boot_id=params.boot_id, user=params.user,
                                 key=key, inventory=inv,
                                 plugin_data=plugin_data, error=report,
                                 max_size=max_size, sealed=secrets)
        except envelope.Oversize as exc:
            LOG.warning('%s; sending less', exc)
    raise AssertionError('an empty document cannot be oversize')


def run(cmdline: str, root: str = '/', after_action: str | None = None,
        names: list[str] | None = None,
        deadline: float | None = None) -> int:
    """The whole ramdisk program; returns the exit status."""
    try:
        params = bootparams.parse(cmdline)
        keys.seed_bytes(params.key)
    except HwbusError as exc:
        LOG.error('cannot start: %s', exc)
        return EXIT_BAD_PARAMS
    action = after_action or params.after
    LOG.info('boot %s as broker user %s; brokers: %s', params.boot_id,
             params.user, ', '.join(bootparams.redact(u)
                                    for u in params.connection_urls()))
    system = SystemRoot(root)
    document, error = gather(system, params, names)
    from hwbus.ramdisk import bmcstep

    secrets = bmcstep.run(system, params, document)
    sealed = seal(document, error, params, secrets=secrets)
    LOG.info('sealed message %s (%d bytes %s)', sealed.message_id,
             len(sealed.body), sealed.properties['content_encoding'])
    status = EXIT_OK
    from hwbus.ramdisk import publisher

    try:
        publisher.publish(sealed, params, deadline=deadline)
    except HwbusError as exc:
        LOG.error('inventory NOT delivered: %s', exc)
        status = EXIT_FAILED
    after.do(action)
    return status
