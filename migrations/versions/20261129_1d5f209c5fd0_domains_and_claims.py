"""Verified domains and domain claims: org_domains, domain_claims, the org's claim notice period.

Also gives each participant the reversed domain of their email
(``email_domain_key``, filled here for existing accounts), so the accounts of
a domain and its subdomains are one index range.

Revision ID: 1d5f209c5fd0
Revises: bd00795af006
Create Date: 2026-11-29 09:19:39.202269
"""

import sqlalchemy as sa
from alembic import op

revision = '1d5f209c5fd0'
down_revision = 'bd00795af006'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('org_domains',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.Column('domain', sa.String(length=253), nullable=False),
    sa.Column('token', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=10), server_default='pending', nullable=False),
    sa.Column('include_subdomains', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('auto_claim', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('verified_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_checked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_result', sa.String(length=20), nullable=True),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('missing_since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('lapsed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('manual_reason', sa.String(length=500), nullable=True),
    sa.Column('manual_by', sa.String(length=200), nullable=True),
    sa.CheckConstraint("status IN ('pending', 'verified', 'lapsed', 'failed')", name=op.f('ck_org_domains_status')),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_org_domains_org_id_orgs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_org_domains')),
    sa.UniqueConstraint('org_id', 'domain', name=op.f('uq_org_domains_org_id_domain')),
    sa.UniqueConstraint('token', name=op.f('uq_org_domains_token'))
    )
    with op.batch_alter_table('org_domains', schema=None) as batch_op:
        batch_op.create_index('ix_org_domains_status', ['status'], unique=False)
        batch_op.create_index('ix_org_domains_verified_domain', ['domain'], unique=True, sqlite_where=sa.text("status = 'verified'"), postgresql_where=sa.text("status = 'verified'"))

    op.create_table('domain_claims',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.Column('participant_id', sa.Uuid(), nullable=False),
    sa.Column('domain_id', sa.Uuid(), nullable=True),
    sa.Column('domain', sa.String(length=253), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('via', sa.String(length=20), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('notice_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('effective_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('end_reason', sa.String(length=40), nullable=True),
    sa.CheckConstraint("status IN ('pending', 'effective', 'dropped', 'released')", name=op.f('ck_domain_claims_status')),
    sa.ForeignKeyConstraint(['domain_id'], ['org_domains.id'], name=op.f('fk_domain_claims_domain_id_org_domains'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['org_id'], ['orgs.id'], name=op.f('fk_domain_claims_org_id_orgs'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['participant_id'], ['participants.id'], name=op.f('fk_domain_claims_participant_id_participants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_domain_claims'))
    )
    with op.batch_alter_table('domain_claims', schema=None) as batch_op:
        batch_op.create_index('ix_domain_claims_domain_status', ['domain_id', 'status', 'created_at'], unique=False)
        batch_op.create_index('ix_domain_claims_open_participant', ['participant_id'], unique=True, sqlite_where=sa.text("status IN ('pending', 'effective')"), postgresql_where=sa.text("status IN ('pending', 'effective')"))
        batch_op.create_index('ix_domain_claims_org_status', ['org_id', 'status'], unique=False)
        batch_op.create_index('ix_domain_claims_participant', ['participant_id'], unique=False)
        batch_op.create_index('ix_domain_claims_status_notice', ['status', 'notice_until'], unique=False)

    with op.batch_alter_table('orgs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claim_notice_days', sa.Integer(), server_default='0', nullable=False))
        batch_op.create_check_constraint(op.f('ck_orgs_claim_notice_days'), 'claim_notice_days BETWEEN 0 AND 30')

    with op.batch_alter_table('participants', schema=None) as batch_op:
        batch_op.add_column(sa.Column('email_domain_key', sa.String(length=253).with_variant(sa.String(length=253, collation='C'), 'postgresql'), nullable=True))
        batch_op.create_index('ix_participants_email_domain_key', ['email_domain_key', 'email'], unique=False)

    _fill_email_domain_keys()


def _fill_email_domain_keys(batch=5000):
    participants = sa.table(
        'participants',
        sa.column('id', sa.Uuid()),
        sa.column('email', sa.String()),
        sa.column('email_domain_key', sa.String()),
    )
    update = (
        participants.update()
        .where(participants.c.id == sa.bindparam('pid'))
        .values(email_domain_key=sa.bindparam('key'))
    )
    connection = op.get_bind()
    last = None
    while True:
        query = sa.select(participants.c.id, participants.c.email).where(participants.c.email.is_not(None))
        if last is not None:
            query = query.where(participants.c.id > last)
        rows = connection.execute(query.order_by(participants.c.id).limit(batch)).all()
        if not rows:
            return
        last = rows[-1].id
        keys = [
            {'pid': row.id, 'key': '.'.join(reversed(row.email.rpartition('@')[2].lower().split('.')))[:253]}
            for row in rows
            if '@' in row.email
        ]
        if keys:
            connection.execute(update, keys)


def downgrade():
    with op.batch_alter_table('participants', schema=None) as batch_op:
        batch_op.drop_index('ix_participants_email_domain_key')
        batch_op.drop_column('email_domain_key')

    with op.batch_alter_table('orgs', schema=None) as batch_op:
        batch_op.drop_constraint(op.f('ck_orgs_claim_notice_days'), type_='check')
        batch_op.drop_column('claim_notice_days')

    with op.batch_alter_table('domain_claims', schema=None) as batch_op:
        batch_op.drop_index('ix_domain_claims_status_notice')
        batch_op.drop_index('ix_domain_claims_participant')
        batch_op.drop_index('ix_domain_claims_org_status')
        batch_op.drop_index('ix_domain_claims_open_participant', sqlite_where=sa.text("status IN ('pending', 'effective')"), postgresql_where=sa.text("status IN ('pending', 'effective')"))
        batch_op.drop_index('ix_domain_claims_domain_status')

    op.drop_table('domain_claims')
    with op.batch_alter_table('org_domains', schema=None) as batch_op:
        batch_op.drop_index('ix_org_domains_verified_domain', sqlite_where=sa.text("status = 'verified'"), postgresql_where=sa.text("status = 'verified'"))
        batch_op.drop_index('ix_org_domains_status')

    op.drop_table('org_domains')
