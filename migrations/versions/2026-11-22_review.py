"""Human review: review tasks, jobs (annotation -> validation -> acceptance) and frames.

Revision ID: 0005_review
Revises: 0003_admin_billing
Create Date: 2026-11-22 02:08:00.572335
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0005_review'
down_revision: str | None = '0003_admin_billing'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table('review_task',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dataset_id', sa.Uuid(), nullable=False),
    sa.Column('backend', sa.Enum('builtin', 'cvat', name='review_backend', native_enum=False, length=16), nullable=False),
    sa.Column('state', sa.Enum('creating', 'open', 'done', name='review_task_state', native_enum=False, length=16), nullable=False),
    sa.Column('message', sa.Text(), nullable=True),
    sa.Column('cvat_project_id', sa.Integer(), nullable=True),
    sa.Column('cvat_task_id', sa.Integer(), nullable=True),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['dataset_id'], ['dataset.id'], name=op.f('fk_review_task_dataset_id_dataset'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_review_task')),
    sa.UniqueConstraint('dataset_id', name=op.f('uq_review_task_dataset_id'))
    )
    op.create_table('review_job',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('assignee_id', sa.Uuid(), nullable=True),
    sa.Column('reviewer_id', sa.Uuid(), nullable=True),
    sa.Column('stage', sa.Enum('annotation', 'validation', 'acceptance', name='review_job_stage', native_enum=False, length=16), nullable=False),
    sa.Column('issue', sa.Text(), nullable=True),
    sa.Column('imported', sa.Boolean(), nullable=False),
    sa.Column('cvat_job_id', sa.Integer(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['assignee_id'], ['user.id'], name=op.f('fk_review_job_assignee_id_user'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['reviewer_id'], ['user.id'], name=op.f('fk_review_job_reviewer_id_user'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['task_id'], ['review_task.id'], name=op.f('fk_review_job_task_id_review_task'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_review_job')),
    sa.UniqueConstraint('cvat_job_id', name=op.f('uq_review_job_cvat_job_id'))
    )
    op.create_index(op.f('ix_review_job_assignee_id'), 'review_job', ['assignee_id'], unique=False)
    op.create_index(op.f('ix_review_job_task_id'), 'review_job', ['task_id'], unique=False)
    op.create_table('review_frame',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.Column('video_frame', sa.Integer(), nullable=False),
    sa.Column('task_frame', sa.Integer(), nullable=False),
    sa.Column('proposed', sa.JSON(), nullable=False),
    sa.Column('corrected', sa.JSON(), nullable=True),
    sa.Column('decision', sa.Enum('pending', 'accepted', 'fixed', 'rejected', name='review_frame_decision', native_enum=False, length=16), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['review_job.id'], name=op.f('fk_review_frame_job_id_review_job'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_review_frame')),
    sa.UniqueConstraint('job_id', 'video_frame', name='uq_review_frame_job_id_video_frame')
    )
    op.create_index(op.f('ix_review_frame_job_id'), 'review_frame', ['job_id'], unique=False)



def downgrade() -> None:

    op.drop_index(op.f('ix_review_frame_job_id'), table_name='review_frame')
    op.drop_table('review_frame')
    op.drop_index(op.f('ix_review_job_task_id'), table_name='review_job')
    op.drop_index(op.f('ix_review_job_assignee_id'), table_name='review_job')
    op.drop_table('review_job')
    op.drop_table('review_task')

