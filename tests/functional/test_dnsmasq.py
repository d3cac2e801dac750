"""etc/dnsmasq/hwbus.conf, run: the boot file each kind of firmware is
offered over IPv4 (BIOS, UEFI x86-64 PXE, UEFI HTTP boot x86-64 and
arm64, iPXE itself).

dnsmasq runs with the example file as shipped (only its interface name
replaced) in one network namespace; a client in another, joined by a
veth pair, is the firmware: it sends DHCPDISCOVER as each firmware does
(option 93 client architecture, option 60 vendor class, option 175 for
iPXE) and reads the offer's boot file and vendor class. Needs root and
dnsmasq.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hwbus.localstack.common import TOP
from tests.functional.dnsmasq_wire import dnsmasq_on_a_wire

CONF = TOP / 'etc' / 'dnsmasq' / 'hwbus.conf'

# Run inside the client namespace: one DISCOVER, the OFFER as JSON.
CLIENT = r'''
import json, os, socket, struct, sys
dev, arch, vendor, ipxe = (sys.argv[1], int(sys.argv[2]), sys.argv[3],
                           sys.argv[4] == '1')
mac = bytes.fromhex('525400123456')
xid = os.urandom(4)
options = bytes([53, 1, 1]) + bytes([93, 2]) + struct.pack('!H', arch)
options += bytes([60, len(vendor)]) + vendor.encode()
options += bytes([55, 4, 1, 3, 60, 67])
if ipxe:
    options += bytes([175, 3, 0xeb, 1, 1])
packet = (struct.pack('!BBBB', 1, 1, 6, 0) + xid + struct.pack('!HH', 0,
          0x8000) + bytes(16) + mac + bytes(10) + bytes(192)
          + b'\x63\x82\x53\x63' + options + b'\xff')
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, dev.encode())
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
s.bind(('0.0.0.0', 68))
s.settimeout(2)
for attempt in range(5):
    s.sendto(packet, ('255.255.255.255', 67))
    try:
        data = s.recv(4096)
    except TimeoutError:
        continue
    if data[0] == 2 and data[4:8] == xid:
        break
else:
    sys.exit('no offer')
found = {'address': socket.inet_ntoa(data[16:20]),
         'file': data[108:236].split(b'\0')[0].decode()}
at = 240
while at < len(data) and data[at] != 255:
    if data[at] == 0:
        at += 1
        continue
    code, size = data[at], data[at + 1]
    value = data[at + 2:at + 2 + size]
    at += 2 + size
    if code == 60:
        found['vendor_class'] = value.decode()
    elif code == 67:
        found['option_67'] = value.split(b'\0')[0].decode()
print(json.dumps(found))
'''


@pytest.mark.parametrize('conf', [CONF, CONF.parent / 'hwbus-secureboot.conf'])
def test_the_example_passes_dnsmasqs_own_check(conf):
    """hwbus-secureboot.conf's answers are proven by a firmware's own PXE:
    tests/e2e/test_uefi.py boots an x86-64 Secure Boot guest with it,
    tests/e2e/test_arm64.py an arm64 one (client arch 11)."""
    result = subprocess.run(['dnsmasq', '--test', f'--conf-file={conf}'],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert 'syntax check OK' in result.stderr


@pytest.fixture(scope='module')
def provisioning(tmp_path_factory):
    """dnsmasq with the example on a veth between two namespaces."""
    with dnsmasq_on_a_wire(tmp_path_factory.mktemp('dnsmasq4'), CONF, 'd4',
                           '192.0.2.1/24', 'DHCP, IP range') as wire:
        _, _, client, cdev, log = wire
        yield client, cdev, log


def _discover(provisioning, arch: int, vendor: str,
              ipxe: bool = False) -> dict:
    client, cdev, log = provisioning
    result = subprocess.run(
        ['ip', 'netns', 'exec', client, sys.executable, '-c', CLIENT, cdev,
         str(arch), vendor, '1' if ipxe else '0'],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr + log.read_text()[-2000:]
    return json.loads(result.stdout)


PXE = 'PXEClient:Arch:{:05d}:UNDI:002001'
HTTP = 'HTTPClient:Arch:{:05d}:UNDI:003001'


@pytest.mark.parametrize('arch, vendor, ipxe, bootfile', [
    (0, PXE, False, 'undionly.kpxe'),
    (7, PXE, False, 'ipxe.efi'),
    (9, PXE, False, 'ipxe.efi'),
    (16, HTTP, False, 'http://192.0.2.1:8086/hwbus-x64.img'),
    (19, HTTP, False, 'http://192.0.2.1:8086/hwbus-aa64.img'),
    (0, PXE, True, 'http://192.0.2.1:8086/boot.ipxe'),
    (7, PXE, True, 'http://192.0.2.1:8086/boot.ipxe'),
])
def test_each_firmware_gets_its_boot_file(provisioning, arch, vendor, ipxe,
                                          bootfile):
    answer = _discover(provisioning, arch, vendor.format(arch), ipxe)
    assert bootfile in (answer['file'], answer.get('option_67')), answer
    assert answer['address'].startswith('192.0.2.')
    # UEFI HTTP boot takes only an offer that says HTTPClient back.
    http = vendor is HTTP
    assert (answer.get('vendor_class') == 'HTTPClient') == http, answer
