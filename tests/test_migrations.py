"""The schema comes only from migrations, and migrations and models agree."""

from __future__ import annotations

import flask_migrate
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from console import create_app
from console.extensions import db
from tests.conftest import TEST_CONFIG
from tests.databases import temporary_database


@pytest.fixture
def scratch_app(database_kind, tmp_path):
    with temporary_database(database_kind, tmp_path) as url:
        app = create_app({**TEST_CONFIG, "DATABASE_URL": url})
        with app.app_context():
            yield app
            db.session.remove()
            db.engine.dispose()


def differences():
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, db.metadata)


def test_upgrade_downgrade_upgrade_and_models_match(scratch_app):
    flask_migrate.upgrade()
    assert differences() == []
    flask_migrate.downgrade(revision="base")
    tables = sa.inspect(db.engine).get_table_names()
    assert set(tables) <= {"alembic_version"}
    flask_migrate.upgrade()
    assert differences() == []


def test_audit_trail_is_append_only_in_the_database(scratch_app):
    flask_migrate.upgrade()
    with db.engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            names = (
                connection.execute(
                    sa.text(
                        "SELECT tgname FROM pg_trigger"
                        " WHERE tgrelid = 'audit_events'::regclass AND NOT tgisinternal"
                    )
                )
                .scalars()
                .all()
            )
            assert set(names) == {"audit_events_no_change", "audit_events_no_truncate"}
        else:
            names = (
                connection.execute(
                    sa.text(
                        "SELECT name FROM sqlite_master"
                        " WHERE type = 'trigger' AND tbl_name = 'audit_events'"
                    )
                )
                .scalars()
                .all()
            )
            assert set(names) == {"audit_events_no_update", "audit_events_no_delete"}
