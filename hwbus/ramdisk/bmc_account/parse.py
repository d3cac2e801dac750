"""What ipmitool prints, as data.

Parsers of the output of ``ipmitool user summary``, ``user list``,
``channel info``, ``channel getaccess`` and ``user test``; nothing here
runs a command.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

_FIELD_RE = re.compile(r'^\s*([^:]+?)\s*:\s*(.*?)\s*$')


@dataclasses.dataclass(frozen=True)
class UserSlot:
    """One row of ``ipmitool -c user list CH``."""

    id: int
    name: str
    callin: bool
    link_auth: bool
    ipmi_messaging: bool
    privilege: str

    @property
    def looks_free(self) -> bool:
        """No name and no IPMI messaging: nobody uses it over the network.

        Whether it is enabled is only in ``channel getaccess``, asked
        before a slot is taken.
        """
        return not self.name and not self.ipmi_messaging


def _fields(text: str) -> dict[str, str]:
    """"Key : value" lines as a dict; the first of a repeated key wins."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        match = _FIELD_RE.match(line)
        if match:
            fields.setdefault(match.group(1), match.group(2))
    return fields


def parse_user_summary(text: str) -> int | None:
    """The BMC's number of user slots from ``ipmitool user summary``."""
    value = _fields(text).get('Maximum IDs', '')
    return int(value) if value.isdigit() and 0 < int(value) <= 63 else None


def parse_user_list(text: str) -> list[UserSlot]:
    """``ipmitool -c user list`` as slots, ordered by id, each id once.

    Parsed from the right: the last four fields are fixed words, so a
    name holding commas stays whole. Lines that are not rows are skipped.
    """
    slots: dict[int, UserSlot] = {}
    for line in text.splitlines():
        fields = line.split(',')
        if len(fields) < 6 or not fields[0].strip().isdigit():
            continue
        user_id = int(fields[0])
        flags = [f.strip().lower() for f in fields[-4:-1]]
        if not 1 <= user_id <= 63 or \
                any(f not in ('true', 'false') for f in flags):
            continue
        slots.setdefault(user_id, UserSlot(
            user_id, ','.join(fields[1:-4]).strip(), flags[0] == 'true',
            flags[1] == 'true', flags[2] == 'true', fields[-1].strip()))
    return [slots[k] for k in sorted(slots)]


def parse_channel_info(text: str) -> dict[str, str]:
    """``ipmitool channel info``: medium and (volatile) access mode."""
    fields = _fields(text)
    return {'medium': fields.get('Channel Medium Type', ''),
            'access_mode': fields.get('Access Mode', '')}


def parse_channel_access(text: str) -> dict[str, Any]:
    """``ipmitool channel getaccess CH ID``: one user's state there.

    ``enabled`` is True or False when the BMC reports the user's enable
    status, None when it says "unknown" (IPMI lets it).
    """
    fields = _fields(text)
    status = fields.get('Enable Status', '').lower()
    return {'name': fields.get('User Name', ''),
            'privilege': fields.get('Privilege Level', ''),
            'ipmi_messaging': fields.get('IPMI Messaging', '') == 'enabled',
            'enabled': {'enabled': True, 'disabled': False}.get(status)}


def parse_user_test(text: str) -> bool | None:
    """``ipmitool user test``: True accepted, False refused, None unknown."""
    words = text.strip()
    if words.startswith('Success'):
        return True
    if words.startswith('Failure:'):
        return False
    return None
