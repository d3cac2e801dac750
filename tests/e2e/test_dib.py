"""The diskimage-builder image PXE-boots an unknown machine into Ironic.

The image is built by tools/build-dib-ramdisk (disk-image-create with
elements/hwbus-initramfs, cached by a hash of its inputs) and served by
the boot server unchanged, through the same iPXE flow as test_boot.py.
"""

import json
import pathlib
import subprocess
import sys
import time

import pytest

from hwbus.localstack.common import TOP, wait_for
from hwbus.store import State
from tests.e2e.conftest import (
    GUEST_DISKS,
    GUEST_MACS,
    GUEST_RAM_MB,
    Guest,
    Site,
    image_size,
)
from tests.e2e.test_boot import _delivered, _node_by_mac


@pytest.fixture(scope='session')
def dib_image():
    """Kernel and initramfs from disk-image-create (cached when unchanged)."""
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(TOP / 'tools' / 'build-dib-ramdisk')],
        capture_output=True, text=True, timeout=3600)
    assert result.returncode == 0, result.stderr[-5000:]
    out = pathlib.Path(result.stdout.strip().splitlines()[-1])
    print(f'\nDIB image: {out}, {image_size(out)}, '
          f'{time.monotonic() - started:.0f} s to build or find')
    return out


@pytest.fixture
def dib_site(broker, clean_ironic, dib_image, tmp_path):
    s = Site(broker, clean_ironic, dib_image, tmp_path)
    yield s
    s.stop()


def test_the_dib_image_pxe_boots_an_unknown_machine_into_ironic(dib_site):
    site = dib_site
    build = json.loads((site.image / 'build.json').read_text())
    assert build['builder'].startswith('diskimage-builder ')
    guest = Guest(site.tmp).pxe(site.bootfile)
    took = guest.wait_off(timeout=900)
    console = guest.text()
    print(f'\n{build["builder"]} image, {image_size(site.image)}: '
          f'PXE boot to power-off {took:.1f} s')
    # hwbus's own /init ran it, not the base image's systemd.
    assert 'hwbus-init: starting hwbus-ramdisk' in console, console[-3000:]
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
