"""NUMA layout: RAM, cores and NICs per node.

Same shape as ironic-python-agent's numa-topology collector, so Ironic
rules and Nova's CPU pinning plans read it unchanged.
"""

from __future__ import annotations

import re

from hwbus.ramdisk.collectors.base import (
    Contribution,
    Options,
    parse_cpulist,
    to_int,
)
from hwbus.ramdisk.probes import pci_bus
from hwbus.ramdisk.probes.sysroot import SystemRoot

_NODES = '/sys/devices/system/node'
_NODE_RE = re.compile(r'^node(\d+)$')
_MEMTOTAL_RE = re.compile(r'MemTotal:\s*(\d+)\s*kB')


def collect(root: SystemRoot, options: Options) -> Contribution:
    """plugin_data ``numa_topology``."""
    nodes = sorted(int(m.group(1)) for name in root.listdir(_NODES)
                   if (m := _NODE_RE.match(name)))
    if not nodes:
        return Contribution(errors=['the kernel reports no NUMA node'])
    ram, cpus = [], []
    for node in nodes:
        base = f'{_NODES}/node{node}'
        match = _MEMTOTAL_RE.search(root.read(f'{base}/meminfo') or '')
        ram.append({'numa_node': node,
                    'size_kb': int(match.group(1)) if match else 0})
        seen: set[tuple[int, ...]] = set()
        for cpu in parse_cpulist(root.read(f'{base}/cpulist')):
            topology = f'/sys/devices/system/cpu/cpu{cpu}/topology'
            siblings = tuple(parse_cpulist(
                root.read(f'{topology}/thread_siblings_list'))) or (cpu,)
            if siblings in seen:
                continue
            seen.add(siblings)
            core = to_int(root.read(f'{topology}/core_id'))
            cpus.append({'cpu': core if core is not None and core >= 0
                         else cpu,
                         'numa_node': node,
                         'thread_siblings': list(siblings)})
    nics = []
    for name in root.listdir('/sys/class/net'):
        slot = pci_bus.slot_of(root, f'/sys/class/net/{name}/device')
        if slot is None:
            continue
        nic_node = to_int(
            root.read(f'/sys/bus/pci/devices/{slot}/numa_node'))
        if nic_node is not None and nic_node >= 0:
            nics.append({'name': name, 'numa_node': nic_node})
        elif nic_node is not None and len(nodes) == 1:
            # Single-node machines report -1: the NIC is on node 0.
            nics.append({'name': name, 'numa_node': nodes[0]})
    return Contribution(plugin_data={'numa_topology': {
        'ram': ram, 'cpus': cpus, 'nics': nics}})
