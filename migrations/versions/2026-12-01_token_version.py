"""Revocable sessions: a per-user token version embedded in every JWT.

Revision ID: 0008_token_version
Revises: 0007_review_qc
Create Date: 2026-12-01 22:40:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0008_token_version'
down_revision: str | None = '0007_review_qc'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('user', sa.Column('token_version', sa.Integer(), server_default='0', nullable=False))


def downgrade() -> None:
    op.drop_column('user', 'token_version')
