"""Which user slots hwbus's BMC user may have.

Slots 1 (anonymous) and 2 (the vendor's administrator on most BMCs) and
any slot that holds another user are never taken.
"""

from __future__ import annotations

from collections.abc import Iterable

from hwbus.ramdisk.bmc_account.parse import UserSlot

# Slots below this are never changed: 1 is anonymous, 2 the vendor's admin.
FIRST_SLOT = 3


def find_user(slots: Iterable[UserSlot], username: str) -> UserSlot | None:
    """The first slot from FIRST_SLOT on that is named ``username``."""
    return next((s for s in slots
                 if s.id >= FIRST_SLOT and s.name == username), None)


def free_slots(slots: Iterable[UserSlot],
               max_ids: int | None = None) -> list[int]:
    """Slots hwbus may take, in order: unnamed, unused, not 1 or 2."""
    return [s.id for s in slots
            if s.id >= FIRST_SLOT and s.looks_free and
            (max_ids is None or s.id <= max_ids)]
