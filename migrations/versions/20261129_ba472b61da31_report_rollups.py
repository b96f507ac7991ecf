"""Report rollups: per-org daily sums, members' days, membership spans, funnel steps.

``report_days`` holds one row per (org, scope, local day), where a scope is a
program or the whole org (the all-zero id); ``report_member_days`` and
``report_scope_days`` record the days each member was active, org-wide and per
program; ``report_spans`` the stretches of membership the rollups counted;
``report_journeys`` when each participant first reached a funnel step. Orgs get
``report_threshold``, under which impact report cells are suppressed. The
tables start empty: ``flask --app console reports rebuild`` fills them from
the activity events and memberships already stored.

Revision ID: ba472b61da31
Revises: 9eb37b4ebc1b
Create Date: 2026-11-29 09:23:27.732471
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = 'ba472b61da31'
down_revision = '9eb37b4ebc1b'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('report_days',
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.Column('scope_id', sa.Uuid(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('gaps', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('members_joined', sa.Integer(), server_default='0', nullable=False),
    sa.Column('members_left', sa.Integer(), server_default='0', nullable=False),
    sa.Column('relationships_started', sa.Integer(), server_default='0', nullable=False),
    sa.Column('relationships_ended', sa.Integer(), server_default='0', nullable=False),
    sa.Column('reached_profile', sa.Integer(), server_default='0', nullable=False),
    sa.Column('reached_request', sa.Integer(), server_default='0', nullable=False),
    sa.Column('reached_match', sa.Integer(), server_default='0', nullable=False),
    sa.Column('reached_meeting', sa.Integer(), server_default='0', nullable=False),
    sa.Column('events', sa.Integer(), server_default='0', nullable=False),
    sa.Column('sign_ins', sa.Integer(), server_default='0', nullable=False),
    sa.Column('profile_updates', sa.Integer(), server_default='0', nullable=False),
    sa.Column('requests_sent', sa.Integer(), server_default='0', nullable=False),
    sa.Column('requests_received', sa.Integer(), server_default='0', nullable=False),
    sa.Column('requests_accepted', sa.Integer(), server_default='0', nullable=False),
    sa.Column('requests_declined', sa.Integer(), server_default='0', nullable=False),
    sa.Column('messages', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('sessions', sa.Integer(), server_default='0', nullable=False),
    sa.Column('session_minutes', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('feedback_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('rating_sum', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('outcomes', sa.Integer(), server_default='0', nullable=False),
    sa.Column('jobs', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('revenue_cents', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('surveys', sa.Integer(), server_default='0', nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_report_days_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', 'scope_id', 'day', name=op.f('pk_report_days'))
    )
    op.create_table('report_journeys',
    sa.Column('participant_id', sa.Uuid(), nullable=False),
    sa.Column('profile_complete_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('matched_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('met_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['participant_id'], ['participants.id'], name=op.f('fk_report_journeys_participant_id_participants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('participant_id', name=op.f('pk_report_journeys'))
    )
    op.create_table('report_member_days',
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.Column('participant_id', sa.Uuid(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('events', sa.Integer(), server_default='0', nullable=False),
    sa.Column('sign_ins', sa.Integer(), server_default='0', nullable=False),
    sa.Column('profile_updates', sa.Integer(), server_default='0', nullable=False),
    sa.Column('requests_sent', sa.Integer(), server_default='0', nullable=False),
    sa.Column('requests_received', sa.Integer(), server_default='0', nullable=False),
    sa.Column('requests_accepted', sa.Integer(), server_default='0', nullable=False),
    sa.Column('requests_declined', sa.Integer(), server_default='0', nullable=False),
    sa.Column('messages', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('sessions', sa.Integer(), server_default='0', nullable=False),
    sa.Column('session_minutes', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('feedback_count', sa.Integer(), server_default='0', nullable=False),
    sa.Column('rating_sum', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('outcomes', sa.Integer(), server_default='0', nullable=False),
    sa.Column('jobs', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('revenue_cents', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('surveys', sa.Integer(), server_default='0', nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_report_member_days_org_id_orgs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['participant_id'], ['participants.id'], name=op.f('fk_report_member_days_participant_id_participants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', 'participant_id', 'day', name=op.f('pk_report_member_days')),
    sqlite_with_rowid=False
    )
    op.create_table('report_scope_days',
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.Column('scope_id', sa.Uuid(), nullable=False),
    sa.Column('participant_id', sa.Uuid(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_report_scope_days_org_id_orgs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['participant_id'], ['participants.id'], name=op.f('fk_report_scope_days_participant_id_participants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', 'scope_id', 'participant_id', 'day', name=op.f('pk_report_scope_days')),
    sqlite_with_rowid=False
    )
    op.create_table('report_spans',
    sa.Column('participant_id', sa.Uuid(), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.Column('scope_id', sa.Uuid(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_report_spans_org_id_orgs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['participant_id'], ['participants.id'], name=op.f('fk_report_spans_participant_id_participants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('participant_id', 'org_id', 'scope_id', 'started_at', name=op.f('pk_report_spans')),
    sqlite_with_rowid=False
    )
    # Plain ALTER TABLE, not a batch copy: on SQLite, recreating orgs would drop the
    # old table, and its ON DELETE CASCADE children with it.
    op.add_column('orgs', sa.Column('report_threshold', sa.Integer(), server_default='5', nullable=False))


def downgrade():
    op.drop_column('orgs', 'report_threshold')

    op.drop_table('report_spans')
    op.drop_table('report_scope_days')
    op.drop_table('report_member_days')
    op.drop_table('report_journeys')
    op.drop_table('report_days')
