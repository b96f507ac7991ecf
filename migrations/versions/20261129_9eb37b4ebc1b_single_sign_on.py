"""Single sign-on: sso_connections, sso_break_glass, admin_identities, participant_identities.

Each org may have one OpenID Connect connection (its client secret stored
encrypted), a list of owners who may still use a password while SSO is
enforced, and the identities its IdP vouched for, keyed on (issuer, subject)
for administrators and participants alike.

Revision ID: 9eb37b4ebc1b
Revises: 6f68df5512b6
Create Date: 2026-11-29 10:06:25.597174
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '9eb37b4ebc1b'
down_revision = '6f68df5512b6'
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade():
    op.create_table('sso_connections',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.Column('issuer', sa.String(length=500), nullable=False),
    sa.Column('client_id', sa.String(length=255), nullable=False),
    sa.Column('client_secret', sa.Text(), nullable=False),
    sa.Column('scopes', sa.String(length=500), server_default='openid email profile', nullable=False),
    sa.Column('groups_claim', sa.String(length=200), server_default='groups', nullable=False),
    sa.Column('role_mapping', JSON, nullable=False),
    sa.Column('default_role', sa.String(length=12), nullable=True),
    sa.Column('enforce_admins', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('enforce_participants', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('discovery', JSON, nullable=True),
    sa.Column('discovered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('tested_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("default_role IS NULL OR default_role IN ('owner', 'admin', 'support', 'analyst')", name=op.f('ck_sso_connections_default_role')),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_sso_connections_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sso_connections')),
    sa.UniqueConstraint('org_id', name=op.f('uq_sso_connections_org_id'))
    )

    op.create_table('sso_break_glass',
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.Column('admin_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['admin_id'], ['admins.id'], name=op.f('fk_sso_break_glass_admin_id_admins'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_sso_break_glass_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('org_id', 'admin_id', name=op.f('pk_sso_break_glass'))
    )
    with op.batch_alter_table('sso_break_glass', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sso_break_glass_admin_id'), ['admin_id'], unique=False)

    op.create_table('admin_identities',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('admin_id', sa.Uuid(), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=True),
    sa.Column('issuer', sa.String(length=500), nullable=False),
    sa.Column('subject', sa.String(length=255), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_sign_in_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['admin_id'], ['admins.id'], name=op.f('fk_admin_identities_admin_id_admins'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_admin_identities_org_id_orgs'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_admin_identities')),
    sa.UniqueConstraint('issuer', 'subject', name=op.f('uq_admin_identities_issuer_subject'))
    )
    with op.batch_alter_table('admin_identities', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_admin_identities_admin_id'), ['admin_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_admin_identities_org_id'), ['org_id'], unique=False)

    op.create_table('participant_identities',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('participant_id', sa.Uuid(), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=True),
    sa.Column('issuer', sa.String(length=500), nullable=False),
    sa.Column('subject', sa.String(length=255), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_sign_in_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_participant_identities_org_id_orgs'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['participant_id'], ['participants.id'], name=op.f('fk_participant_identities_participant_id_participants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_participant_identities')),
    sa.UniqueConstraint('issuer', 'subject', name=op.f('uq_participant_identities_issuer_subject'))
    )
    with op.batch_alter_table('participant_identities', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_participant_identities_org_id'), ['org_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_participant_identities_participant_id'), ['participant_id'], unique=False)


def downgrade():
    with op.batch_alter_table('participant_identities', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_participant_identities_participant_id'))
        batch_op.drop_index(batch_op.f('ix_participant_identities_org_id'))

    op.drop_table('participant_identities')
    with op.batch_alter_table('admin_identities', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_admin_identities_org_id'))
        batch_op.drop_index(batch_op.f('ix_admin_identities_admin_id'))

    op.drop_table('admin_identities')
    with op.batch_alter_table('sso_break_glass', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sso_break_glass_admin_id'))

    op.drop_table('sso_break_glass')
    op.drop_table('sso_connections')
