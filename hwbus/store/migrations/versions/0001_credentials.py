"""credentials: one row per boot.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'credentials',
        sa.Column('boot_id', sa.String(64), primary_key=True),
        sa.Column('username', sa.String(64), nullable=False, unique=True),
        sa.Column('public_key', sa.LargeBinary(32), nullable=False),
        sa.Column('mac', sa.String(17), nullable=True),
        sa.Column('node', sa.String(255), nullable=True),
        sa.Column('state', sa.String(16), nullable=False),
        sa.Column('created_at', sa.DateTime, nullable=False),
        sa.Column('expires_at', sa.DateTime, nullable=False),
        sa.Column('changed_at', sa.DateTime, nullable=False),
        sa.Column('message_id', sa.String(128), nullable=True),
        sa.Column('user_deleted_at', sa.DateTime, nullable=True),
        sa.Column('issued_by', sa.String(32), nullable=False),
    )
    op.create_index('ix_credentials_mac', 'credentials', ['mac'])
    op.create_index('ix_credentials_node', 'credentials', ['node'])
    op.create_index('ix_credentials_state', 'credentials', ['state'])
    op.create_index('ix_credentials_expires_at', 'credentials',
                    ['expires_at'])
