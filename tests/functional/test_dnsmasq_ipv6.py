"""etc/dnsmasq/hwbus-ipv6.conf, run: router advertisements, DHCPv6 and
the boot file URL each kind of UEFI firmware gets over IPv6.

dnsmasq runs with the example file as shipped (only its interface name
replaced) in one network namespace; a client in another, joined by a
veth pair, is the firmware: it sends DHCPv6 Solicits as UEFI PXE, UEFI
HTTP boot and iPXE do (option 61 client-arch-type, option 15 user
class), and its kernel configures itself by SLAAC from the
advertisements, as the ramdisk's does. Needs root and dnsmasq.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
import time

import pytest

from hwbus.localstack.common import TOP
from tests.functional.dnsmasq_wire import dnsmasq_on_a_wire, ip

CONF = TOP / 'etc' / 'dnsmasq' / 'hwbus-ipv6.conf'
SERVER = '2001:db8:1::1'
RANGE = (ipaddress.IPv6Address('2001:db8:1::100'),
         ipaddress.IPv6Address('2001:db8:1::1ff'))

# Run inside the client namespace: one Solicit, the Advertise's boot
# file URL and address as JSON. The firmware's side of RFC 8415/5970.
CLIENT = r'''
import json, os, socket, struct, sys
dev, arch, ipxe = sys.argv[1], int(sys.argv[2]), sys.argv[3] == '1'
def opt(code, data): return struct.pack('!HH', code, len(data)) + data
mac = bytes.fromhex('525400123456')
xid = os.urandom(3)
body = (opt(1, b'\0\3\0\1' + mac) + opt(8, b'\0\0')
        + opt(3, b'\0\0\0\1' + bytes(8)) + opt(6, struct.pack('!HH', 59, 23))
        + opt(61, struct.pack('!H', arch)))
if ipxe:
    body += opt(15, struct.pack('!H', 4) + b'iPXE')
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, dev.encode())
s.bind(('::', 546))
s.settimeout(2)
index = socket.if_nametoindex(dev)
for attempt in range(5):
    s.sendto(b'\1' + xid + body, ('ff02::1:2', 547, 0, index))
    try:
        data = s.recv(4096)
    except TimeoutError:
        continue
    if data[0] == 2 and data[1:4] == xid:
        break
else:
    sys.exit('no Advertise')
found, at = {}, 4
while at + 4 <= len(data):
    code, size = struct.unpack('!HH', data[at:at + 4])
    value = data[at + 4:at + 4 + size]
    at += 4 + size
    if code == 59:
        found['bootfile_url'] = value.decode()
    elif code == 3:
        inner = value[12:]
        if len(inner) >= 20 and struct.unpack('!H', inner[:2])[0] == 5:
            found['address'] = socket.inet_ntop(socket.AF_INET6,
                                                inner[4:20])
print(json.dumps(found))
'''


def _sysctl(netns: str, dev: str, knob: str, value: str) -> None:
    subprocess.run(['ip', 'netns', 'exec', netns, 'sysctl', '-qw',
                    f'net.ipv6.conf.{dev}.{knob}={value}'], check=True,
                   timeout=30)


def test_the_example_passes_dnsmasqs_own_check():
    result = subprocess.run(['dnsmasq', '--test', f'--conf-file={CONF}'],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert 'syntax check OK' in result.stderr


@pytest.fixture(scope='module')
def provisioning(tmp_path_factory):
    """dnsmasq with the example on a veth between two namespaces."""
    def no_dad(server: str, sdev: str, client: str, cdev: str) -> None:
        # No duplicate address detection on this private wire: addresses
        # are usable at once.
        _sysctl(server, sdev, 'accept_dad', '0')
        _sysctl(client, cdev, 'accept_dad', '0')

    with dnsmasq_on_a_wire(tmp_path_factory.mktemp('dnsmasq6'), CONF, 'd6',
                           f'{SERVER}/64', 'DHCPv6, IP range',
                           before_address=no_dad) as wire:
        _, _, client, cdev, log = wire
        deadline = time.monotonic() + 30
        while 'fe80::' not in ip('-n', client, '-6', 'addr', 'show', 'dev',
                                  cdev, 'scope', 'link'):
            assert time.monotonic() < deadline, 'no link-local address'
            time.sleep(0.2)
        yield client, cdev, log


def _solicit(provisioning, arch: int, ipxe: bool = False) -> dict:
    client, cdev, log = provisioning
    result = subprocess.run(
        ['ip', 'netns', 'exec', client, sys.executable, '-c', CLIENT, cdev,
         str(arch), '1' if ipxe else '0'],
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr + log.read_text()[-2000:]
    return json.loads(result.stdout)


@pytest.mark.parametrize('arch, ipxe, url', [
    (0x07, False, f'tftp://[{SERVER}]/ipxe.efi'),
    (0x10, False, f'http://[{SERVER}]:8086/shimx64.efi'),
    (0x13, False, f'http://[{SERVER}]:8086/grubnetaa64.efi'),
    (0x07, True, f'http://[{SERVER}]:8086/boot.ipxe'),
])
def test_each_uefi_firmware_gets_its_boot_file_url_and_an_address(
        provisioning, arch, ipxe, url):
    answer = _solicit(provisioning, arch, ipxe)
    assert answer.get('bootfile_url') == url
    address = ipaddress.IPv6Address(answer['address'])
    assert RANGE[0] <= address <= RANGE[1]


def test_other_architectures_get_no_boot_file(provisioning):
    answer = _solicit(provisioning, 0x00)  # legacy BIOS: IPv4 only
    assert 'bootfile_url' not in answer
    assert 'address' in answer


def test_the_client_forms_its_own_address_by_slaac(provisioning):
    client, cdev, log = provisioning
    deadline = time.monotonic() + 30
    while True:
        text = ip('-n', client, '-6', '-o', 'addr', 'show', 'dev', cdev,
                   'scope', 'global')
        slaac = [line for line in text.splitlines()
                 if 'dynamic' in line and '2001:db8:1:0:' in line]
        if slaac:
            break
        assert time.monotonic() < deadline, text + log.read_text()[-2000:]
        time.sleep(0.5)
    # On-link: the ramdisk reaches a broker on this network directly.
    routes = ip('-n', client, '-6', 'route', 'show', '2001:db8:1::/64')
    assert cdev in routes
