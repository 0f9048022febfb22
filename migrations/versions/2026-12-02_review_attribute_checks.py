"""Review frames picked to check attribute values at an AVA timestamp (docs/attributes.md,
"A share of the review for attribute checks") rather than the boxes.

Revision ID: 0014_review_attribute_checks
Revises: 0013_video_import_heartbeat
Create Date: 2026-12-02 02:10:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0014_review_attribute_checks'
down_revision: str | None = '0013_video_import_heartbeat'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('review_frame', sa.Column('attribute_check', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    op.drop_column('review_frame', 'attribute_check')
