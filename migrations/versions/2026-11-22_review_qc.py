"""Double review (QC): QC jobs, and the agreement figures and auto-accept threshold of a task.

Revision ID: 0007_review_qc
Revises: 0006_detectors
Create Date: 2026-11-22 04:10:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0007_review_qc'
down_revision: str | None = '0006_detectors'  # 0006 already chains from 0005_review: one head
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('review_job', sa.Column('qc', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.add_column('review_task', sa.Column('auto_accept_agreement', sa.Float(), nullable=True))
    op.add_column('review_task', sa.Column('agreement', sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column('review_task', 'agreement')
    op.drop_column('review_task', 'auto_accept_agreement')
    op.drop_column('review_job', 'qc')
