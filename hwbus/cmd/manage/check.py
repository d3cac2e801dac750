"""hwbus-manage check: every part of the site, one line each."""

from __future__ import annotations

from typing import Any

from hwbus.cmd import wiring
from hwbus.conf import CONF


def add_parser(subparsers: Any) -> None:
    check = subparsers.add_parser(
        'check', help='check the broker, the store, Ironic, the boot '
                      'server\'s images and TLS files this configuration '
                      'names; each line says OK or what fixes it')
    check.set_defaults(func=do_check)


def do_check() -> int:
    """Every part of the site this configuration names, one line each."""
    from hwbus import checks
    topology = wiring.topology()
    results = []
    results += checks.run(lambda: checks.management(wiring.management(),
                                                    topology),
                          'broker management API')
    results += checks.run(lambda: checks.consumer_login(
        wiring.consumer_urls(), (topology.queue, topology.dead_queue,
                                 topology.broker_dead_queue),
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
