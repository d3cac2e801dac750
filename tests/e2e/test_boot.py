"""A machine nobody registered network-boots and appears in Ironic."""

import datetime
import time

from hwbus.localstack.common import wait_for
from hwbus.store import State
from hwbus.store.api import utcnow
from tests.e2e.conftest import GUEST_DISKS, GUEST_MACS, GUEST_RAM_MB, Guest


def _node_by_mac(ironic, mac):
    for port in ironic.ports():
        if port['address'] == mac:
            return port['node_uuid']
    return None


def _delivered(console: str) -> bool:
    """The ramdisk's word that the broker took the inventory: a confirm,
    or the consumer deleting the credential before the confirm came."""
    return ('confirmed message' in console
            or 'awaited its confirm' in console)


def test_an_unknown_machine_pxe_boots_into_ironic_and_powers_off(site):
    guest = Guest(site.tmp).pxe(site.bootfile)
    took = guest.wait_off(timeout=600)
    console = guest.text()
    print(f'\nPXE boot to power-off: {took:.1f} s')
    assert _delivered(console), console[-3000:]
    wait_for(lambda: _node_by_mac(site.ironic, GUEST_MACS[0]), 60,
             'the node')
    node = _node_by_mac(site.ironic, GUEST_MACS[0])
    stored = {}
    wait_for(lambda: stored.update(site.ironic.get(
        f'/v1/nodes/{node}/inventory')) or stored, 60, 'its inventory')
    inventory = stored['inventory']
    assert inventory['cpu']['count'] == 2
    assert inventory['memory']['physical_mb'] == GUEST_RAM_MB
    assert sorted((d['serial'], d['size']) for d in inventory['disks']) == \
        sorted(GUEST_DISKS)
    assert sorted(i['mac_address'] for i in inventory['interfaces']) == \
        sorted(GUEST_MACS)
    assert inventory['boot']['pxe_interface'] == GUEST_MACS[0]
    properties = site.ironic.get(f'/v1/nodes/{node}')['properties']
    assert properties['memory_mb'] == GUEST_RAM_MB
    assert properties['cpu_arch'] == 'x86_64'
    [credential] = site.store.list()
    assert credential.mac == GUEST_MACS[0]
    assert credential.issued_by == 'bootserver'
    wait_for(lambda: site.store.get(credential.boot_id).state ==
             State.APPLIED.value, 30, 'applied')
    assert credential.username not in site.broker.users()
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
    assert _delivered(guest.text())
    wait_for(lambda: _node_by_mac(site.ironic, GUEST_MACS[0]), 120,
             'the node')
    print(f'\nconfirmed {time.monotonic() - started:.1f} s after the broker '
          f'came back')
