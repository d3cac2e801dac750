"""Store: the only code that talks SQL."""

from __future__ import annotations

import builtins
import contextlib
import datetime
import functools
import logging
import pathlib
import threading
import typing
from collections.abc import Iterable, Iterator

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy import orm

from hwbus.errors import HwbusError, TransientError
from hwbus.store.models import Credential, Inventory, State

LOG = logging.getLogger(__name__)


def _credentials_table() -> sa.Table:
    """The credentials table, for Core statements on the hot path."""
    return typing.cast(sa.Table, Credential.__table__)


# The hot statements, built once with bound parameters: a statement
# built anew for every message costs SQLAlchemy its construction and a
# walk for its cache key each time, which was most of their time.
@functools.cache
def _by_username() -> sa.Select:
    table = _credentials_table()
    return sa.select(table).where(table.c.username == sa.bindparam('user'))


@functools.cache
def _transition(columns: tuple[str, ...]) -> sa.Update:
    """UPDATE of ``columns`` for one boot in one of the allowed states."""
    table = _credentials_table()
    return (table.update()
            .where(table.c.boot_id == sa.bindparam('boot'),
                   table.c.state.in_(sa.bindparam('allowed',
                                                  expanding=True)))
            .values({name: sa.bindparam(f'new_{name}')
                     for name in columns}))


@functools.cache
def _archive_insert() -> sa.Insert:
    return typing.cast(sa.Table, Inventory.__table__).insert()


class StoreUnavailable(TransientError):
    reason = 'store-unavailable'


class StoreNotReady(HwbusError):
    """The schema is missing or old and auto-upgrade is off."""

    reason = 'store-not-ready'


def utcnow() -> datetime.datetime:
    """Naive UTC, as stored (SQLite has no time zones)."""
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute('PRAGMA journal_mode=WAL')
    cursor.execute('PRAGMA busy_timeout=15000')
    cursor.execute('PRAGMA synchronous=NORMAL')
    cursor.close()


