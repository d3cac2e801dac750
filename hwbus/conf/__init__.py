"""oslo.config option groups, one module per group.

Only console entry points (hwbus/cmd/) read ``CONF``; they pass plain
values down, so the library stays testable without global state.
"""

from oslo_config import cfg

from hwbus.conf import (
    bmc,
    bootserver,
    broker,
    consumer,
    credentials,
    database,
    enroll,
    inspection,
    ironic,
    notifications,
    ramdisk,
    sealing,
)

CONF = cfg.CONF

# Every option group module; opts.py lists the same for the generator.
MODULES = (bmc, bootserver, broker, consumer, credentials, database,
           enroll, inspection, ironic, notifications, ramdisk, sealing)

for _module in MODULES:
    _module.register_opts(CONF)
