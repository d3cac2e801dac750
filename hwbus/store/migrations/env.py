"""alembic environment: the Store hands over its open connection."""

from alembic import context

from hwbus.store.models import Base

connection = context.config.attributes.get('connection')
if connection is None:
    raise RuntimeError('run migrations through hwbus-manage db upgrade')
context.configure(connection=connection, target_metadata=Base.metadata,
                  render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
