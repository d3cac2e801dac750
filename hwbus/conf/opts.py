"""Every option group, for oslo-config-generator and the docs."""

from __future__ import annotations

from oslo_config import cfg

from hwbus.conf import broker, credentials, database, ramdisk

_GROUPS = (broker, credentials, database, ramdisk)


def list_opts() -> list[tuple[cfg.OptGroup, list[cfg.Opt]]]:
    """Option groups with their options (the oslo.config.opts hook)."""
    return [(module.GROUP, list(module.OPTS)) for module in _GROUPS]
