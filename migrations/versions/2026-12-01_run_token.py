"""Dataset job ownership: the arq job entitled to run a dataset and the token of its current run.

Revision ID: 0010_run_token
Revises: 0009_attributes
Create Date: 2026-12-01 23:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0010_run_token'
down_revision: str | None = '0009_attributes'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('dataset', sa.Column('run_job_id', sa.String(length=120), nullable=True))
    op.add_column('dataset', sa.Column('run_token', sa.String(length=32), nullable=True))


def downgrade() -> None:
    op.drop_column('dataset', 'run_token')
    op.drop_column('dataset', 'run_job_id')
