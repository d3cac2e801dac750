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

from hwbus.localstack.common import TOP
from tests.e2e.conftest import (
    Guest,
    Site,
    assert_node_is_the_guest,
    image_size,
)


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
    assert_node_is_the_guest(site, console)
    assert 'issued boot' in site.bootserver.log.read_text()
