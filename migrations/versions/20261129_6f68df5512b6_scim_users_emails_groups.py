"""SCIM provisioning: each org's SCIM users, the emails they were sent with, and group data.

A SCIM user is an org's identity for an account it provisioned: the userName
(unique in the org once case-folded) and externalId its identity provider
chose, and the name, emails and ``active`` it last sent. Groups are programs;
scim_groups keeps what SCIM adds to one (its externalId, when SCIM last
changed it).

Revision ID: 6f68df5512b6
Revises: 1d5f209c5fd0
Create Date: 2026-11-29 09:34:56.147770
"""

import sqlalchemy as sa
from alembic import op

revision = '6f68df5512b6'
down_revision = '1d5f209c5fd0'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('scim_groups',
    sa.Column('program_id', sa.Uuid(), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.Column('external_id', sa.String(length=256), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_scim_groups_org_id_orgs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['program_id'], ['programs.id'], name=op.f('fk_scim_groups_program_id_programs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('program_id', name=op.f('pk_scim_groups'))
    )
    with op.batch_alter_table('scim_groups', schema=None) as batch_op:
        batch_op.create_index('ix_scim_groups_org_external_id', ['org_id', 'external_id'], unique=False)

    op.create_table('scim_users',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.Column('participant_id', sa.Uuid(), nullable=False),
    sa.Column('user_name', sa.String(length=256), nullable=False),
    sa.Column('user_name_key', sa.String(length=512).with_variant(sa.String(length=512, collation='C'), 'postgresql'), nullable=False),
    sa.Column('external_id', sa.String(length=256), nullable=True),
    sa.Column('display_name', sa.String(length=200), nullable=True),
    sa.Column('name_formatted', sa.String(length=200), nullable=True),
    sa.Column('given_name', sa.String(length=200), nullable=True),
    sa.Column('family_name', sa.String(length=200), nullable=True),
    sa.Column('synced_name', sa.String(length=200), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_scim_users_org_id_orgs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['participant_id'], ['participants.id'], name=op.f('fk_scim_users_participant_id_participants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scim_users')),
    sa.UniqueConstraint('org_id', 'participant_id', name=op.f('uq_scim_users_org_id_participant_id')),
    sa.UniqueConstraint('org_id', 'user_name_key', name=op.f('uq_scim_users_org_id_user_name_key'))
    )
    with op.batch_alter_table('scim_users', schema=None) as batch_op:
        batch_op.create_index('ix_scim_users_org_created', ['org_id', 'created_at', 'id'], unique=False)
        batch_op.create_index('ix_scim_users_org_external_id', ['org_id', 'external_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_scim_users_participant_id'), ['participant_id'], unique=False)

    op.create_table('scim_user_emails',
    sa.Column('scim_user_id', sa.Uuid(), nullable=False),
    sa.Column('position', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.Column('value', sa.String(length=320), nullable=False),
    sa.Column('value_key', sa.String(length=320).with_variant(sa.String(length=320, collation='C'), 'postgresql'), nullable=False),
    sa.Column('type', sa.String(length=40), nullable=True),
    sa.Column('display', sa.String(length=200), nullable=True),
    sa.Column('primary', sa.Boolean(), nullable=True),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_scim_user_emails_org_id_orgs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['scim_user_id'], ['scim_users.id'], name=op.f('fk_scim_user_emails_scim_user_id_scim_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('scim_user_id', 'position', name=op.f('pk_scim_user_emails'))
    )
    with op.batch_alter_table('scim_user_emails', schema=None) as batch_op:
        batch_op.create_index('ix_scim_user_emails_org_value', ['org_id', 'value_key'], unique=False)


def downgrade():
    with op.batch_alter_table('scim_user_emails', schema=None) as batch_op:
        batch_op.drop_index('ix_scim_user_emails_org_value')

    op.drop_table('scim_user_emails')
    with op.batch_alter_table('scim_users', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_scim_users_participant_id'))
        batch_op.drop_index('ix_scim_users_org_external_id')
        batch_op.drop_index('ix_scim_users_org_created')

    op.drop_table('scim_users')
    with op.batch_alter_table('scim_groups', schema=None) as batch_op:
        batch_op.drop_index('ix_scim_groups_org_external_id')

    op.drop_table('scim_groups')
