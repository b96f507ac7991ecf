"""Foundation: orgs, programs, participants, members, activity, administrators, audit.

Creates the whole first schema, and makes the audit trail append-only in the
database itself: a trigger refuses UPDATE and DELETE on audit_events (and
TRUNCATE on PostgreSQL), whatever code path tries.

Revision ID: ec217145950d
Revises:
Create Date: 2026-11-29 08:12:59.401395
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = 'ec217145950d'
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('admins',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=True),
    sa.Column('status', sa.String(length=12), server_default='active', nullable=False),
    sa.Column('is_staff', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('totp_secret', sa.String(length=255), nullable=True),
    sa.Column('totp_last_step', sa.BigInteger(), nullable=True),
    sa.Column('session_version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_sign_in_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_admins')),
    sa.UniqueConstraint('email', name=op.f('uq_admins_email'))
    )
    op.create_table('orgs',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('slug', sa.String(length=63), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('time_zone', sa.String(length=64), server_default='UTC', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_orgs')),
    sa.UniqueConstraint('slug', name=op.f('uq_orgs_slug'))
    )
    op.create_table('audit_events',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('chain', sa.String(length=36), nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=True),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor_type', sa.String(length=20), nullable=False),
    sa.Column('actor_id', sa.String(length=64), nullable=True),
    sa.Column('actor_name', sa.String(length=320), nullable=True),
    sa.Column('actor_role', sa.String(length=20), nullable=True),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('target_type', sa.String(length=32), nullable=True),
    sa.Column('target_id', sa.String(length=64), nullable=True),
    sa.Column('ip', sa.String(length=45), nullable=True),
    sa.Column('request_id', sa.String(length=64), nullable=True),
    sa.Column('details', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_audit_events_org_id_orgs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_events')),
    sa.UniqueConstraint('chain', 'seq', name=op.f('uq_audit_events_chain_seq'))
    )
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index('ix_audit_events_org_at', ['org_id', 'at'], unique=False)
        batch_op.create_index('ix_audit_events_org_action_at', ['org_id', 'action', 'at'], unique=False)
        batch_op.create_index('ix_audit_events_org_actor_at', ['org_id', 'actor_id', 'at'], unique=False)
        batch_op.create_index('ix_audit_events_org_actor_type_at', ['org_id', 'actor_type', 'at'], unique=False)
        batch_op.create_index('ix_audit_events_target', ['target_type', 'target_id', 'at'], unique=False)
        batch_op.create_index('ix_audit_events_at', ['at'], unique=False)
        batch_op.create_index('ix_audit_events_platform_at', ['at'], unique=False,
                              sqlite_where=sa.text('org_id IS NULL'),
                              postgresql_where=sa.text('org_id IS NULL'))
    _make_audit_append_only()

    op.create_table('org_roles',
    sa.Column('admin_id', sa.Uuid(), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.Column('role', sa.String(length=12), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("role IN ('owner', 'admin', 'support', 'analyst')", name=op.f('ck_org_roles_role')),
    sa.ForeignKeyConstraint(['admin_id'], ['admins.id'], name=op.f('fk_org_roles_admin_id_admins'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_org_roles_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('admin_id', 'org_id', name=op.f('pk_org_roles'))
    )
    with op.batch_alter_table('org_roles', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_org_roles_org_id'), ['org_id'], unique=False)

    op.create_table('participants',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('email_verified', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=12), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=True),
    sa.Column('status', sa.String(length=12), server_default='active', nullable=False),
    sa.Column('suspended_reason', sa.Text(), nullable=True),
    sa.Column('suspended_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('restricted', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('must_reset_password', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('session_version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('managed_by_org_id', sa.Uuid(), nullable=True),
    sa.Column('managed_since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_sign_in_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_active_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("role IN ('mentor', 'entrepreneur', 'both')", name=op.f('ck_participants_role')),
    sa.CheckConstraint("status IN ('active', 'suspended', 'deactivated')", name=op.f('ck_participants_status')),
    sa.ForeignKeyConstraint(['managed_by_org_id'], ['orgs.id'], name=op.f('fk_participants_managed_by_org_id_orgs'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_participants')),
    sa.UniqueConstraint('email', name=op.f('uq_participants_email'))
    )
    with op.batch_alter_table('participants', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_participants_managed_by_org_id'), ['managed_by_org_id'], unique=False)
        for status in ("suspended", "deactivated"):
            where = sa.text(f"status = '{status}'")
            batch_op.create_index(f"ix_participants_{status}", ["id"], unique=False,
                                  sqlite_where=where, postgresql_where=where)

    op.create_table('programs',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('starts_on', sa.Date(), nullable=True),
    sa.Column('ends_on', sa.Date(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_programs_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_programs')),
    sa.UniqueConstraint('org_id', 'name', name=op.f('uq_programs_org_id_name'))
    )
    op.create_table('activity_events',
    sa.Column('id', sa.String(length=100), nullable=False),
    sa.Column('participant_id', sa.Uuid(), nullable=False),
    sa.Column('type', sa.String(length=40), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('counterpart_id', sa.Uuid(), nullable=True),
    sa.Column('relationship_id', sa.Uuid(), nullable=True),
    sa.Column('data', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['participant_id'], ['participants.id'], name=op.f('fk_activity_events_participant_id_participants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_activity_events'))
    )
    with op.batch_alter_table('activity_events', schema=None) as batch_op:
        batch_op.create_index('ix_activity_events_occurred', ['occurred_at'], unique=False)
        batch_op.create_index('ix_activity_events_participant_occurred', ['participant_id', 'occurred_at'], unique=False)

    op.create_table('members',
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.Column('participant_id', sa.Uuid(), nullable=False),
    sa.Column('joined_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('joined_via', sa.String(length=20), nullable=False),
    sa.Column('sort_name', sa.String(length=200).with_variant(sa.String(length=200, collation='C'), 'postgresql'), nullable=False),
    sa.Column('last_active_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_members_org_id_orgs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['participant_id'], ['participants.id'], name=op.f('fk_members_participant_id_participants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', 'participant_id', name=op.f('pk_members'))
    )
    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.create_index('ix_members_org_joined', ['org_id', 'joined_at', 'participant_id'], unique=False)
        batch_op.create_index('ix_members_org_last_active', ['org_id', 'last_active_at', 'participant_id'], unique=False)
        batch_op.create_index('ix_members_org_sort_name', ['org_id', 'sort_name', 'participant_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_members_participant_id'), ['participant_id'], unique=False)

    op.create_table('memberships',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.Column('participant_id', sa.Uuid(), nullable=False),
    sa.Column('program_id', sa.Uuid(), nullable=True),
    sa.Column('role', sa.String(length=12), nullable=False),
    sa.Column('joined_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('left_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('joined_via', sa.String(length=20), nullable=False),
    sa.CheckConstraint("joined_via IN ('invited', 'self_identified', 'claimed', 'provisioned')", name=op.f('ck_memberships_joined_via')),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_memberships_org_id_orgs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['participant_id'], ['participants.id'], name=op.f('fk_memberships_participant_id_participants'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['program_id'], ['programs.id'], name=op.f('fk_memberships_program_id_programs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_memberships'))
    )
    with op.batch_alter_table('memberships', schema=None) as batch_op:
        batch_op.create_index('ix_memberships_org_participant', ['org_id', 'participant_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_memberships_participant_id'), ['participant_id'], unique=False)
        batch_op.create_index('ix_memberships_program_participant', ['program_id', 'participant_id'], unique=False)

    op.create_table('profiles',
    sa.Column('participant_id', sa.Uuid(), nullable=False),
    sa.Column('headline', sa.String(length=200), nullable=True),
    sa.Column('bio', sa.Text(), nullable=True),
    sa.Column('city', sa.String(length=100), nullable=True),
    sa.Column('country', sa.String(length=2), nullable=True),
    sa.Column('languages', sa.String(length=200), nullable=True),
    sa.Column('website', sa.String(length=500), nullable=True),
    sa.Column('linkedin_url', sa.String(length=500), nullable=True),
    sa.Column('expertise', sa.String(length=500), nullable=True),
    sa.Column('mentor_industries', sa.String(length=500), nullable=True),
    sa.Column('years_experience', sa.Integer(), nullable=True),
    sa.Column('mentee_capacity', sa.Integer(), nullable=True),
    sa.Column('business_name', sa.String(length=200), nullable=True),
    sa.Column('business_stage', sa.String(length=20), nullable=True),
    sa.Column('business_industry', sa.String(length=100), nullable=True),
    sa.Column('founded_year', sa.Integer(), nullable=True),
    sa.Column('employees', sa.Integer(), nullable=True),
    sa.Column('business_website', sa.String(length=500), nullable=True),
    sa.Column('needs', sa.String(length=500), nullable=True),
    sa.Column('phone', sa.String(length=40), nullable=True),
    sa.Column('birth_year', sa.Integer(), nullable=True),
    sa.Column('gender', sa.String(length=40), nullable=True),
    sa.Column('postal_code', sa.String(length=20), nullable=True),
    sa.Column('education_level', sa.String(length=40), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['participant_id'], ['participants.id'], name=op.f('fk_profiles_participant_id_participants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('participant_id', name=op.f('pk_profiles'))
    )
    op.create_table('relationships',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('mentor_id', sa.Uuid(), nullable=False),
    sa.Column('mentee_id', sa.Uuid(), nullable=False),
    sa.Column('program_id', sa.Uuid(), nullable=True),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('requested', 'active', 'ended', 'declined')", name=op.f('ck_relationships_status')),
    sa.ForeignKeyConstraint(['mentee_id'], ['participants.id'], name=op.f('fk_relationships_mentee_id_participants'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['mentor_id'], ['participants.id'], name=op.f('fk_relationships_mentor_id_participants'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['program_id'], ['programs.id'], name=op.f('fk_relationships_program_id_programs'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_relationships'))
    )
    with op.batch_alter_table('relationships', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_relationships_mentee_id'), ['mentee_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_relationships_mentor_id'), ['mentor_id'], unique=False)

    op.create_table('search_terms',
    sa.Column('term', sa.String(length=320).with_variant(sa.String(length=320, collation='C'), 'postgresql'), nullable=False),
    sa.Column('participant_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['participant_id'], ['participants.id'], name=op.f('fk_search_terms_participant_id_participants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('term', 'participant_id', name=op.f('pk_search_terms'))
    )
    with op.batch_alter_table('search_terms', schema=None) as batch_op:
        batch_op.create_index('ix_search_terms_participant_term', ['participant_id', 'term'], unique=False)



def _make_audit_append_only():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION audit_events_append_only() RETURNS trigger AS $$
            BEGIN
                RAISE EXCEPTION 'audit_events is append-only';
            END;
            $$ LANGUAGE plpgsql
            """
        )
        op.execute(
            "CREATE TRIGGER audit_events_no_change BEFORE UPDATE OR DELETE ON audit_events "
            "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()"
        )
        op.execute(
            "CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_events_no_{verb.lower()} BEFORE {verb} ON audit_events "
                "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END"
            )


