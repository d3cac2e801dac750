"""UEFI machines nobody registered network-boot and appear in Ironic.

Two firmware paths of x86-64 UEFI (docs/bootserver.md):

* OVMF with iPXE (QEMU's EFI iPXE option ROM), chain-loading
  ``/boot.ipxe`` exactly as the BIOS row (test_boot.py) does;
* OVMF with Secure Boot enforced (Microsoft's keys enrolled) and its own
  UEFI HTTP boot: the signed shim, then Debian's signed network GRUB,
  both from the boot server, GRUB sourcing ``/grub/grub.cfg`` and the
  per-boot ``/boot.grub``, then the Debian-signed kernel and the hwbus
  initramfs. The guest's own report must say Secure Boot was on.
"""

from hwbus.localstack.common import wait_for
from hwbus.store import State
from tests.e2e.conftest import (
    GUEST_DISKS,
    GUEST_MACS,
    GUEST_RAM_MB,
    Guest,
    image_size,
)


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


def _boot_into_ironic(site, firmware: str, bootfile: str) -> dict:
    """Boot a guest with ``firmware``; assert what the BIOS row asserts
    (the node has exactly the guest's CPUs, memory, disks and MACs, the
    credential was applied and revoked, the guest powered off); return
    what Ironic stored for the node (inventory and plugin_data)."""
    guest = Guest(site.tmp, firmware=firmware).pxe(bootfile)
    took = guest.wait_off(timeout=900)
    console = guest.text()
    print(f'\n{firmware} network boot to power-off under {guest.accel}: '
          f'{took:.1f} s; image {image_size(site.image)}')
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
    assert inventory['boot']['current_boot_mode'] == 'uefi'
    properties = site.ironic.get(f'/v1/nodes/{node}')['properties']
    assert properties['memory_mb'] == GUEST_RAM_MB
    assert properties['cpu_arch'] == 'x86_64'
    [credential] = site.store.list()
    assert credential.mac == GUEST_MACS[0]
    assert credential.issued_by == 'bootserver'
    wait_for(lambda: site.store.get(credential.boot_id).state ==
             State.APPLIED.value, 30, 'applied')
    assert credential.username not in site.broker.users()
    return stored


def test_a_uefi_machine_boots_through_ipxe_into_ironic(site):
    stored = _boot_into_ironic(site, 'uefi', site.bootfile)
    assert stored['plugin_data']['boot_details'] == {'secure_boot': False}
    log = site.bootserver.log.read_text()
    assert '(x86_64, boot.ipxe)' in log  # iPXE named its architecture

