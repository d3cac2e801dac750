"""oslo.config option groups, one module per group.

Only console entry points (hwbus/cmd/) read ``CONF``; they pass plain
values down, so the library stays testable without global state.
"""

from oslo_config import cfg

from hwbus.conf import ramdisk

CONF = cfg.CONF

ramdisk.register_opts(CONF)
