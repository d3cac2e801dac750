"""A real, standalone Ironic API for tests.

PyPI ``ironic`` in its own virtualenv (tools/install-deps --test puts it
in .cache/ironic-venv), run as the all-in-one ``ironic`` process with
noauth, SQLite, no RPC bus, the fake-hardware driver and auto-discovery on:
exactly the setup a small standalone Ironic uses, on a free loopback port.

With ``keystone=`` (a hwbus.localstack.keystone.KeystoneServer) it runs
behind Keystone instead: ``auth_strategy = keystone``, keystonemiddleware
with the service user ``ironic``, the ``baremetal`` service and endpoints
in Keystone's catalog, and the ``service`` role of the ``service`` project
given elevated access (what service accounts such as hwbus use: see
docs/consumer.md, "Ironic behind Keystone"). The helpers below then send
a system-scoped admin token.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import textwrap

import requests

from hwbus.localstack.common import (
    CACHE,
    ServerError,
    free_port,
    stop,
    wait_for,
)

VENV = pathlib.Path(os.environ.get('HWBUS_IRONIC_VENV',
                                   CACHE / 'ironic-venv'))
API_VERSION = '1.115'
# Inspection hooks run on every continue_inspection: Ironic's defaults
# plus the ones that turn an inventory into node properties.
HOOKS = ('ramdisk-error,validate-interfaces,ports,architecture,memory,'
         'cpu-capabilities,boot-mode,pci-devices,parse-lldp,'
         'local-link-connection,root-device')


class IronicServer:
    """Start with start(), stop with stop(); ``url`` is the API endpoint."""

    def __init__(self, workdir: pathlib.Path, port: int | None = None,
                 host: str = '127.0.0.1', tls_ca=None,
                 keystone=None) -> None:
        self.workdir = workdir
        self.keystone = keystone
        self.host = host
        self.port = port or free_port()
        # With a CA (hwbus.localstack.tls.CA): HTTPS only, as "localhost".
        self.tls_ca = tls_ca
        self.ca_file = workdir / 'ca.pem' if tls_ca else None
        self.url = (f'https://localhost:{self.port}' if tls_ca
                    else f'http://{host}:{self.port}')
        self.log = workdir / 'ironic.log'
        self.conf = workdir / 'ironic.conf'
        self.proc: subprocess.Popen | None = None

    def _binary(self, name: str) -> str:
        path = VENV / 'bin' / name
        if not path.exists():
            raise ServerError(
                f'{path} is missing: run tools/install-deps --test (or set '
                f'HWBUS_IRONIC_VENV to a virtualenv with ironic installed)')
        return str(path)

    def _write_config(self) -> None:
        for name in ('httpboot', 'tftpboot'):
            (self.workdir / name).mkdir(exist_ok=True)
        # fake-hardware for most tests; ipmi with ipmitool for nodes whose
        # BMC is an emulated one (hwbus.localstack.bmc): Ironic then
        # really powers the QEMU guest through ipmi_sim.
        interfaces = {
            'bios': 'no-bios', 'boot': 'fake,ipxe', 'console': 'no-console',
            'deploy': 'fake,direct', 'firmware': 'no-firmware',
            'inspect': 'agent,no-inspect', 'management': 'fake,ipmitool',
            'network': 'noop', 'power': 'fake,ipmitool',
            'raid': 'fake,no-raid', 'rescue': 'no-rescue',
            'vendor': 'no-vendor'}
        lines = '\n'.join(f'enabled_{k}_interfaces = {v}'
                          for k, v in interfaces.items())
        self.conf.write_text(textwrap.dedent(f'''\
            [DEFAULT]
            auth_strategy = {'keystone' if self.keystone else 'noauth'}
            rpc_transport = none
            enabled_hardware_types = fake-hardware,ipmi
            default_inspect_interface = agent
            host = hwbus-test-{self.port}
            state_path = {self.workdir}
            log_file = {self.log}
            ''') + lines + textwrap.dedent(f'''

            [api]
            host_ip = {self.host}
            port = {self.port}
            {self._tls_options()}

            [database]
            connection = sqlite:///{self.workdir}/ironic.sqlite

            [auto_discovery]
            enabled = true
            driver = fake-hardware

            [inspector]
            hooks = {HOOKS}
            # Inspection of the fake hardware type without a managed boot:
            # nodes wait in "inspect wait" for a report, as with PXE.
            require_managed_boot = false

            [dhcp]
            dhcp_provider = none

            [conductor]
            automated_clean = false

            [deploy]
            # The ipxe boot interface (which the ipmi hardware type needs
            # enabled) writes its script here when it loads.
            http_root = {self.workdir}/httpboot
            http_url = http://127.0.0.1:9/

            [pxe]
            tftp_root = {self.workdir}/tftpboot

            [ipmi]
            # ipmi_sim answers in milliseconds; the default 5 s between
            # two commands to one BMC is for slow real ones.
            min_command_interval = 1

            [oslo_concurrency]
            lock_path = {self.workdir}/locks
            ''') + self._keystone_options())

    def _keystone_options(self) -> str:
        if self.keystone is None:
            return ''
        user, password = self.keystone.service_user('ironic')
        self.keystone.register_service(self.url)
        return textwrap.dedent(f'''
            [DEFAULT]
            # The service role of the service project sees and manages
            # every node, as a system-scoped member would (Ironic's
            # policy, rule "service_role"); off by default.
            rbac_service_role_elevated_access = true

            [keystone_authtoken]
            auth_type = password
            auth_url = {self.keystone.url}
            www_authenticate_uri = {self.keystone.url}
            username = {user}
            password = {password}
            project_name = service
            user_domain_name = Default
            project_domain_name = Default
            region_name = RegionOne
            ''')

    def _tls_options(self) -> str:
        if self.tls_ca is None:
            return ''
        self.tls_ca.write(self.ca_file)
        cert, key = self.tls_ca.issue(self.workdir, 'ironic')
        return (f'enable_ssl_api = true\n            cert_file = {cert}\n'
                f'            key_file = {key}')

    def start(self, timeout: float = 90) -> IronicServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if not (self.workdir / 'ironic.sqlite').exists():
            self._write_config()
            subprocess.run(
                [self._binary('ironic-dbsync'), '--config-file',
                 str(self.conf), 'create_schema'],
                check=True, capture_output=True, timeout=120)
        self.proc = subprocess.Popen(
            [self._binary('ironic'), '--config-file', str(self.conf)],
            stdout=subprocess.DEVNULL, stderr=open(
                self.workdir / 'stderr.log', 'ab'),
            start_new_session=True)
        wait_for(lambda: requests.get(f'{self.url}/v1', timeout=2,
                                      verify=self._verify).ok,
                 timeout, 'Ironic API', self.log, self.proc)
        # The API answers before the conductor has registered itself;
        # enrolment needs the conductor.
        wait_for(lambda: bool(self.get('/v1/conductors')['conductors']),
                 timeout, 'Ironic conductor', self.log, self.proc)
        return self

    def stop(self) -> None:
        stop(self.proc)
        self.proc = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def _verify(self) -> str | bool:
        return str(self.ca_file) if self.ca_file else True

    # A few calls the tests make; the code under test uses openstacksdk.
    def _headers(self) -> dict[str, str]:
        headers = {'X-OpenStack-Ironic-API-Version': API_VERSION}
        if self.keystone is not None:
            headers['X-Auth-Token'] = self.keystone.admin_token()
        return headers

    def get(self, path: str) -> dict:
        response = requests.get(self.url + path, headers=self._headers(),
                                timeout=30, verify=self._verify)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, body: dict) -> requests.Response:
        return requests.post(self.url + path, json=body,
                             headers=self._headers(), timeout=60,
                             verify=self._verify)

    def request(self, method: str, path: str,
                body: dict | list | None = None) -> requests.Response:
        return requests.request(method, self.url + path, json=body,
                                headers=self._headers(), timeout=60,
                                verify=self._verify)

    def enroll(self, state: str = 'enroll', ports: tuple[str, ...] = (),
               **attrs) -> dict:
        """A node of the fake hardware type, brought to ``state``
        (enroll, manageable, inspect wait or available), with ports."""
        import time

        attrs.setdefault('driver', 'fake-hardware')
        response = self.request('POST', '/v1/nodes', attrs)
        response.raise_for_status()
        node = response.json()['uuid']
        for mac in ports:
            self.request('POST', '/v1/ports', {
                'node_uuid': node, 'address': mac}).raise_for_status()
        steps = {'enroll': [], 'manageable': [('manage', 'manageable')],
                 'inspect wait': [('manage', 'manageable'),
                                  ('inspect', 'inspect wait')],
                 'available': [('manage', 'manageable'),
                               ('provide', 'available')]}[state]
        for target, reached in steps:
            self.request('PUT', f'/v1/nodes/{node}/states/provision',
                         {'target': target}).raise_for_status()
            deadline = time.monotonic() + 60
            while self.get(f'/v1/nodes/{node}')['provision_state'] != \
                    reached:
                if time.monotonic() > deadline:
                    raise ServerError(f'node {node} did not reach {reached}')
                time.sleep(0.2)
        return self.get(f'/v1/nodes/{node}')

    def _all(self, path: str, key: str) -> list[dict]:
        """Every item of a collection, following Ironic's pagination."""
        items: list[dict] = []
        page = self.get(path)
        while True:
            items.extend(page[key])
            link = page.get('next')
            if not link or not page[key]:
                return items
            page = self.get(link[link.index('/v1/'):])

    def nodes(self) -> list[dict]:
        return self._all('/v1/nodes?detail=true', 'nodes')

    def ports(self) -> list[dict]:
        return self._all('/v1/ports?fields=address,node_uuid', 'ports')

    def delete_all_nodes(self) -> None:
        """Forget every node, so the next test starts from nothing.

        A node still locked by a conductor (inspection hooks running) is
        waited for; one in a state Ironic will not delete from (inspect
        wait) is put in maintenance first. Both answer 409.
        """
        import time

        for node in self._all('/v1/nodes?fields=uuid', 'nodes'):
            path = f'/v1/nodes/{node["uuid"]}'
            deadline = time.monotonic() + 60
            while True:
                response = self.request('DELETE', path)
                if response.ok or response.status_code == 404:
                    break
                if time.monotonic() > deadline:
                    response.raise_for_status()
                if 'provision state' in response.text:
                    self.request('PATCH', path, [{
                        'op': 'add', 'path': '/maintenance',
                        'value': True}])
                time.sleep(0.5)
