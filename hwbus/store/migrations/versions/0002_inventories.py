"""inventories: every applied inventory, signed body included.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'inventories',
        sa.Column('id', sa.Integer, primary_key=True, autoincrement=True),
        sa.Column('boot_id', sa.String(64), nullable=False),
        sa.Column('message_id', sa.String(128), nullable=False,
                  unique=True),
        sa.Column('node', sa.String(64), nullable=True),
        sa.Column('mac', sa.String(17), nullable=True),
        sa.Column('applied_at', sa.DateTime, nullable=False),
        sa.Column('body', sa.LargeBinary, nullable=False),
        sa.Column('content_encoding', sa.String(16), nullable=False),
        sa.Column('signature', sa.String(128), nullable=False),
        sa.Column('user_id', sa.String(64), nullable=False),
    )
    op.create_index('ix_inventories_boot_id', 'inventories', ['boot_id'])
    op.create_index('ix_inventories_node', 'inventories', ['node'])
    op.create_index('ix_inventories_mac', 'inventories', ['mac'])
    op.create_index('ix_inventories_applied_at', 'inventories',
                    ['applied_at'])
