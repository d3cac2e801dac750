"""Tables. Changing one needs an alembic revision in migrations/versions."""

from __future__ import annotations

import datetime
import enum
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm


class State(enum.StrEnum):
    """The life of a per-boot credential (see docs/credentials.md)."""

    ISSUED = 'issued'        # the broker user exists, nothing received yet
    RECEIVED = 'received'    # a verified message arrived; user deleted
    APPLIED = 'applied'      # the inventory reached Ironic
    EXPIRED = 'expired'      # never used before its expiry; user deleted
    REVOKED = 'revoked'      # withdrawn by an operator; user deleted
    REFUSED = 'refused'      # its one message was dead-lettered; user
    #                          deleted; "dead replay" may still apply it




class Base(orm.DeclarativeBase):
    pass


class Credential(Base):
    """One boot's credential. Only the public half of its key is kept."""

    __tablename__ = 'credentials'

    boot_id: orm.Mapped[str] = orm.mapped_column(sa.String(64),
                                                 primary_key=True)
    username: orm.Mapped[str] = orm.mapped_column(sa.String(64),
                                                  unique=True)
    public_key: orm.Mapped[bytes] = orm.mapped_column(sa.LargeBinary(32))
    mac: orm.Mapped[str | None] = orm.mapped_column(sa.String(17),
                                                    index=True)
    node: orm.Mapped[str | None] = orm.mapped_column(sa.String(255),
                                                     index=True)
    state: orm.Mapped[str] = orm.mapped_column(sa.String(16), index=True)
    created_at: orm.Mapped[datetime.datetime] = orm.mapped_column(
        sa.DateTime)
    expires_at: orm.Mapped[datetime.datetime] = orm.mapped_column(
        sa.DateTime, index=True)
    changed_at: orm.Mapped[datetime.datetime] = orm.mapped_column(
        sa.DateTime)
    message_id: orm.Mapped[str | None] = orm.mapped_column(sa.String(128))
    # When the broker user was deleted; NULL while it may still exist.
    user_deleted_at: orm.Mapped[datetime.datetime | None] = \
        orm.mapped_column(sa.DateTime)
    issued_by: orm.Mapped[str] = orm.mapped_column(sa.String(32))
    # The client address a boot-server credential was issued to.
    issued_to: orm.Mapped[str | None] = orm.mapped_column(sa.String(64))
    # hwbus.bmc= of the boot: only a boot issued with "create" may send a
    # BMC password (the consumer refuses one from any other).
    bmc: orm.Mapped[str | None] = orm.mapped_column(sa.String(16),
                                                    nullable=True)

    def to_dict(self, now: datetime.datetime | None = None) -> dict:
        """A listing row: everything but the key. An issued credential
        past its expiry shows as expired, before any sweep says so."""
        state = self.state
        now = now or datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
        if state == State.ISSUED.value and self.expires_at <= now:
            state = State.EXPIRED.value
        return {
            'boot_id': self.boot_id, 'username': self.username,
            'mac': self.mac, 'node': self.node, 'state': state,
            'created_at': _iso(self.created_at),
            'expires_at': _iso(self.expires_at),
            'changed_at': _iso(self.changed_at),
            'message_id': self.message_id,
            'user_deleted_at': _iso(self.user_deleted_at),
            'issued_by': self.issued_by,
            'issued_to': self.issued_to,
            'bmc': self.bmc,
        }


def holds(credential: Any, state: State, message_id: str) -> bool:
    """The boot is in ``state`` because of this very message (so the
    message is being seen again: a redelivery or a replay)."""
    return (credential.state == state.value
            and credential.message_id == message_id)


def _iso(value: datetime.datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec='seconds') + 'Z'


class Inventory(Base):
    """One applied inventory, kept for replay and hardware history."""

    __tablename__ = 'inventories'

    id: orm.Mapped[int] = orm.mapped_column(sa.Integer, primary_key=True,
                                            autoincrement=True)
    boot_id: orm.Mapped[str] = orm.mapped_column(sa.String(64), index=True)
    message_id: orm.Mapped[str] = orm.mapped_column(sa.String(128),
                                                    unique=True)
    node: orm.Mapped[str | None] = orm.mapped_column(sa.String(64),
                                                     index=True)
    mac: orm.Mapped[str | None] = orm.mapped_column(sa.String(17),
                                                    index=True)
    applied_at: orm.Mapped[datetime.datetime] = orm.mapped_column(
        sa.DateTime, index=True)
    # The exact signed wire body and its signature: a replay is verified
    # again against the stored public key, like a fresh message.
    body: orm.Mapped[bytes] = orm.mapped_column(sa.LargeBinary)
    content_encoding: orm.Mapped[str] = orm.mapped_column(sa.String(16))
    signature: orm.Mapped[str] = orm.mapped_column(sa.String(128))
    user_id: orm.Mapped[str] = orm.mapped_column(sa.String(64))
    # What the appliers did (Applied.changes, a JSON list of short lines
    # such as "bmc credentials set for user hwbus (...)" or "manageable"):
    # field names and verdicts, never values.
    changes: orm.Mapped[str | None] = orm.mapped_column(sa.Text,
                                                        nullable=True)
