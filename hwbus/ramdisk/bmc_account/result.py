"""What ensure_account did, with the password kept out of its public
form."""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass
class AccountResult:
    """What ensure_account did; ``password`` only in ``create`` mode.

    :param action: "created" (a free slot), "reset" (the existing user's
        password), "kept" (mode keep, found) or "none".
    :param verified: the BMC confirmed the password (its password test
        accepted it and refused a wrong one); ``verified_how`` says how,
        or why not.
    :param enabled: the user's enable status as the BMC reports it (None:
        the BMC does not say).
    """

    username: str
    mode: str
    user_id: int | None = None
    password: str | None = dataclasses.field(default=None, repr=False)
    channels: list[int] = dataclasses.field(default_factory=list)
    privilege: str | None = None
    enabled: bool | None = None
    action: str = 'none'
    verified: bool = False
    verified_how: str = ''
    errors: list[str] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        """A usable account: found or made, and nothing went wrong."""
        return self.user_id is not None and not self.errors

    def public(self) -> dict[str, Any]:
        """Everything but the password, for logs and plugin data."""
        fields = dataclasses.asdict(self)
        del fields['password']
        fields['password_length'] = len(self.password or '') or None
        return fields
