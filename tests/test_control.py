"""Acting on managed accounts from the console: every action, its effect, its mail, its trail."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from console.extensions import db
from console.models import AccountLink
from console.models import AuditEvent
from console.models import Member
from console.models import Membership
from console.models import OutboxMessage
from console.models import Participant
from console.models import SearchTerm
from console.models.base import utcnow
from console.services import audit
from console.services import control
from tests.conftest import csrf_token
from tests.conftest import fresh


@pytest.fixture
def org(make_org):
    return make_org(name="Acme Partners", programs=("Accelerator", "Export"))


@pytest.fixture
def owner(org, make_admin):
    return make_admin(org, "owner", name="Olga Owner")


@pytest.fixture
def managed(org, make_participant):
    return make_participant(org, name="Ana Ortega", email="ana@acme.example", managed=True)


@pytest.fixture
def unmanaged(org, make_participant):
    return make_participant(org, name="Ulises Libre", email="ulises@mail.example")


def page(org, participant, suffix=""):
    return f"/orgs/{org.slug}/participants/{participant.id}{suffix}"


def post(client, url, **data):
    return client.post(url, data={"csrf_token": csrf_token(client), **data})


def actions(participant):
    return list(
        db.session.scalars(
            sa.select(AuditEvent.action)
            .where(AuditEvent.target_id == str(participant.id))
            .order_by(AuditEvent.seq)
        )
    )


def mail_to(address, kind=None):
    stmt = sa.select(OutboxMessage).where(OutboxMessage.to_address == address)
    if kind:
        stmt = stmt.where(OutboxMessage.kind == kind)
    return db.session.scalars(stmt.order_by(OutboxMessage.created_at)).all()


def link_in(message):
    return re.search(r"http://console\.test/\S+", message.text_body).group(0)


@pytest.mark.parametrize(
    "slug,check,mail_kind",
    [
        ("require-password-reset", lambda p: p.must_reset_password, "password_reset_required"),
        ("send-reset-link", lambda p: not p.must_reset_password, "password_reset_link"),
        ("revoke-sessions", lambda p: True, None),
        ("restrict", lambda p: p.restricted, "editing_restricted"),
        ("deactivate", lambda p: p.status == "deactivated", "account_deactivated"),
    ],
)
def test_one_click_actions_change_the_account_mail_and_audit(
    client_for, org, owner, managed, slug, check, mail_kind
):
    version = managed.session_version
    response = post(client_for(owner), page(org, managed, f"/{slug}"))
    assert response.status_code == 303
    assert response.headers["Location"] == page(org, managed)
    managed = fresh(managed)
    assert check(managed)
    action = (
        "participant."
        + {
            "require-password-reset": "password_reset_required",
            "send-reset-link": "reset_link_sent",
            "revoke-sessions": "sessions_revoked",
            "restrict": "restricted",
            "deactivate": "deactivated",
        }[slug]
    )
    assert actions(managed)[-1] == action
    if slug != "send-reset-link" and slug != "restrict":
        assert managed.session_version == version + 1
    if mail_kind:
        [message] = mail_to("ana@acme.example", mail_kind)
        assert "Acme Partners" in message.text_body


def test_reset_links_are_single_use_hashed_and_built_on_the_base_url(
    client_for, org, owner, managed
):
    post(client_for(owner), page(org, managed, "/send-reset-link"))
    [message] = mail_to("ana@acme.example", "password_reset_link")
    link = link_in(message)
    token = link.rsplit("/", 1)[-1].split("?")[0]
    stored = db.session.scalars(sa.select(AccountLink.token_hash)).all()
    assert token not in stored and len(stored) == 1
    assert link.startswith("http://console.test/")


def test_htmx_action_swaps_the_account_card(client_for, org, owner, managed):
    client = client_for(owner)
    response = client.post(
        page(org, managed, "/restrict"),
        data={"csrf_token": csrf_token(client)},
        headers={"HX-Request": "true"},
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.lstrip().startswith('<div id="participant-manage"')
    assert "Ana Ortega can no longer change or delete profile data." in html
    assert response.headers["HX-Retarget"] == "#participant-manage"
    assert "HX-Request" in response.headers["Vary"]


def test_unmanaged_accounts_offer_no_action_and_refuse_crafted_requests(
    client_for, org, owner, unmanaged
):
    client = client_for(owner)
    html = client.get(page(org, unmanaged)).get_data(as_text=True)
    assert "does not manage this account" in html
    assert "data-action=" not in html
    for slug in ("require-password-reset", "deactivate", "restrict", "revoke-sessions"):
        response = post(client, page(org, unmanaged, f"/{slug}"))
        assert response.status_code == 409
        assert "does not manage this account" in response.get_data(as_text=True)
    assert post(client, page(org, unmanaged, "/suspend"), reason="x").status_code == 409
    unmanaged = fresh(unmanaged)
    assert unmanaged.status == "active" and not unmanaged.restricted
    assert not [
        a
        for a in actions(unmanaged)
        if a != "participant.viewed" and "joined" not in a and "created" not in a
    ]
    assert not mail_to("ulises@mail.example")


@pytest.mark.parametrize(
    "role,visible",
    [
        (
            "owner",
            {
                "send-reset-link",
                "require-password-reset",
                "revoke-sessions",
                "restrict",
                "deactivate",
                "suspend",
                "edit",
                "email",
                "export",
                "erase",
            },
        ),
        (
            "admin",
            {
                "send-reset-link",
                "require-password-reset",
                "revoke-sessions",
                "restrict",
                "deactivate",
                "suspend",
                "edit",
                "email",
                "export",
            },
        ),
        ("support", {"send-reset-link", "require-password-reset", "revoke-sessions"}),
        ("analyst", set()),
    ],
)
def test_each_role_sees_only_its_buttons(client_for, make_admin, org, managed, role, visible):
    html = client_for(make_admin(org, role)).get(page(org, managed)).get_data(as_text=True)
    assert set(re.findall(r'data-action="([^"]+)"', html)) == visible


@pytest.mark.parametrize("role", ["support", "analyst"])
def test_roles_without_the_right_get_403_and_nothing_changes(
    client_for, make_admin, org, managed, role
):
    client = client_for(make_admin(org, role))
    for slug, data in (
        ("suspend", {"reason": "x"}),
        ("deactivate", {}),
        ("restrict", {}),
        ("edit", {"name": "X"}),
    ):
        assert post(client, page(org, managed, f"/{slug}"), **data).status_code == 403
    if role == "analyst":
        assert post(client, page(org, managed, "/require-password-reset")).status_code == 403
    managed = fresh(managed)
    assert managed.status == "active" and not managed.restricted and managed.name == "Ana Ortega"
    assert not mail_to("ana@acme.example")


def test_suspend_with_reason_and_last_day(client_for, org, owner, managed):
    client = client_for(owner)
    form = client.get(page(org, managed, "/suspend")).get_data(as_text=True)
    assert "Suspend Ana Ortega" in form
    tomorrow = (utcnow() + timedelta(days=1)).date()
    response = post(
        client,
        page(org, managed, "/suspend"),
        reason="Repeated no-shows",
        until=tomorrow.isoformat(),
    )
    assert response.status_code == 303
    managed = fresh(managed)
    assert managed.effective_status() == "suspended"
    assert managed.suspended_reason == "Repeated no-shows"
    assert managed.suspended_until > utcnow() + timedelta(days=1)
    [message] = mail_to("ana@acme.example", "account_suspended")
    assert "Repeated no-shows" in message.text_body
    event = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "participant.suspended")
    ).one()
    assert event.details["reason"] == "Repeated no-shows"
    assert event.details["status"] == {"before": "active", "after": "suspended"}
    # ... and lifted again
    assert post(client, page(org, managed, "/unsuspend")).status_code == 303
    assert fresh(managed).effective_status() == "active"


@pytest.mark.parametrize(
    "data,error",
    [
        ({"reason": ""}, "This field is required"),
        ({"reason": "x" * 501}, "500"),
        ({"reason": "late", "until": "2001-01-01"}, "today or a later day"),
        ({"reason": "late", "until": "not-a-date"}, "Not a valid date"),
    ],
)
def test_suspend_form_refuses_bad_input_and_changes_nothing(
    client_for, org, owner, managed, data, error
):
    response = post(client_for(owner), page(org, managed, "/suspend"), **data)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert error in html and 'aria-invalid="true"' in html
    assert fresh(managed).status == "active"
    assert not mail_to("ana@acme.example")


def test_a_suspension_whose_end_passed_no_longer_counts(org, owner, managed):
    control.suspend(owner, org, managed, "cooling off", utcnow() + timedelta(minutes=5))
    assert managed.effective_status() == "suspended" and not managed.is_active
    managed.suspended_until = utcnow() - timedelta(seconds=1)
    assert managed.effective_status() == "active" and managed.is_active


def test_edit_profile_validates_each_field(client_for, org, owner, managed):
    client = client_for(owner)
    bad = {
        "name": "Ana Ortega",
        "role": "boss",
        "website": "javascript:alert(1)",
        "founded_year": "1066",
        "birth_year": "2025",
        "country": "XX",
        "employees": "-3",
        "phone": "call me",
        "years_experience": "500",
    }
    response = post(client, page(org, managed, "/edit"), **bad)
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert html.count('aria-invalid="true"') == len(bad) - 1
    assert fresh(managed).profile.website is None


def test_edit_profile_audits_only_what_changed_and_seals_the_values(
    client_for, org, owner, managed
):
    client = client_for(owner)
    data = {
        "name": "Ana Ortega",
        "role": "entrepreneur",
        "city": "Sevilla",
        "country": "ES",
        "phone": "+34 600 000 000",
    }
    assert post(client, page(org, managed, "/edit"), **data).status_code == 303
    managed = fresh(managed)
    assert managed.profile.city == "Sevilla" and managed.profile.phone == "+34 600 000 000"
    event = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "participant.profile_updated")
    ).one()
    assert event.details["fields"] == ["city", "country", "phone"]
    assert event.details["private_fields"] == ["phone"]
    # Only the ciphertext is stored: no value appears in the clear (a random
    # ciphertext can contain "600" by chance, so look for the whole values).
    assert set(event.details) == {"fields", "private_fields", "sealed"}
    assert "Sevilla" not in str(event.details)
    assert "+34 600 000 000" not in str(event.details)
    assert audit.unseal(managed.id, event.details["sealed"])["city"] == {
        "before": None,
        "after": "Sevilla",
    }
    # Saving the same values again changes and records nothing.
    post(client, page(org, managed, "/edit"), **data)
    assert actions(managed).count("participant.profile_updated") == 1


def test_change_email_waits_for_the_new_address(client_for, org, owner, managed, make_participant):
    client = client_for(owner)
    make_participant(email="taken@mail.example")
    taken = post(client, page(org, managed, "/email"), email="Taken@Mail.example")
    assert "Another account uses that email." in taken.get_data(as_text=True)
    response = post(client, page(org, managed, "/email"), email="Ana.New@Acme.example")
    assert response.status_code == 303
    assert fresh(managed).email == "ana@acme.example"  # nothing changed yet
    [notice] = mail_to("ana@acme.example", "email_change_started")
    assert "a***@acme.example" in notice.text_body
    [confirm] = mail_to("ana.new@acme.example", "email_change_confirm")
    token = link_in(confirm).rsplit("/", 1)[-1]
    version = fresh(managed).session_version
    control.confirm_email_change(token)
    db.session.flush()
    managed = fresh(managed)
    assert managed.email == "ana.new@acme.example" and managed.session_version == version + 1
    assert mail_to("ana@acme.example", "email_changed")
    event = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "participant.email_changed")
    ).one()
    assert event.details["email"] == {"before": "a***@acme.example", "after": "a***@acme.example"}
    with pytest.raises(control.LinkError, match="already used"):
        control.confirm_email_change(token)


def test_email_change_ends_pending_reset_links(org, owner, managed):
    control.send_reset_link(owner, org, managed)
    control.start_email_change(owner, org, managed, "fresh@acme.example")
    [confirm] = mail_to("fresh@acme.example", "email_change_confirm")
    control.confirm_email_change(link_in(confirm).rsplit("/", 1)[-1])
    [reset] = mail_to("ana@acme.example", "password_reset_link")
    token = link_in(reset).rsplit("/", 1)[-1]
    with pytest.raises(control.LinkError):
        control.find_link(token, control.LinkPurpose.PASSWORD_RESET)


def test_export_is_complete_and_audited(client_for, org, owner, managed):
    response = client_for(owner).get(page(org, managed, "/export.json"))
    assert response.status_code == 200
    assert "attachment" in response.headers["Content-Disposition"]
    data = response.get_json()
    assert data["account"]["email"] == "ana@acme.example"
    assert set(data) >= {"account", "profile", "memberships", "relationships", "activity", "audit"}
    assert data["memberships"][0]["org"] == org.slug
    assert "participant.exported" in actions(managed)


def test_erase_is_two_steps_and_leaves_nothing_readable(client_for, org, owner, managed):
    client = client_for(owner)
    control.update_profile(owner, org, managed, {"city": "Sevilla"})
    sealed = (
        db.session.scalars(
            sa.select(AuditEvent).where(AuditEvent.action == "participant.profile_updated")
        )
        .one()
        .details["sealed"]
    )
    step_one = client.get(page(org, managed, "/erase")).get_data(as_text=True)
    assert "Erase Ana Ortega" in step_one and "ana@acme.example" in step_one
    wrong = post(client, page(org, managed, "/erase"), confirmation="someone@else.example")
    assert wrong.status_code == 200 and "exactly" in wrong.get_data(as_text=True)
    assert fresh(managed).erased_at is None
    right = post(client, page(org, managed, "/erase"), confirmation="ANA@acme.example")
    assert right.status_code == 303
    managed = fresh(managed)
    assert managed.erased_at and managed.email is None and managed.name == control.ERASED_NAME
    assert managed.profile.city is None and managed.password_hash is None
    assert not db.session.scalars(
        sa.select(SearchTerm).where(SearchTerm.participant_id == managed.id)
    ).all()
    assert db.session.get(Member, (org.id, managed.id)) is None
    assert audit.unseal(managed.id, sealed) is None
    assert audit.verify_chain(str(org.id)).broken_at is None
    trail = " ".join(str(e.details) for e in db.session.scalars(sa.select(AuditEvent)))
    assert "ana@acme.example" not in trail and "Sevilla" not in trail
    assert client.get(page(org, managed)).status_code == 404


def test_only_owners_erase(client_for, make_admin, org, managed):
    admin = client_for(make_admin(org, "admin"))
    assert admin.get(page(org, managed, "/erase")).status_code == 403
    assert (
        post(admin, page(org, managed, "/erase"), confirmation="ana@acme.example").status_code
        == 403
    )
    assert fresh(managed).erased_at is None


def test_remove_from_program_keeps_a_managed_account_a_member(client_for, org, owner, managed):
    program = next(p for p in org.programs if p.name == "Accelerator")
    url = page(org, managed, f"/programs/{program.id}/remove")
    assert post(client_for(owner), url).status_code == 303
    membership = db.session.scalars(
        sa.select(Membership).where(Membership.participant_id == managed.id)
    ).one()
    assert membership.left_at is not None
    assert db.session.get(Member, (org.id, managed.id)) is not None
    assert post(client_for(owner), url).status_code == 409


def test_remove_from_another_orgs_program_is_404(client_for, make_org, org, owner, managed):
    foreign = make_org().programs[0]
    assert (
        post(client_for(owner), page(org, managed, f"/programs/{foreign.id}/remove")).status_code
        == 404
    )


# -- bulk ---------------------------------------------------------------------------------


@pytest.fixture
def crowd(org, make_participant):
    return [make_participant(org, name=f"Bulk {n}", managed=n != 2) for n in range(4)]


def test_bulk_preview_names_what_will_change_and_what_is_skipped(client_for, org, owner, crowd):
    client = client_for(owner)
    response = client.post(
        f"/orgs/{org.slug}/participants/bulk/require-password-reset/preview",
        data={"csrf_token": csrf_token(client), "ids": [str(p.id) for p in crowd]},
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "3 accounts" in html and "1 selected account will be skipped" in html
    will = re.search(r'<ul class="plain" id="bulk-will">(.*?)</ul>', html, re.S).group(1)
    skip = re.search(r'<ul class="plain" id="bulk-skip">(.*?)</ul>', html, re.S).group(1)
    assert "Bulk 2" in skip and "Bulk 2" not in will
    assert not mail_to(crowd[0].email)  # a preview changes nothing


def test_bulk_apply_reports_each_account(client_for, org, owner, crowd):
    client = client_for(owner)
    response = client.post(
        f"/orgs/{org.slug}/participants/bulk/require-password-reset",
        data={"csrf_token": csrf_token(client), "ids": [str(p.id) for p in crowd]},
    )
    html = response.get_data(as_text=True)
    assert "3 of 4 done." in html and "does not manage this account" in html
    db.session.expire_all()
    assert [p.must_reset_password for p in crowd] == [True, True, False, True]
    assert (
        len(
            db.session.scalars(
                sa.select(OutboxMessage).where(OutboxMessage.kind == "password_reset_required")
            ).all()
        )
        == 3
    )


def test_bulk_suspend_needs_a_reason(client_for, org, owner, crowd):
    client = client_for(owner)
    ids = [str(p.id) for p in crowd[:2]]
    missing = client.post(
        f"/orgs/{org.slug}/participants/bulk/suspend",
        data={"csrf_token": csrf_token(client), "ids": ids},
    )
    assert missing.status_code == 200 and 'aria-invalid="true"' in missing.get_data(as_text=True)
    done = client.post(
        f"/orgs/{org.slug}/participants/bulk/suspend",
        data={"csrf_token": csrf_token(client), "ids": ids, "reason": "Audit of the cohort"},
    )
    assert "2 of 2 done." in done.get_data(as_text=True)
    db.session.expire_all()
    assert all(p.status == "suspended" for p in crowd[:2])


def test_bulk_with_a_foreign_or_unknown_id_is_404_and_changes_nothing(
    client_for, make_org, make_participant, org, owner, crowd
):
    stranger = make_participant(make_org(), managed=True)
    client = client_for(owner)
    response = client.post(
        f"/orgs/{org.slug}/participants/bulk/deactivate",
        data={"csrf_token": csrf_token(client), "ids": [str(crowd[0].id), str(stranger.id)]},
    )
    assert response.status_code == 404
    db.session.expire_all()
    assert crowd[0].status == "active" and stranger.status == "active"


@pytest.mark.parametrize("ids,status", [([], 400), (["nonsense"], 400)])
def test_bulk_bad_selection_is_400(client_for, org, owner, ids, status):
    client = client_for(owner)
    response = client.post(
        f"/orgs/{org.slug}/participants/bulk/restrict",
        data={"csrf_token": csrf_token(client), "ids": ids},
    )
    assert response.status_code == status


def test_unknown_bulk_action_is_404(client_for, org, owner, crowd):
    client = client_for(owner)
    response = client.post(
        f"/orgs/{org.slug}/participants/bulk/erase",
        data={"csrf_token": csrf_token(client), "ids": [str(crowd[0].id)]},
    )
    assert response.status_code == 404


def test_support_can_bulk_reset_but_not_bulk_suspend(client_for, make_admin, org, crowd):
    client = client_for(make_admin(org, "support"))
    ids = [str(crowd[0].id)]
    html = client.get(f"/orgs/{org.slug}/participants/").get_data(as_text=True)
    assert set(re.findall(r'data-bulk="([^"]+)"', html)) == {
        "send-reset-link",
        "require-password-reset",
        "revoke-sessions",
    }
    assert (
        client.post(
            f"/orgs/{org.slug}/participants/bulk/suspend",
            data={"csrf_token": csrf_token(client), "ids": ids, "reason": "x"},
        ).status_code
        == 403
    )


# -- requests from participants ---------------------------------------------------------------


def test_approving_an_email_request_sends_the_confirmation_link(client_for, org, owner, managed):
    request = control.request_email_change(managed, "ana.private@mail.example")
    client = client_for(owner)
    queue = client.get(f"/orgs/{org.slug}/requests/").get_data(as_text=True)
    assert "ana.private@mail.example" in queue
    response = client.post(
        f"/orgs/{org.slug}/requests/email/{request.id}/approve",
        data={"csrf_token": csrf_token(client)},
    )
    assert response.status_code == 303
    assert fresh(request).status == "approved"
    assert mail_to("ana.private@mail.example", "email_change_confirm")
    assert fresh(managed).email == "ana@acme.example"


def test_denying_an_email_request_tells_the_participant(client_for, org, owner, managed):
    request = control.request_email_change(managed, "ana.private@mail.example")
    client = client_for(owner)
    client.post(
        f"/orgs/{org.slug}/requests/email/{request.id}/deny",
        data={"csrf_token": csrf_token(client), "note": "Use your work address"},
    )
    [message] = mail_to("ana@acme.example", "email_change_denied")
    assert "Use your work address" in message.text_body
    again = client.post(
        f"/orgs/{org.slug}/requests/email/{request.id}/approve",
        data={"csrf_token": csrf_token(client)},
    )
    assert again.status_code == 409


def test_owner_releases_control_when_asked(client_for, org, owner, managed):
    request = control.ask_release(managed, "I left the company")
    with pytest.raises(control.AccountError, match="already asked"):
        control.ask_release(managed, "again")
    client = client_for(owner)
    response = client.post(
        f"/orgs/{org.slug}/requests/release/{request.id}/approve",
        data={"csrf_token": csrf_token(client)},
    )
    assert response.status_code == 303
    managed = fresh(managed)
    assert managed.managed_by_org_id is None
    assert mail_to("ana@acme.example", "control_released")
    assert "participant.released" in actions(managed)


def test_admins_cannot_decide_releases(client_for, make_admin, org, managed):
    request = control.ask_release(managed, None)
    client = client_for(make_admin(org, "admin"))
    assert "Only owners decide on releases." in client.get(f"/orgs/{org.slug}/requests/").get_data(
        as_text=True
    )
    response = client.post(
        f"/orgs/{org.slug}/requests/release/{request.id}/approve",
        data={"csrf_token": csrf_token(client)},
    )
    assert response.status_code == 403
    assert fresh(managed).managed_by_org_id == org.id


def test_every_action_is_audited_in_the_same_transaction(org, owner, managed):
    savepoint = db.session.begin_nested()
    control.deactivate(owner, org, managed)
    savepoint.rollback()
    db.session.expire_all()
    assert "participant.deactivated" not in actions(managed)
    assert db.session.get(Participant, managed.id).status == "active"
