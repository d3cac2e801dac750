"""inventories.changes: what applying the inventory did to the node;
credentials.bmc: the hwbus.bmc= mode a boot was issued with.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('inventories') as batch:
        batch.add_column(sa.Column('changes', sa.Text, nullable=True))
    with op.batch_alter_table('credentials') as batch:
        batch.add_column(sa.Column('bmc', sa.String(16), nullable=True))
