"""The ``hwbus.bmc=`` step: the BMC account, sealed for the consumer.

Runs after collection (the BMC collector has found the LAN channel by
then) and before sealing the message. Whatever the BMC does, the
inventory goes out: what went wrong is in ``plugin_data.bmc_account``
and ``plugin_data.errors``. A password is minted only when it can be
sealed: without a usable ``hwbus.seal`` key, nothing on the BMC changes.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from hwbus import bmc, bootparams, sealing
from hwbus.ramdisk.bmc_account import ensure
from hwbus.ramdisk.collectors import bmc as bmc_collector
from hwbus.ramdisk.probes.sysroot import SystemRoot

LOG = logging.getLogger(__name__)


def run(root: SystemRoot, params: bootparams.BootParams,
        document: dict[str, Any]) -> dict[str, Any] | None:
    """Do what ``hwbus.bmc=`` asks; record it in ``document``'s
    plugin_data; return the ``sealed`` part of the message (None: no
    secret to send)."""
    if not params.bmc:
        return None
    plugin_data = document.setdefault('plugin_data', {})
    errors = plugin_data.setdefault('errors', [])
    why = _cannot(root, params)
    if why:
        LOG.warning('BMC account not %s: %s', params.bmc, why)
        errors.append(f'bmc account: {why}')
        plugin_data['bmc_account'] = {
            'username': ensure.DEFAULT_USERNAME, 'mode': params.bmc,
            'user_id': None, 'action': 'none', 'verified': False,
            'errors': [why]}
        return None
    channel = (plugin_data.get('bmc') or {}).get('channel')
    started = time.monotonic()
    result = ensure.ensure_account(
        root, mode=params.bmc,
        channels=[channel] if isinstance(channel, int) else None)
    LOG.info('BMC account step (%s) took %.2f s', params.bmc,
             time.monotonic() - started)
    plugin_data['bmc_account'] = result.public()
    errors.extend(f'bmc account: {line}' for line in result.errors)
    if result.password is None:
        return None
    secret = bmc.Secret(result.username, result.password)
    assert params.seal is not None  # _cannot checked it
    blob = sealing.seal(sealing.load_public(params.seal), secret.to_bytes(),
                        boot_id=params.boot_id, purpose='bmc')
    LOG.info('BMC user %s (slot %s) %s; password sealed to key %s',
             result.username, result.user_id, result.action, blob['kid'])
    return {'bmc': blob}


def _cannot(root: SystemRoot, params: bootparams.BootParams) -> str | None:
    if params.bmc not in bootparams.BMC_MODES:
        return (f'unknown hwbus.bmc={str(params.bmc)[:20]!r} (one of '
                f'{", ".join(bootparams.BMC_MODES)})')
    if params.bmc == 'create':
        if not params.seal:
            return ('hwbus.bmc=create without hwbus.seal: no key to seal a '
                    'password to, so none was set')
        try:
            sealing.load_public(params.seal)
        except sealing.SealError as exc:
            return f'hwbus.seal: {exc}; no password was set'
    if not bmc_collector.has_ipmi(root):
        return ('no IPMI device (/dev/ipmi0): the kernel found no BMC '
                'through ipmi_si')
    return None
