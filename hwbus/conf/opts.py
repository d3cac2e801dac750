"""Every option group, for oslo-config-generator and the docs."""

from __future__ import annotations

from oslo_config import cfg

from hwbus.conf import (
    bootserver,
    broker,
    consumer,
    credentials,
    database,
    enroll,
    ironic,
    notifications,
    ramdisk,
)

_GROUPS = (bootserver, broker, consumer, credentials, database, enroll,
           notifications, ramdisk)


def list_opts() -> list[tuple[cfg.OptGroup, list[cfg.Opt]]]:
    """Option groups with their options (the oslo.config.opts hook)."""
    return ([(module.GROUP, list(module.OPTS)) for module in _GROUPS]
            + [(ironic.GROUP, ironic.list_opts())])
