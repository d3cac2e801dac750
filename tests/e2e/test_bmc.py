"""Zero-touch to manageable: an unknown machine with a BMC boots the
ramdisk, which creates hwbus's BMC user in-band and seals its password
to the consumer; the consumer enrols the node with driver ipmi and moves
it to manageable; Ironic then powers the guest through the same BMC.

The BMC is OpenIPMI's ipmi_sim (hwbus.localstack.bmc): the guest reaches
it in-band through QEMU's ipmi-bmc-extern and KCS devices, Ironic over
RMCP+ with the real ipmitool, and it runs the QEMU process as the
machine's power. Its LAN address is the host side of a veth pair whose
other end is in a namespace this test creates: an address that is not
loopback (a BMC never is), reachable from Ironic on this host.
"""

from __future__ import annotations

import base64
import json
import pathlib
import re
import shlex
import sqlite3
import subprocess
import time

import pika
import pytest

from hwbus import sealing
from hwbus.localstack.bmc import EmulatedBmc
from hwbus.localstack.common import free_port, wait_for
from hwbus.localstack.consumer import BIN
from tests.chaos.netns import Namespace
from tests.e2e.conftest import GUEST_MACS, Guest, Site, node_by_mac
from tests.functional import boots

NOTIFY_TOPIC = 'hwbus_e2e'
BMC_MAC = '52:54:00:be:ef:01'


@pytest.fixture
def namespace():
    ns = Namespace().create()
    yield ns
    ns.destroy()


@pytest.fixture
def bmc_site(broker, clean_ironic, image, tmp_path, namespace):
    key = sealing.new_private_key()
    key_file = tmp_path / 'seal.pem'
    key_file.write_bytes(sealing.private_pem(key))
    key_file.chmod(0o600)
    notify = (f'rabbit://{broker.admin_user}:{broker.admin_password}@'
              f'127.0.0.1:{broker.amqp_port}/')
    channel = _notification_channel(broker)
    site = Site(broker, clean_ironic, image, tmp_path, appliers='enroll',
                extra=f'\n[bmc]\naccount = create\nipmi_cipher_suite = 3\n'
                      f'\n[sealing]\nprivate_key_file = {key_file}\n'
                      f'\n[enroll]\ndriver = ipmi\nmanage = true\n'
                      f'manage_timeout = 300\n'
                      f'\n[notifications]\ndriver = messagingv2\n'
                      f'transport_url = {notify}\n'
                      f'topics = {NOTIFY_TOPIC}\n')
    site.notifications = channel
    yield site
    site.stop()
    channel.connection.close()


def _notification_channel(broker):
    connection = pika.BlockingConnection(pika.URLParameters(broker.amqp_url))
    channel = connection.channel()
    for queue in (f'{NOTIFY_TOPIC}.info', f'{NOTIFY_TOPIC}.warn'):
        channel.queue_declare(queue)
        channel.queue_purge(queue)
    return channel


def _notifications(channel) -> list[bytes]:
    bodies = []
    for queue in (f'{NOTIFY_TOPIC}.info', f'{NOTIFY_TOPIC}.warn'):
        while True:
            method, _, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                break
            bodies.append(body)
    return bodies


def _guest_command(guest: Guest, site: Site, bmc: EmulatedBmc) -> str:
    """The QEMU command ipmi_sim runs at power on: the e2e guest, PXE
    booting, with the BMC's KCS interface."""
    argv = [*guest._argv(), '-boot', 'n',
            '-nic', f'user,model=virtio-net-pci,mac={GUEST_MACS[0]},'
                    f'bootfile={site.bootfile}',
            '-nic', f'user,model=virtio-net-pci,mac={GUEST_MACS[1]}',
            *bmc.qemu_args()]
    return shlex.join(argv)


def _ironic_driver_info(ironic, node: str) -> dict:
    """driver_info as Ironic stores it (the API shows "******" for a
    password): the password Ironic will log in with."""
    database = pathlib.Path(ironic.workdir) / 'ironic.sqlite'
    with sqlite3.connect(database) as db:
        (text,) = db.execute('select driver_info from nodes where uuid = ?',
                             (node,)).fetchone()
    return json.loads(text)


def _power(ironic, node: str, target: str) -> None:
    response = ironic.request('PUT', f'/v1/nodes/{node}/states/power',
                              {'target': target})
    assert response.status_code == 202, response.text
    wait_for(lambda: ironic.get(f'/v1/nodes/{node}')['power_state'] ==
             target, 180, f'Ironic to see {target}')


