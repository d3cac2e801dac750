"""A machine nobody registered network-boots and appears in Ironic."""

import datetime
import time

from hwbus.localstack.common import wait_for
from hwbus.store.api import utcnow
from tests.e2e.conftest import (
    GUEST_MACS,
    Guest,
    assert_node_is_the_guest,
    delivered,
    node_by_mac,
)


def test_an_unknown_machine_pxe_boots_into_ironic_and_powers_off(site):
    guest = Guest(site.tmp).pxe(site.bootfile)
    took = guest.wait_off(timeout=600)
    console = guest.text()
    print(f'\nPXE boot to power-off: {took:.1f} s')
    assert_node_is_the_guest(site, console)
    assert 'issued boot' in site.bootserver.log.read_text()


def test_an_expired_credential_enters_nothing_and_the_guest_powers_off(site):
    issued = site.credentials.issue(mac=GUEST_MACS[0], ttl=60,
                                    after='poweroff')
    swept = site.credentials.sweep(
        now=utcnow() + datetime.timedelta(seconds=61))
    assert issued.credential.boot_id in swept.expired
    guest = Guest(site.tmp).direct(site.image / 'vmlinuz',
                                   site.image / 'initramfs.zst',
                                   issued.cmdline)
    guest.wait_off(timeout=600)
    console = guest.text()
    assert "refused this boot's credential" in console, console[-3000:]
    assert 'NOT delivered' in console
    assert site.ironic.nodes() == []


def test_the_guest_retries_until_the_broker_is_back(site):
    issued = site.credentials.issue(mac=GUEST_MACS[0], after='poweroff')
    site.broker.stop()
    try:
        guest = Guest(site.tmp).direct(site.image / 'vmlinuz',
                                       site.image / 'initramfs.zst',
                                       issued.cmdline)
        wait_for(lambda: guest.text().count('retrying') >= 2, 300,
                 'the guest retrying')
    finally:
        site.broker.start()
    started = time.monotonic()
    guest.wait_off(timeout=600)
    assert delivered(guest.text())
    wait_for(lambda: node_by_mac(site.ironic, GUEST_MACS[0]), 120,
             'the node')
    print(f'\nconfirmed {time.monotonic() - started:.1f} s after the broker '
          f'came back')