class Store:
    """A handle on the database; cheap to share across threads."""

    def __init__(self, url: str, auto_upgrade: bool = True) -> None:
        self.url = url
        engine_url = sa.engine.make_url(url)
        if engine_url.get_backend_name() == 'sqlite' and engine_url.database:
            pathlib.Path(engine_url.database).parent.mkdir(
                parents=True, exist_ok=True)
            self.engine = sa.create_engine(url)
            sa.event.listen(self.engine, 'connect', _sqlite_pragmas)
            # SQLite has one writer at a time and its busy handler sleeps
            # up to 100 ms between tries: threads of one process queue on
            # a lock instead, which is far faster under load.
            self._lock = threading.RLock()
        else:
            self.engine = sa.create_engine(url, pool_pre_ping=True)
            self._lock = contextlib.nullcontext()  # type: ignore[assignment]
        self._sessions = orm.sessionmaker(self.engine,
                                          expire_on_commit=False)
        if auto_upgrade:
            self.upgrade()
        else:
            self.check_schema()

    # -- schema ---------------------------------------------------------
    def _alembic(self):
        from alembic import config

        cfg = config.Config()
        cfg.set_main_option('script_location', 'hwbus.store:migrations')
        return cfg

    def upgrade(self) -> None:
        """Bring the schema to the newest revision (idempotent)."""
        from alembic import command

        cfg = self._alembic()
        with self._guard(), self.engine.begin() as connection:
            cfg.attributes['connection'] = connection
            command.upgrade(cfg, 'head')

    def revision(self) -> str | None:
        from alembic.runtime import migration

        with self._guard(), self.engine.connect() as connection:
            return migration.MigrationContext.configure(
                connection).get_current_revision()

    def check_schema(self) -> None:
        from alembic import script

        head = script.ScriptDirectory.from_config(
            self._alembic()).get_current_head()
        current = self.revision()
        if current != head:
            raise StoreNotReady(
                f'the database schema is at {current or "nothing"}, not '
                f'{head}: run "hwbus-manage db upgrade"')

    # -- plumbing -------------------------------------------------------
    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except (sa_exc.OperationalError, sa_exc.InterfaceError,
                sa_exc.TimeoutError) as exc:
            raise StoreUnavailable(
                f'the {self.engine.url.get_backend_name()} store is '
                f'unavailable: {self._describe(exc)}') from None

    def _describe(self, exc: Exception) -> str:
        """The driver's first line ("database or disk is full",
        "connection refused"), without the URL's password."""
        orig = getattr(exc, 'orig', None) or exc
        lines = str(orig).strip().splitlines()
        text = f'{type(orig).__name__}: {lines[0][:200] if lines else ""}'
        password = self.engine.url.password
        if password:
            text = text.replace(str(password), '***')
        return text

    @contextlib.contextmanager
    def session(self) -> Iterator[orm.Session]:
        with self._lock, self._guard(), self._sessions.begin() as session:
            yield session

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sa.Connection]:
        """A Core connection in a transaction, for the hot-path UPDATEs."""
        with self._lock, self._guard(), self.engine.begin() as connection:
            yield connection

    # -- credentials ----------------------------------------------------
    def add(self, credential: Credential) -> None:
        with self.session() as session:
            session.add(credential)

    def delete(self, boot_id: str) -> None:
        with self.session() as session:
            session.execute(sa.delete(Credential).where(
                Credential.boot_id == boot_id))

    def get(self, boot_id: str) -> Credential | None:
        with self.session() as session:
            return session.get(Credential, boot_id)

    def by_username(self, username: str) -> Credential | None:
        """The credential of a broker user (detached from any session).

        Core, not an ORM session: the consumer looks up every message's
        sender, and a session's set-up and identity map cost several
        times the SELECT itself.
        """
        with self._connection() as connection:
            row = connection.execute(_by_username(),
                                     {'user': username}).one_or_none()
        return None if row is None else Credential(**row._mapping)

    def transition(self, boot_id: str, to: State,
                   allowed_from: Iterable[State],
                   message_id: str | None = None,
                   user_deleted: bool = False,
                   node: str | None = None) -> bool:
        """Move one credential to ``to`` if it is in one of allowed_from.

        One conditional UPDATE: when several consumers race for the same
        boot, exactly one sees True.
        """
        now = utcnow()
        values: dict = {'state': to.value, 'changed_at': now}
        if message_id is not None:
            values['message_id'] = message_id
        if user_deleted:
            values['user_deleted_at'] = now
        if node is not None:
            values['node'] = node
        params = {f'new_{name}': value for name, value in values.items()}
        params.update(boot=boot_id,
                      allowed=[state.value for state in allowed_from])
        # Core, not the ORM: this runs twice per message on the hot path.
        with self._connection() as connection:
            result = connection.execute(_transition(tuple(values)), params)
            return result.rowcount == 1

    def touch(self, boot_id: str, message_id: str) -> None:
        """Renew the claim of the worker applying this received message.

        ``changed_at`` of a received boot is the applying worker's last
        sign of life; a redelivery elsewhere waits while it is recent.
        """
        self._claim(boot_id, message_id, utcnow())

    def release(self, boot_id: str, message_id: str) -> None:
        """The worker applying this received message gave it back to the
        queue: age its claim so that a redelivery takes over at once."""
        self._claim(boot_id, message_id, datetime.datetime(1970, 1, 1))

    def _claim(self, boot_id: str, message_id: str,
               when: datetime.datetime) -> None:
        table = _credentials_table()
        with self._connection() as connection:
            connection.execute(
                table.update()
                .where(table.c.boot_id == boot_id,
                       table.c.state == State.RECEIVED.value,
                       table.c.message_id == message_id)
                .values(changed_at=when))

    def first_after_expiry(self, boot_id: str, message_id: str,
                           again: bool = False) -> bool:
        """Record ``message_id`` as the first message of this expired
        credential (or, ``again``, find it is that one): only that one's
        dead letter keeps its body, for "dead replay --reason expired",
        whoever (the sweeper or the consumer) expired the credential."""
        table = _credentials_table()
        first: sa.ColumnElement[bool] = table.c.message_id.is_(None)
        if again:
            first = sa.or_(first, table.c.message_id == message_id)
        with self._connection() as connection:
            return connection.execute(
                table.update()
                .where(table.c.boot_id == boot_id,
                       table.c.state == State.EXPIRED.value, first)
                .values(message_id=message_id)).rowcount == 1

    def mark_user_deleted(self, boot_id: str) -> None:
        table = _credentials_table()
        with self._connection() as connection:
            connection.execute(
                table.update()
                .where(table.c.boot_id == boot_id,
                       table.c.user_deleted_at.is_(None))
                .values(user_deleted_at=utcnow()))

    def mark_users_deleted(self, boot_ids: builtins.list[str]) -> None:
        """Record the deletion of these credentials' broker users (the
        revoker's batches: one UPDATE for all)."""
        if not boot_ids:
            return
        table = _credentials_table()
        with self._connection() as connection:
            connection.execute(
                table.update()
                .where(table.c.boot_id.in_(boot_ids),
                       table.c.user_deleted_at.is_(None))
                .values(user_deleted_at=utcnow()))

    def users_to_delete(self) -> builtins.list[tuple[str, str]]:
        """(boot id, user) of every credential past ``issued`` whose
        broker user is not recorded as deleted: the revocations a
        stopped or killed consumer left pending."""
        table = _credentials_table()
        with self._connection() as connection:
            return [(row.boot_id, row.username) for row in connection.execute(
                sa.select(table.c.boot_id, table.c.username)
                .where(table.c.state != State.ISSUED.value,
                       table.c.user_deleted_at.is_(None))
                .order_by(table.c.changed_at))]

    # -- archive of applied inventories --------------------------------
    def archive(self, record: Inventory) -> bool:
        """Save; False when this message was archived before (redelivery).

        One Core INSERT (the consumer archives every applied message):
        the ORM's unit of work costs more than the statement.
        """
        statement = _archive_insert()
        values = {column.key: getattr(record, column.key)
                  for column in statement.table.columns
                  if column.key != 'id'}
        try:
            with self._connection() as connection:
                connection.execute(statement, values)
            return True
        except sa_exc.IntegrityError:
            return False

    def inventories(self, node: str | None = None, mac: str | None = None,
                    limit: int = 50) -> list[Inventory]:
        """Newest first (detached rows).

        Core, not an ORM session: the consumer reads a node's previous
        inventory for every message it applies to a node.
        """
        table = typing.cast(sa.Table, Inventory.__table__)
        query = sa.select(table).order_by(table.c.applied_at.desc(),
                                          table.c.id.desc())
        if node:
            query = query.where(table.c.node == node)
        if mac:
            query = query.where(table.c.mac == mac)
        with self._connection() as connection:
            rows = connection.execute(query.limit(limit)).all()
        return [Inventory(**row._mapping) for row in rows]

    def list(self, states: Iterable[State] | None = None,
             mac: str | None = None, node: str | None = None,
             issued_by: str | None = None, limit: int = 1000,
             oldest_first: bool = False) -> builtins.list[Credential]:
        """Newest first, unless ``oldest_first``."""
        order = Credential.created_at if oldest_first else \
            Credential.created_at.desc()
        query = sa.select(Credential).order_by(order)
        if issued_by:
            query = query.where(Credential.issued_by == issued_by)
        if states:
            query = query.where(Credential.state.in_([s.value
                                                      for s in states]))
        if mac:
            query = query.where(Credential.mac == mac)
        if node:
            query = query.where(Credential.node == node)
        with self.session() as session:
            return list(session.scalars(query.limit(limit)))

    def expired(self, now: datetime.datetime | None = None,
                limit: int = 1000) -> builtins.list[Credential]:
        """Issued credentials whose expiry has passed."""
        now = now or utcnow()
        with self.session() as session:
            return list(session.scalars(
                sa.select(Credential)
                .where(Credential.state == State.ISSUED.value,
                       Credential.expires_at <= now)
                .order_by(Credential.expires_at).limit(limit)))

    def next_expiry(self) -> datetime.datetime | None:
        """When the next issued credential expires (None: none issued)."""
        with self.session() as session:
            return session.scalar(
                sa.select(sa.func.min(Credential.expires_at))
                .where(Credential.state == State.ISSUED.value))

    def user_not_deleted(self, limit: int = 1000) -> builtins.list[Credential]:
        """Credentials past ``issued`` whose broker user may linger.

        A consumer or operator that crashed between the state change and
        the user deletion leaves these; the sweeper finishes the job.
        """
        with self.session() as session:
            return list(session.scalars(
                sa.select(Credential)
                .where(Credential.state != State.ISSUED.value,
                       Credential.user_deleted_at.is_(None))
                .limit(limit)))

    def count(self, states: Iterable[State],
              issued_by: str | None = None) -> int:
        query = (sa.select(sa.func.count()).select_from(Credential)
                 .where(Credential.state.in_([s.value for s in states])))
        if issued_by:
            query = query.where(Credential.issued_by == issued_by)
        with self.session() as session:
            return session.scalar(query) or 0

    def live_usernames(self) -> set[str]:
        with self.session() as session:
            return set(session.scalars(
                sa.select(Credential.username)
                .where(Credential.state == State.ISSUED.value)))

