"""What the machine does once its inventory is safely on the broker.

The ramdisk is usually PID 1's only child, with no init system to ask: it
uses systemd when one runs (a DIB image), else the magic SysRq trigger,
which works in any Linux with /proc. ``agent`` hands over to
ironic-python-agent when the image has it, else reboots.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess

LOG = logging.getLogger(__name__)

SYSRQ = {'poweroff': 'o', 'reboot': 'b'}


def _systemd_running() -> bool:
    return os.path.isdir('/run/systemd/system')


def _power(action: str) -> None:
    if _systemd_running() and shutil.which('systemctl'):
        subprocess.run(['systemctl', action, '--no-block'], check=False,
                       timeout=30)
        return
    os.sync()
    with open('/proc/sys/kernel/sysrq', 'w') as f:
        f.write('1')
    with open('/proc/sysrq-trigger', 'w') as f:
        f.write(SYSRQ[action])


def do(action: str) -> None:
    """Carry out one of poweroff, reboot, agent, none."""
    LOG.info('after-action: %s', action)
    if action == 'none':
        return
    if action == 'agent':
        agent = shutil.which('ironic-python-agent')
        if agent is not None:
            if _systemd_running():
                subprocess.run(['systemctl', 'start', '--no-block',
                                'ironic-python-agent.service'], check=False,
                               timeout=30)
                return
            os.execv(agent, [agent])  # noqa: S606 - hand over PID
        LOG.warning('ironic-python-agent is not in this image; rebooting')
        action = 'reboot'
    _power(action)
