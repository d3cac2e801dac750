"""Every option group, for oslo-config-generator and the docs."""

from __future__ import annotations

from oslo_config import cfg

from hwbus.conf import MODULES


def list_opts() -> list[tuple[cfg.OptGroup, list[cfg.Opt]]]:
    """Option groups with their options (the oslo.config.opts hook).

    A group module may provide list_opts() when it registers options it
    does not own ([ironic] adds keystoneauth's).
    """
    return [(module.GROUP, module.list_opts() if hasattr(module, 'list_opts')
             else list(module.OPTS)) for module in MODULES]
