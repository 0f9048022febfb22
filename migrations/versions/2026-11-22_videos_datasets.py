"""Videos, dataset drafts, label classes and keyframes.

Revision ID: 0002_videos_datasets
Revises: 0001_users
Create Date: 2026-11-22 01:56:12.905359
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0002_videos_datasets'
down_revision: str | None = '0001_users'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table('video',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('owner_id', sa.Uuid(), nullable=False),
    sa.Column('display_name', sa.String(length=255), nullable=False),
    sa.Column('status', sa.Enum('importing', 'ready', 'failed', name='video_status', native_enum=False, length=16), nullable=False),
    sa.Column('source_url', sa.Text(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('import_progress', sa.Float(), nullable=False),
    sa.Column('storage_key', sa.String(length=255), nullable=True),
    sa.Column('size_bytes', sa.BigInteger(), nullable=False),
    sa.Column('container', sa.String(length=64), nullable=True),
    sa.Column('codec', sa.String(length=64), nullable=True),
    sa.Column('width', sa.Integer(), nullable=True),
    sa.Column('height', sa.Integer(), nullable=True),
    sa.Column('fps', sa.Float(), nullable=True),
    sa.Column('frame_count', sa.Integer(), nullable=True),
    sa.Column('duration_s', sa.Float(), nullable=True),
    sa.Column('ready_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['owner_id'], ['user.id'], name=op.f('fk_video_owner_id_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_video'))
    )
    op.create_index(op.f('ix_video_owner_id'), 'video', ['owner_id'], unique=False)
    op.create_table('dataset',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('owner_id', sa.Uuid(), nullable=False),
    sa.Column('video_id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('state', sa.Enum('draft', 'queued', 'propagating', 'in_review', 'building', 'ready', 'failed', 'cancelled', name='dataset_state', native_enum=False, length=16), nullable=False),
    sa.Column('options', sa.JSON(), nullable=False),
    sa.Column('quote', sa.JSON(), nullable=True),
    sa.Column('quoted_cents', sa.BigInteger(), nullable=True),
    sa.Column('charged_cents', sa.BigInteger(), nullable=True),
    sa.Column('delivered_frames', sa.Integer(), nullable=True),
    sa.Column('size_bytes', sa.BigInteger(), nullable=False),
    sa.Column('progress', sa.JSON(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('worker_id', sa.String(length=120), nullable=True),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('confirmed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['owner_id'], ['user.id'], name=op.f('fk_dataset_owner_id_user'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['video_id'], ['video.id'], name=op.f('fk_dataset_video_id_video'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dataset'))
    )
    op.create_index(op.f('ix_dataset_owner_id'), 'dataset', ['owner_id'], unique=False)
    op.create_index(op.f('ix_dataset_state'), 'dataset', ['state'], unique=False)
    op.create_index(op.f('ix_dataset_video_id'), 'dataset', ['video_id'], unique=False)
    op.create_table('keyframe',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dataset_id', sa.Uuid(), nullable=False),
    sa.Column('frame', sa.Integer(), nullable=False),
    sa.Column('objects', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['dataset_id'], ['dataset.id'], name=op.f('fk_keyframe_dataset_id_dataset'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_keyframe')),
    sa.UniqueConstraint('dataset_id', 'frame', name='uq_keyframe_dataset_id_frame')
    )
    op.create_index(op.f('ix_keyframe_dataset_id'), 'keyframe', ['dataset_id'], unique=False)
    op.create_table('label_class',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dataset_id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('color', sa.String(length=7), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['dataset_id'], ['dataset.id'], name=op.f('fk_label_class_dataset_id_dataset'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_label_class')),
    sa.UniqueConstraint('dataset_id', 'name', name='uq_label_class_dataset_id_name')
    )
    op.create_index(op.f('ix_label_class_dataset_id'), 'label_class', ['dataset_id'], unique=False)



def downgrade() -> None:

    op.drop_index(op.f('ix_label_class_dataset_id'), table_name='label_class')
    op.drop_table('label_class')
    op.drop_index(op.f('ix_keyframe_dataset_id'), table_name='keyframe')
    op.drop_table('keyframe')
    op.drop_index(op.f('ix_dataset_video_id'), table_name='dataset')
    op.drop_index(op.f('ix_dataset_state'), table_name='dataset')
    op.drop_index(op.f('ix_dataset_owner_id'), table_name='dataset')
    op.drop_table('dataset')
    op.drop_index(op.f('ix_video_owner_id'), table_name='video')
    op.drop_table('video')

