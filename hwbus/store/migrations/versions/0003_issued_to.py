"""credentials.issued_to: the address a boot-server credential went to.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('credentials') as batch:
        batch.add_column(sa.Column('issued_to', sa.String(64),
                                   nullable=True))
