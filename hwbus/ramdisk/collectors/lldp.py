"""What the switch on each port says about itself (LLDP).

Ironic turns this into ports' local_link_connection (switch id, port id),
which networking-baremetal needs to wire a machine. Off unless a listen
time is given: switches send every 30 s, so listening has a real cost.
"""

from __future__ import annotations

from hwbus.ramdisk.collectors.base import Contribution, Options
from hwbus.ramdisk.probes import lldp_listener
from hwbus.ramdisk.probes.sysroot import SystemRoot


def _ports(root: SystemRoot) -> list[str]:
    """Physical ports whose link is up: the only ones a frame can reach."""
    return [name for name in root.listdir('/sys/class/net')
            if root.exists(f'/sys/class/net/{name}/device')
            and root.read(f'/sys/class/net/{name}/carrier') == '1']


def collect(root: SystemRoot, options: Options) -> Contribution:
    """plugin_data ``lldp_raw``, keyed by interface name."""
    if options.lldp_timeout <= 0:
        return Contribution()
    ports = _ports(root)
    heard = root.probe('lldp', lambda: lldp_listener.listen(
        ports, options.lldp_timeout)) or {}
    errors = []
    silent = sorted(set(ports) - set(heard))
    if silent:
        errors.append(f'no LLDP within {options.lldp_timeout:g} s on: '
                      f'{", ".join(silent)}')
    return Contribution(plugin_data={'lldp_raw': heard}, errors=errors)