def _drop_audit_append_only():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER audit_events_no_truncate ON audit_events")
        op.execute("DROP TRIGGER audit_events_no_change ON audit_events")
        op.execute("DROP FUNCTION audit_events_append_only()")
    else:
        op.execute("DROP TRIGGER audit_events_no_update")
        op.execute("DROP TRIGGER audit_events_no_delete")


def downgrade():
    with op.batch_alter_table('search_terms', schema=None) as batch_op:
        batch_op.drop_index('ix_search_terms_participant_term')

    op.drop_table('search_terms')
    with op.batch_alter_table('relationships', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_relationships_mentor_id'))
        batch_op.drop_index(batch_op.f('ix_relationships_mentee_id'))

    op.drop_table('relationships')
    op.drop_table('profiles')
    with op.batch_alter_table('memberships', schema=None) as batch_op:
        batch_op.drop_index('ix_memberships_program_participant')
        batch_op.drop_index(batch_op.f('ix_memberships_participant_id'))
        batch_op.drop_index('ix_memberships_org_participant')

    op.drop_table('memberships')
    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_members_participant_id'))
        batch_op.drop_index('ix_members_org_sort_name')
        batch_op.drop_index('ix_members_org_last_active')
        batch_op.drop_index('ix_members_org_joined')

    op.drop_table('members')
    with op.batch_alter_table('activity_events', schema=None) as batch_op:
        batch_op.drop_index('ix_activity_events_participant_occurred')
        batch_op.drop_index('ix_activity_events_occurred')

    op.drop_table('activity_events')
    op.drop_table('programs')
    with op.batch_alter_table('participants', schema=None) as batch_op:
        batch_op.drop_index("ix_participants_deactivated")
        batch_op.drop_index("ix_participants_suspended")
        batch_op.drop_index(batch_op.f('ix_participants_managed_by_org_id'))

    op.drop_table('participants')
    with op.batch_alter_table('org_roles', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_org_roles_org_id'))

    op.drop_table('org_roles')
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_events_platform_at')
        batch_op.drop_index('ix_audit_events_at')
        batch_op.drop_index('ix_audit_events_target')
        batch_op.drop_index('ix_audit_events_org_actor_type_at')
        batch_op.drop_index('ix_audit_events_org_actor_at')
        batch_op.drop_index('ix_audit_events_org_action_at')
        batch_op.drop_index('ix_audit_events_org_at')

    _drop_audit_append_only()
    op.drop_table('audit_events')
    op.drop_table('orgs')
    op.drop_table('admins')
