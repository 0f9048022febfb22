"""Accounts: the user table (role is the one source of truth for permissions).

Revision ID: 0001_users
Revises: 
Create Date: 2026-11-22 01:46:27.419995
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = "0001_users"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table('user',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('hashed_password', sa.String(length=1024), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('is_verified', sa.Boolean(), nullable=False),
    sa.Column('role', sa.Enum('user', 'annotator', 'admin', name='role', native_enum=False, length=16), nullable=False),
    sa.Column('last_login_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('cvat_username', sa.String(length=150), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_user'))
    )
    op.create_index(op.f('ix_user_email'), 'user', ['email'], unique=True)



def downgrade() -> None:

    op.drop_index(op.f('ix_user_email'), table_name='user')
    op.drop_table('user')

