"""Administration, quotas and billing: quota defaults and overrides, versioned price
lists, the ledger, billing settings and the audit log (with their first rows).

Revision ID: 0003_admin_billing
Revises: 0002_videos_datasets
Create Date: 2026-11-22 01:59:10.743746
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0003_admin_billing'
down_revision: str | None = '0002_videos_datasets'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('billing_setting',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('starting_balance_cents', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('id = 1', name=op.f('ck_billing_setting_single_row')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_billing_setting'))
    )
    op.create_table('quota_default',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('max_storage_bytes', sa.BigInteger(), nullable=False),
    sa.Column('max_videos', sa.Integer(), nullable=False),
    sa.Column('max_video_duration_s', sa.Float(), nullable=False),
    sa.Column('max_video_bytes', sa.BigInteger(), nullable=False),
    sa.Column('frames_per_month', sa.BigInteger(), nullable=False),
    sa.Column('concurrent_jobs', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('id = 1', name=op.f('ck_quota_default_single_row')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quota_default'))
    )
    op.create_table('audit_entry',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('admin_id', sa.Uuid(), nullable=True),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('target_user_id', sa.Uuid(), nullable=True),
    sa.Column('target', sa.String(length=200), nullable=True),
    sa.Column('before', sa.JSON(), nullable=True),
    sa.Column('after', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['admin_id'], ['user.id'], name=op.f('fk_audit_entry_admin_id_user'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['target_user_id'], ['user.id'], name=op.f('fk_audit_entry_target_user_id_user'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_entry'))
    )
    op.create_index(op.f('ix_audit_entry_action'), 'audit_entry', ['action'], unique=False)
    op.create_index(op.f('ix_audit_entry_admin_id'), 'audit_entry', ['admin_id'], unique=False)
    op.create_index('ix_audit_entry_created_at', 'audit_entry', ['created_at'], unique=False)
    op.create_index(op.f('ix_audit_entry_target_user_id'), 'audit_entry', ['target_user_id'], unique=False)
    op.create_table('ledger_entry',
    sa.Column('id', sa.BigInteger(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.Enum('top_up', 'reservation', 'charge', 'release', 'refund', 'adjustment', name='ledger_kind', native_enum=False, length=16), nullable=False),
    sa.Column('amount_cents', sa.BigInteger(), nullable=False),
    sa.Column('dataset_id', sa.Uuid(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('admin_id', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['admin_id'], ['user.id'], name=op.f('fk_ledger_entry_admin_id_user'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_ledger_entry_user_id_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ledger_entry'))
    )
    op.create_index(op.f('ix_ledger_entry_dataset_id'), 'ledger_entry', ['dataset_id'], unique=False)
    op.create_index(op.f('ix_ledger_entry_user_id'), 'ledger_entry', ['user_id'], unique=False)
    op.create_table('price_list',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('per_frame_cents', sa.Integer(), nullable=False),
    sa.Column('per_object_frame_cents', sa.Integer(), nullable=False),
    sa.Column('per_reviewed_frame_cents', sa.Integer(), nullable=False),
    sa.Column('minimum_cents', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('created_by_id', sa.Uuid(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['user.id'], name=op.f('fk_price_list_created_by_id_user'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_price_list')),
    sa.UniqueConstraint('version', name=op.f('uq_price_list_version'))
    )
    op.create_table('user_quota',
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('max_storage_bytes', sa.BigInteger(), nullable=True),
    sa.Column('max_videos', sa.Integer(), nullable=True),
    sa.Column('max_video_duration_s', sa.Float(), nullable=True),
    sa.Column('max_video_bytes', sa.BigInteger(), nullable=True),
    sa.Column('frames_per_month', sa.BigInteger(), nullable=True),
    sa.Column('concurrent_jobs', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['user.id'], name=op.f('fk_user_quota_user_id_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_user_quota'))
    )
    seed_first_rows()


def seed_first_rows() -> None:
    """The same values the services fall back to (src.quotas.service, src.billing.service)."""
    op.execute(
        "INSERT INTO price_list (version, per_frame_cents, per_object_frame_cents, per_reviewed_frame_cents, "
        "minimum_cents, currency, created_at) VALUES (1, 1, 0, 5, 100, 'USD', now())"
    )
    op.execute(
        "INSERT INTO quota_default (id, max_storage_bytes, max_videos, max_video_duration_s, max_video_bytes, "
        "frames_per_month, concurrent_jobs, created_at) VALUES (1, 10000000000, 50, 3600, 2000000000, 100000, 2, now())"
    )
    op.execute("INSERT INTO billing_setting (id, starting_balance_cents, created_at) VALUES (1, 0, now())")


def downgrade() -> None:
    op.drop_table('user_quota')
    op.drop_table('price_list')
    op.drop_index(op.f('ix_ledger_entry_user_id'), table_name='ledger_entry')
    op.drop_index(op.f('ix_ledger_entry_dataset_id'), table_name='ledger_entry')
    op.drop_table('ledger_entry')
    op.drop_index(op.f('ix_audit_entry_target_user_id'), table_name='audit_entry')
    op.drop_index('ix_audit_entry_created_at', table_name='audit_entry')
    op.drop_index(op.f('ix_audit_entry_admin_id'), table_name='audit_entry')
    op.drop_index(op.f('ix_audit_entry_action'), table_name='audit_entry')
    op.drop_table('audit_entry')
    op.drop_table('quota_default')
    op.drop_table('billing_setting')