def test_a_machine_with_a_bmc_becomes_manageable_without_a_visit(
        bmc_site, tmp_path, namespace):
    site = bmc_site
    guest = Guest(tmp_path)
    bmc = EmulatedBmc(tmp_path / 'bmc', address=namespace.host_ip,
                      lan_ip=namespace.host_ip, lan_mac=BMC_MAC,
                      vm_port=free_port(), startnow=True, poweroff_wait=5,
                      kill_wait=5)
    bmc.startcmd = _guest_command(guest, site, bmc)
    started = time.monotonic()
    bmc.start()
    try:
        wait_for(lambda: bmc.power_state() == 'on', 60, 'ipmi_sim to start '
                 'the guest', bmc.log)
        # The guest PXE-boots, the ramdisk makes the account, publishes
        # and powers off: ipmi_sim sees its QEMU exit.
        wait_for(lambda: bmc.power_state() == 'off', 900,
                 'the guest to power itself off', guest.console)
        print(f'\nPXE boot with the BMC account to power-off: '
              f'{time.monotonic() - started:.1f} s')
        console = guest.text()
        assert 'password sealed to key' in console, console[-3000:]
        step = re.search(r'BMC account step \(create\) took ([0-9.]+) s',
                         console)
        assert step, console[-3000:]
        print(f'BMC account step in the guest (KCS, TCG): '
              f'{float(step.group(1)):.2f} s')
        wait_for(lambda: node_by_mac(site.ironic, GUEST_MACS[0]), 120,
                 'the node')
        node = node_by_mac(site.ironic, GUEST_MACS[0])
        wait_for(lambda: site.ironic.get(f'/v1/nodes/{node}')[
            'provision_state'] not in ('enroll', 'verifying') or
            _manage_failed(site), 400, 'Ironic\'s verdict on "manage"')
        record = site.ironic.get(f'/v1/nodes/{node}')
        assert record['provision_state'] == 'manageable', record
        assert record['driver'] == 'ipmi'
        assert record['driver_info']['ipmi_address'] == namespace.host_ip
        assert record['driver_info']['ipmi_password'] == '******'
        assert record['power_state'] == 'power off'

        # Ironic holds the password the BMC has, for hwbus's own user.
        info = _ironic_driver_info(site.ironic, node)
        username, password = info['ipmi_username'], info['ipmi_password']
        [user] = [u for u in bmc.users() if u.name == username]
        assert user.id > 2 and user.enabled is not False
        assert bmc.check_password(username, password)

        # Ironic powers the machine through the BMC: on, then off.
        _power(site.ironic, node, 'power on')
        assert bmc.power_state() == 'on'
        _power(site.ironic, node, 'power off')
        wait_for(lambda: bmc.power_state() == 'off', 60, 'QEMU gone')

        # A replay of the archived inventory opens the sealed password
        # again with the consumer's key.
        replay = subprocess.run(
            [str(BIN / 'hwbus-manage'), '--config-file', str(site.config),
             'replay', '--node', node], capture_output=True, text=True,
            timeout=300)
        assert replay.returncode == 0, replay.stderr
        history = subprocess.run(
            [str(BIN / 'hwbus-manage'), '--config-file', str(site.config),
             'history', '--node', node], capture_output=True, text=True,
            timeout=120)
        assert 'bmc credentials' in history.stdout, history.stdout
        assert 'manageable' in history.stdout, history.stdout
        assert _ironic_driver_info(site.ironic, node)['ipmi_password'] == \
            password

        notifications = _notifications(site.notifications)
        assert any(b'baremetal.hwbus.inventory.applied' in n
                   for n in notifications), notifications
        _assert_nowhere_in_clear(password, site, guest, notifications,
                                 history.stdout + replay.stdout)
    finally:
        bmc.stop()


def _manage_failed(site: Site) -> bool:
    return 'manage failed' in site.consumer.log.read_text()


def _assert_nowhere_in_clear(password: str, site: Site, guest: Guest,
                             notifications: list[bytes], output: str) -> None:
    """Not in the broker's queues or dead letters, the store (with its
    archive), any log, any notification, any command's output."""
    forms = {password.encode(), base64.b64encode(password.encode()),
             base64.urlsafe_b64encode(password.encode()).rstrip(b'=')}

    def clean(data: bytes, where: str) -> None:
        for form in forms:
            assert form not in data, f'the BMC password is in {where}'

    for path in [site.consumer.log, site.bootserver.log, guest.console,
                 site.tmp / 'hwbus.sqlite', site.ironic.log]:
        clean(path.read_bytes(), str(path))
    for queue in ('hwbus.inventory', 'hwbus.inventory.dead'):
        for _, body in boots.get_all(site.broker, queue):
            clean(body, f'queue {queue}')
    for record in site.store.inventories(limit=100):
        clean(json.dumps(record, default=str).encode(), 'the archive')
    for body in notifications:
        clean(body, 'a notification')
    clean(output.encode(), 'hwbus-manage output')
