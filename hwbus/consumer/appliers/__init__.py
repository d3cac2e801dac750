"""Appliers bring a verified inventory into Ironic (``hwbus.appliers``).

An applier is a class taking ``(settings, connection)`` with an
``apply(context) -> Applied`` method: ``settings`` are the values of the
option group named like the applier ([enroll], [inspection], or a site
applier's own group; None without one), ``connection`` an openstacksdk
connection. It raises TransientError when Ironic should be asked again
later and PermanentError when the inventory can never be applied; other
errors are retried a few times, then dead-lettered. Applying the same
context twice must change nothing the second time.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Protocol

from stevedore import driver

from hwbus.store import State
from hwbus.store.models import holds

NAMESPACE = 'hwbus.appliers'


@dataclasses.dataclass
class Context:
    """One verified message, as the appliers see it. ``boot`` is the
    credential's record (hwbus.consumer.outcome.Boot): bound MAC and
    node, state and the message it holds."""

    boot_id: str
    message_id: str
    boot: Any
    inventory: dict[str, Any]
    plugin_data: dict[str, Any]
    # An operator asked for it again: apply it, whatever came before.
    replay: bool = False
    # The BMC account the ramdisk created, opened from its sealed form
    # (hwbus.bmc.Secret; its repr hides the password). None without one.
    bmc_secret: Any = dataclasses.field(default=None, repr=False)

    @property
    def macs(self) -> list[str]:
        return [i['mac_address'] for i in self.inventory.get('interfaces', [])
                if i.get('mac_address')]

    @property
    def redelivered(self) -> bool:
        """This very message was received before (by this or another
        consumer) and not finished: an earlier attempt may have reached
        Ironic already. Never for an operator's replay, which must reach
        Ironic now or fail."""
        return not self.replay and holds(self.boot, State.RECEIVED,
                                         self.message_id)

    @property
    def boot_mac(self) -> str | None:
        return (self.inventory.get('boot') or {}).get('pxe_interface')


@dataclasses.dataclass
class Applied:
    node: str | None = None
    created: bool = False
    matched_by: str | None = None
    changes: list[str] = dataclasses.field(default_factory=list)


class Applier(Protocol):
    name: str

    def apply(self, context: Context) -> Applied: ...


def load(names: list[str], settings: dict[str, Any],
         connection: Any) -> list[Applier]:
    """The appliers by entry-point name, each with its own settings."""
    return [typing.cast(Applier, driver.DriverManager(
                NAMESPACE, name, invoke_on_load=True,
                invoke_args=(settings.get(name), connection)).driver)
            for name in names]
