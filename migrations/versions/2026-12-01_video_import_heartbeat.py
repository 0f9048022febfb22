"""URL imports: a heartbeat and a try count, so an import whose worker or services went away
is retried or failed instead of staying `importing` for ever.

Revision ID: 0013_video_import_heartbeat
Revises: 0012_webhooks
Create Date: 2026-12-01 23:50:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0013_video_import_heartbeat'
down_revision: str | None = '0012_webhooks'  # chained after the other migrations of the day
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('video', sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('video', sa.Column('import_attempts', sa.Integer(), server_default='0', nullable=False))


def downgrade() -> None:
    op.drop_column('video', 'import_attempts')
    op.drop_column('video', 'heartbeat_at')
