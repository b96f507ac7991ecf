"""``flask token …``: a token is printed once, stored as a hash, listed without secrets, revoked."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
import sqlalchemy as sa

from console.extensions import db
from console.models import ApiToken
from console.models import AuditEvent
from console.models.base import utcnow
from console.services import tokens


def created(result) -> tuple[ApiToken, str]:
    assert result.exit_code == 0, result.output
    secret = result.output.rstrip("\n").splitlines()[-1]
    token = tokens.find_token(secret)
    assert token is not None, result.output
    return token, secret


def test_create_prints_what_it_made_and_the_token_alone_on_the_last_line(runner, make_org):
    org = make_org(slug="acme")
    result = runner.invoke(
        args=[
            "token",
            "create",
            "--org",
            "acme",
            "--scope",
            "participants:read",
            "--scope",
            "audit:read",
            "--expires-days",
            "30",
            "--name",
            "HR sync",
        ]
    )
    token, secret = created(result)
    assert secret.startswith("pc_") and " " not in secret
    assert str(token.id) in result.output and "HR sync" in result.output
    assert token.org_id == org.id and token.name == "HR sync"
    assert token.scopes == ["audit:read", "participants:read"]
    assert timedelta(days=29) < token.expires_at - utcnow() <= timedelta(days=30)
    assert token.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert result.output.count(secret) == 1
    event = db.session.scalar(
        sa.select(AuditEvent).where(
            AuditEvent.action == "token.created", AuditEvent.org_id == org.id
        )
    )
    assert event.target_id == str(token.id) and event.actor_type == "cli"
    assert secret not in str(event.details)


def test_the_printed_token_works_against_the_api(runner, make_org, client):
    make_org(slug="acme")
    _, secret = created(
        runner.invoke(args=["token", "create", "--org", "acme", "--scope", "participants:read"])
    )
    response = client.get("/api/v1/participants", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 200


def test_a_platform_token(runner):
    token, _ = created(
        runner.invoke(args=["token", "create", "--platform", "--scope", "events:write"])
    )
    assert token.org_id is None and token.expires_at is None


@pytest.mark.parametrize(
    "args,message",
    [
        (["--scope", "participants:read"], "either --org SLUG or --platform"),
        (["--org", "acme", "--platform", "--scope", "events:write"], "either --org"),
        (["--org", "nowhere", "--scope", "participants:read"], "No org with the slug"),
        (["--org", "acme"], "at least one --scope"),
        (["--org", "acme", "--scope", "everything"], "Unknown scope everything"),
        (["--org", "acme", "--scope", "events:write"], "for platform tokens only"),
        (["--platform", "--scope", "participants:read"], "platform token may only"),
        (["--org", "acme", "--scope", "audit:read", "--expires-days", "0"], "between 1 and 3650"),
        (["--org", "acme", "--scope", "audit:read", "--expires-days", "soon"], "not a valid"),
    ],
)
def test_create_refuses_bad_input_clearly(runner, make_org, args, message):
    make_org(slug="acme")
    result = runner.invoke(args=["token", "create", *args])
    assert result.exit_code != 0
    assert message in result.output
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ApiToken)) == 0


def test_list_shows_tokens_but_never_their_secrets(runner, make_org):
    make_org(slug="acme")
    make_org(slug="other")
    token, secret = created(
        runner.invoke(
            args=["token", "create", "--org", "acme", "--scope", "audit:read", "--name", "Reports"]
        )
    )
    created(runner.invoke(args=["token", "create", "--org", "other", "--scope", "audit:read"]))
    result = runner.invoke(args=["token", "list", "--org", "acme"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert str(token.id) in lines[0] and "Reports" in lines[0] and "active" in lines[0]
    assert token.prefix in lines[0]
    assert secret not in result.output and token.token_hash not in result.output
    assert runner.invoke(args=["token", "list", "--org", "nowhere"]).exit_code != 0
    assert "No tokens." in runner.invoke(args=["token", "list", "--platform"]).output


def test_revoke_stops_the_token_at_once(runner, make_org, client):
    make_org(slug="acme")
    token, secret = created(
        runner.invoke(args=["token", "create", "--org", "acme", "--scope", "participants:read"])
    )
    result = runner.invoke(args=["token", "revoke", str(token.id)])
    assert result.exit_code == 0, result.output
    assert f"Revoked token '{token.name}' (id {token.id})" in result.output
    db.session.expire_all()
    assert tokens.find_token(secret) is None
    response = client.get("/api/v1/participants", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 401
    assert "revoked" in runner.invoke(args=["token", "list", "--org", "acme"]).output
    again = runner.invoke(args=["token", "revoke", str(token.id)])
    assert again.exit_code == 0 and "already revoked" in again.output
    assert (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "token.revoked")
        )
        == 1
    )


@pytest.mark.parametrize("ident", ["not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_revoke_refuses_unknown_ids(runner, ident):
    result = runner.invoke(args=["token", "revoke", ident])
    assert result.exit_code != 0 and "No token with the id" in result.output


def test_expired_tokens_are_listed_as_expired(runner, make_org):
    make_org(slug="acme")
    token, _ = created(
        runner.invoke(args=["token", "create", "--org", "acme", "--scope", "audit:read"])
    )
    db.session.get(ApiToken, token.id).expires_at = utcnow() - timedelta(days=1)
    db.session.flush()
    assert "expired" in runner.invoke(args=["token", "list", "--org", "acme"]).output
