"""Verified domains and claims, against a real DNS server on 127.0.0.1 (tests/conftest.py)."""

from __future__ import annotations

import html
import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from werkzeug.datastructures import MultiDict

from console import create_app
from console.config import ConfigError
from console.config import parse_nameservers
from console.extensions import db
from console.models import AuditEvent
from console.models import DomainClaim
from console.models import Member
from console.models import OrgDomain
from console.models import OutboxMessage
from console.models import Participant
from console.models.base import utcnow
from console.services import audit
from console.services import claims
from console.services import control
from console.services import domains
from tests.conftest import TEST_CONFIG
from tests.conftest import csrf_token
from tests.conftest import fresh
from tests.factories import ACTOR

pytestmark = pytest.mark.usefixtures("dns")


@pytest.fixture
def acme(make_org, make_admin):
    org = make_org(slug="acme", name="Acme Bank")
    return org, make_admin(org, "owner", name="Olga Owner")


@pytest.fixture
def owner(acme, client_for):
    return client_for(acme[1])


def publish(zone, domain: OrgDomain) -> None:
    zone.txt(domain.txt_name, domain.txt_value)


def verified(org, name: str, zone, **options: Any) -> OrgDomain:
    """Add a domain, publish its record on the test DNS server and check it."""
    domain = domains.add_domain(ACTOR, org, name)
    publish(zone, domain)
    check = domains.check_domain(ACTOR, org, domain)
    assert domain.status == "verified", check
    for key, value in options.items():
        setattr(domain, key, value)
    db.session.flush()
    return domain


def post(client, url: str, data: dict[str, Any] | list[tuple[str, str]] | None = None, **kwargs):
    token = csrf_token(client, "/orgs/")
    fields = list(data.items()) if isinstance(data, dict) else list(data or [])
    return client.post(url, data=MultiDict([*fields, ("csrf_token", token)]), **kwargs)


def page_text(response) -> str:
    return re.sub(r"\s+", " ", html.unescape(response.get_data(as_text=True)))


def mails(kind: str, participant=None, to: str | None = None) -> list[OutboxMessage]:
    stmt = sa.select(OutboxMessage).where(OutboxMessage.kind == kind)
    if participant is not None:
        stmt = stmt.where(OutboxMessage.participant_id == participant.id)
    if to is not None:
        stmt = stmt.where(OutboxMessage.to_address == to)
    return list(db.session.scalars(stmt.order_by(OutboxMessage.created_at)))


def actions(org) -> list[str]:
    return list(
        db.session.scalars(
            sa.select(AuditEvent.action).where(AuditEvent.org_id == org.id).order_by(AuditEvent.seq)
        )
    )


def managed_by(participant):
    return fresh(participant).managed_by_org_id


# -- names -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "given,stored",
    [
        ("acme.example", "acme.example"),
        ("  Acme.EXAMPLE.  ", "acme.example"),
        ("sales.acme.example", "sales.acme.example"),
        ("Bücher.example", "xn--bcher-kva.example"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("acme-bank.co.uk", "acme-bank.co.uk"),
    ],
)
def test_domains_are_normalised(given, stored):
    assert domains.normalize_domain(given) == stored


@pytest.mark.parametrize(
    "given",
    [
        "",
        "   ",
        "acme",
        "example",
        "-acme.example",
        "acme-.example",
        "acme..example",
        ".acme.example",
        "acme.example..",
        "a" * 64 + ".example",
        ("a" * 60 + ".") * 5 + "example",
        "someone@acme.example",
        "https://acme.example",
        "acme.example/path",
        "acme.example:443",
        "acme_bank.example",
        "acme bank.example",
        "192.168.1.10",
        "acme.123",
        "xn--.example",
        "co.uk",
        "\x00.example",
    ],
)
def test_malformed_names_are_refused_with_a_reason(acme, given):
    with pytest.raises(domains.InvalidDomain) as refused:
        domains.add_domain(ACTOR, acme[0], given)
    assert refused.value.message and refused.value.status == 422


@pytest.mark.parametrize(
    "given,provider",
    [
        ("gmail.com", "gmail.com"),
        ("GMAIL.com", "gmail.com"),
        ("googlemail.com", "googlemail.com"),
        ("outlook.com", "outlook.com"),
        ("hotmail.com", "hotmail.com"),
        ("hotmail.co.uk", "hotmail.co.uk"),
        ("live.fr", "live.fr"),
        ("yahoo.com", "yahoo.com"),
        ("yahoo.co.jp", "yahoo.co.jp"),
        ("icloud.com", "icloud.com"),
        ("me.com", "me.com"),
        ("proton.me", "proton.me"),
        ("protonmail.com", "protonmail.com"),
        ("gmx.de", "gmx.de"),
        ("gmx.net", "gmx.net"),
        ("web.de", "web.de"),
        ("yandex.ru", "yandex.ru"),
        ("yandex.com.tr", "yandex.com.tr"),
        ("mail.ru", "mail.ru"),
        ("qq.com", "qq.com"),
        ("163.com", "163.com"),
        ("zoho.com", "zoho.com"),
        ("mx.gmail.com", "gmail.com"),
        ("mailinator.com", "mailinator.com"),
    ],
)
def test_public_mailbox_providers_are_refused(acme, given, provider):
    with pytest.raises(domains.PublicProvider) as refused:
        domains.add_domain(ACTOR, acme[0], given)
    assert provider in refused.value.message and "public mailbox provider" in refused.value.message


@pytest.mark.parametrize("name", ["gmailer.example", "yahoo-finance.example", "gmx.acme.example"])
def test_names_that_only_look_like_providers_are_allowed(acme, name):
    assert domains.add_domain(ACTOR, acme[0], name).domain == name


def test_the_page_refuses_with_the_reason_and_keeps_the_form(owner, acme):
    response = post(owner, "/orgs/acme/domains/", {"domain": "gmail.com"})
    assert response.status_code == 200
    text = page_text(response)
    assert "gmail.com is a public mailbox provider" in text and 'aria-invalid="true"' in text
    response = post(owner, "/orgs/acme/domains/", {"domain": "not a domain"})
    assert "not an email or a web address" in page_text(response)
    assert not domains.list_domains(acme[0])


def test_a_domain_is_added_once_per_org(acme):
    domains.add_domain(ACTOR, acme[0], "acme.example")
    with pytest.raises(domains.DomainError, match="already in your list"):
        domains.add_domain(ACTOR, acme[0], "ACME.example.")


def test_a_domain_verified_by_another_org_is_refused(acme, make_org, dns):
    other = make_org(name="Rival")
    verified(other, "acme.example", dns)
    with pytest.raises(domains.DomainTaken, match="Another organization has verified"):
        domains.add_domain(ACTOR, acme[0], "acme.example")
    assert "Rival" not in domains._taken("acme.example").message


def test_one_org_at_most_has_a_domain_verified_even_in_the_database(acme, make_org, dns):
    other = make_org()
    mine = domains.add_domain(ACTOR, acme[0], "acme.example")
    theirs = domains.add_domain(ACTOR, other, "acme.example")  # both pending: allowed
    publish(dns, theirs)
    domains.check_domain(ACTOR, other, theirs)
    publish(dns, mine)
    with pytest.raises(domains.DomainTaken):
        domains.check_domain(ACTOR, acme[0], mine)
    assert mine.status == "pending"
    mine.status = "verified"
    with pytest.raises(sa.exc.IntegrityError), db.session.begin_nested():
        db.session.flush()


# -- DNS verification --------------------------------------------------------------------


def test_tokens_are_random_per_domain_and_the_record_is_the_contract(acme, make_org):
    first = domains.add_domain(ACTOR, acme[0], "acme.example")
    second = domains.add_domain(ACTOR, make_org(), "acme.example")
    assert first.token != second.token and len(first.token) >= 32
    assert first.txt_name == "_partner-console.acme.example"
    assert first.txt_value == f"partner-console-verification={first.token}"


def test_adding_shows_the_record_and_check_now_verifies_it(owner, acme, dns):
    response = post(owner, "/orgs/acme/domains/", {"domain": "Acme.Example"})
    assert response.status_code == 303
    assert response.headers["Location"] == "/orgs/acme/domains/acme.example"
    domain = domains.find_domain(acme[0], "acme.example")
    page = page_text(owner.get("/orgs/acme/domains/acme.example"))
    assert "_partner-console.acme.example" in page and domain.txt_value in page
    assert "Not checked yet" in page

    publish(dns, domain)
    response = post(owner, "/orgs/acme/domains/acme.example/check", follow_redirects=True)
    text = page_text(response)
    assert "acme.example is verified" in text and "found with the right value" in text
    domain = fresh(domain)
    assert domain.status == "verified" and domain.verified_at and domain.last_seen_at
    assert {"domain.added", "domain.verified", "domain.checked"} <= set(actions(acme[0]))


def test_a_wrong_token_fails_and_says_so(owner, acme, make_org, dns):
    domain = domains.add_domain(ACTOR, acme[0], "acme.example")
    stranger = domains.add_domain(ACTOR, make_org(), "acme.example")
    dns.txt(domain.txt_name, stranger.txt_value, "v=spf1 -all")
    response = post(owner, "/orgs/acme/domains/acme.example/check", follow_redirects=True)
    assert "its value is not this domain's token" in page_text(response)
    assert fresh(domain).status == "failed" and domain.last_result == "wrong_value"


def test_nxdomain_and_a_name_without_the_record_are_told_apart(owner, acme, dns):
    domain = domains.add_domain(ACTOR, acme[0], "acme.example")
    response = post(owner, "/orgs/acme/domains/acme.example/check", follow_redirects=True)
    assert "does not exist in DNS (NXDOMAIN)" in page_text(response)
    assert fresh(domain).last_result == "nxdomain" and domain.status == "failed"
    dns.exists(domain.txt_name)
    response = post(owner, "/orgs/acme/domains/acme.example/check", follow_redirects=True)
    assert "exists but has no verification TXT record" in page_text(response)
    assert fresh(domain).last_result == "no_record"
    dns.txt(domain.txt_name, "google-site-verification=abc")
    assert domains.lookup(domain).outcome == "no_record"


def test_a_nameserver_that_never_answers_is_a_time_out_not_nxdomain(owner, acme, silent_nameserver):
    domain = domains.add_domain(ACTOR, acme[0], "acme.example")
    response = post(owner, "/orgs/acme/domains/acme.example/check", follow_redirects=True)
    text = page_text(response)
    assert "did not answer in time" in text and "NXDOMAIN" not in text
    domain = fresh(domain)
    # Nothing is known: a pending domain does not become "failed".
    assert domain.last_result == "timeout" and domain.status == "pending"


def test_a_time_out_neither_starts_nor_stops_the_lapse_clock(acme, dns, app, monkeypatch):
    domain = verified(acme[0], "acme.example", dns)
    dns.clear()
    start = utcnow()
    domains.recheck(domain, now=start)
    assert domain.missing_since == start
    with socket_that_never_answers() as port:
        monkeypatch.setitem(app.config, "DNS_NAMESERVERS", f"127.0.0.1:{port}")
        monkeypatch.setitem(app.config, "DNS_TIMEOUT", 0.3)
        check = domains.recheck(domain, now=start + timedelta(days=30))
    assert check.lookup.outcome == "timeout" and not check.events
    assert domain.status == "verified" and domain.missing_since == start


def socket_that_never_answers():
    import socket

    class Silent:
        def __enter__(self):
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind(("127.0.0.1", 0))
            return self.sock.getsockname()[1]

        def __exit__(self, *exc):
            self.sock.close()

    return Silent()


def test_long_txt_records_are_read_whole(acme, dns):
    domain = domains.add_domain(ACTOR, acme[0], "acme.example")
    dns.txt(domain.txt_name, "x" * 600, domain.txt_value)
    assert domains.lookup(domain).found
    dns.txt(domain.txt_name, domain.txt_value + "y" * 300)
    assert domains.lookup(domain).outcome == "wrong_value"


def test_idn_domains_are_checked_in_their_ascii_form(acme, dns):
    domain = verified(acme[0], "Bücher.example", dns)
    assert domain.domain == "xn--bcher-kva.example" and domain.unicode_name == "bücher.example"
    assert dns.records == {"_partner-console.xn--bcher-kva.example": [domain.txt_value]}


def test_nameservers_setting():
    assert parse_nameservers("127.0.0.1:5353, [::1]:53,10.0.0.2") == [
        ("127.0.0.1", 5353),
        ("::1", 53),
        ("10.0.0.2", 53),
    ]
    assert parse_nameservers(None) == [] and parse_nameservers("") == []
    for bad in ("dns.example:53", "127.0.0.1:0", "127.0.0.1:99999", "127.0.0.1:x"):
        with pytest.raises(ConfigError, match="CONSOLE_DNS_NAMESERVERS"):
            parse_nameservers(bad)
    with pytest.raises(ConfigError):
        create_app({**TEST_CONFIG, "DNS_NAMESERVERS": "resolver.example"})


# -- re-checks, lapse and release ----------------------------------------------------------


@pytest.fixture
def claimed(acme, dns, make_participant):
    """acme.example verified by DNS, with two accounts claimed through it."""
    org = acme[0]
    domain = verified(org, "acme.example", dns)
    people = [
        make_participant(email="ana@acme.example", name="Ana Ortega"),
        make_participant(email="bruno@acme.example", name="Bruno Vidal"),
    ]
    results = claims.claim_accounts(ACTOR, org, domain, people)
    assert [r.outcome for r in results] == ["claimed", "claimed"]
    db.session.flush()
    return domain, people


def test_a_missing_record_lapses_the_domain_after_the_grace_period_then_releases(
    acme, claimed, dns, make_participant, client_for
):
    org, owner_admin = acme
    domain, people = claimed
    org.claim_notice_days = 10
    waiting = make_participant(email="carla@acme.example", name="Carla Ruiz")
    [pending] = claims.claim_accounts(ACTOR, org, domain, [waiting])
    assert pending.outcome == "pending"
    dns.clear()
    start = utcnow() + timedelta(days=1)

    first = domains.recheck(domain, now=start)
    assert first.events == ["missing"] and domain.status == "verified"
    assert domains.recheck(domain, now=start + timedelta(days=6, hours=23)).events == ["missing"]
    assert domain.missing_since == start

    lapsed = domains.recheck(domain, now=start + timedelta(days=7))
    assert lapsed.events == ["missing", "lapsed"] and domain.status == "lapsed"
    # Owners are told at once; the claim still in its notice period is dropped.
    [told] = mails("domain_lapsed", to=owner_admin.email)
    assert "acme.example has lapsed" in told.subject
    assert domain.txt_value in told.text_body and "2 accounts claimed" in told.text_body
    assert "http://console.test/orgs/acme/domains/acme.example" in told.text_body
    assert fresh(pending.claim).status == "dropped"
    assert "could no longer prove" in mails("claim_dropped", waiting)[0].text_body
    # A lapsed domain grants no new claims.
    newcomer = make_participant(email="dora@acme.example")
    with pytest.raises(claims.ClaimError, match="has lapsed"):
        claims.claim_accounts(ACTOR, org, domain, [newcomer])
    owner = client_for(owner_admin)
    assert owner.get("/orgs/acme/domains/acme.example/claimable").status_code == 409
    assert post(owner, "/orgs/acme/domains/acme.example/claims", {"all": "1"}).status_code == 409
    assert all(managed_by(p) == org.id for p in people)

    still = domains.recheck(domain, now=start + timedelta(days=7 + 29, hours=23))
    assert still.released == 0 and all(managed_by(p) == org.id for p in people)

    released = domains.recheck(domain, now=start + timedelta(days=7 + 30))
    assert released.events == ["missing", "released"] and released.released == 2
    for person in people:
        assert managed_by(person) is None
        [message] = mails("control_released_lapsed", person)
        assert "no longer manages your account" in message.subject
        assert "change your account's email" in message.text_body
        assert not mails("control_released", person)
    statuses = db.session.scalars(
        sa.select(DomainClaim.status).where(DomainClaim.domain_id == domain.id)
    ).all()
    assert sorted(statuses) == ["dropped", "released", "released"]
    reasons = db.session.scalars(
        sa.select(DomainClaim.end_reason).where(
            DomainClaim.domain_id == domain.id, DomainClaim.status == "released"
        )
    ).all()
    assert reasons == ["domain_lapsed", "domain_lapsed"]
    assert {"domain.lapsed", "domain.accounts_released", "participant.released"} <= set(
        actions(org)
    )
    # Nothing more happens on later checks.
    assert domains.recheck(domain, now=start + timedelta(days=90)).released == 0


def test_a_record_that_reappears_restores_a_lapsed_domain(acme, claimed, dns):
    domain, people = claimed
    dns.clear()
    start = utcnow()
    domains.recheck(domain, now=start)
    domains.recheck(domain, now=start + timedelta(days=8))
    assert domain.status == "lapsed"
    publish(dns, domain)
    restored = domains.recheck(domain, now=start + timedelta(days=9))
    assert restored.events == ["restored"] and domain.status == "verified"
    assert domain.missing_since is None and domain.lapsed_at is None
    assert all(managed_by(p) == acme[0].id for p in people)
    assert "domain.restored" in actions(acme[0])


def test_a_record_found_again_resets_the_missing_clock(acme, dns):
    domain = verified(acme[0], "acme.example", dns)
    start = utcnow()
    dns.clear()
    domains.recheck(domain, now=start)
    publish(dns, domain)
    domains.recheck(domain, now=start + timedelta(days=3))
    assert domain.missing_since is None
    dns.clear()
    domains.recheck(domain, now=start + timedelta(days=5))
    assert domains.recheck(domain, now=start + timedelta(days=8)).events == ["missing"]
    assert domain.status == "verified"


def test_the_grace_periods_are_settings(acme, dns, app, monkeypatch):
    monkeypatch.setitem(app.config, "DOMAIN_LAPSE_GRACE_DAYS", 1)
    monkeypatch.setitem(app.config, "DOMAIN_RELEASE_GRACE_DAYS", 2)
    domain = verified(acme[0], "acme.example", dns)
    dns.clear()
    start = utcnow()
    domains.recheck(domain, now=start)
    assert domains.recheck(domain, now=start + timedelta(days=1)).events == ["missing", "lapsed"]
    assert domains.deadlines(domain).release_on == start + timedelta(days=3)


def test_the_owner_sees_when_a_missing_record_will_lapse_the_domain(owner, acme, dns):
    domain = verified(acme[0], "acme.example", dns)
    dns.clear()
    domains.recheck(domain)
    db.session.flush()
    text = page_text(owner.get("/orgs/acme/domains/acme.example"))
    assert "The record has been missing since" in text and "the domain lapses" in text


def test_recheck_command_checks_verified_and_lapsed_domains_and_says_what_it_did(
    runner, acme, claimed, dns, make_org
):
    domain, people = claimed
    other = make_org(slug="rival")
    fine = verified(other, "rival.example", dns)
    pending = domains.add_domain(ACTOR, other, "pending.example")
    dns.remove(domain.txt_name)
    domain.missing_since = utcnow() - timedelta(days=8)
    db.session.flush()
    result = runner.invoke(args=["domains", "recheck"])
    assert result.exit_code == 0, result.output
    assert "acme.example (org acme): nxdomain, lapsed -> missing, lapsed" in result.output
    assert "rival.example (org rival): found, verified" in result.output
    assert "pending.example" not in result.output
    assert "Checked 2 domains: 1 found, 1 missing, 0 unanswered; 1 lapsed" in result.output
    assert fresh(domain).status == "lapsed" and fresh(fine).status == "verified"
    assert fresh(pending).last_checked_at is None

    domain.lapsed_at = utcnow() - timedelta(days=31)
    db.session.flush()
    result = runner.invoke(args=["domains", "recheck"])
    assert "2 accounts released" in result.output
    assert all(managed_by(p) is None for p in people)


def test_recheck_command_refuses_a_bad_nameserver_setting(runner, app, monkeypatch):
    monkeypatch.setitem(app.config, "DNS_NAMESERVERS", "dns.example")
    result = runner.invoke(args=["domains", "recheck"])
    assert result.exit_code == 1 and "CONSOLE_DNS_NAMESERVERS" in result.output


# -- staff ---------------------------------------------------------------------------------


def test_staff_verify_a_domain_by_hand_with_a_reason(
    acme, make_admin, client_for, dns, make_participant
):
    org = acme[0]
    domain = domains.add_domain(ACTOR, org, "acme.example")
    staff = client_for(make_admin(staff=True, name="Sam Staff"))
    listing = page_text(staff.get("/staff/domains"))
    assert "acme.example" in listing and "Acme Bank" in listing
    assert "acme.example" in page_text(staff.get("/staff/domains?org=acme"))
    assert staff.get("/staff/domains?org=nope").status_code == 404
    url = f"/staff/domains/{domain.id}/verify"
    assert staff.get(url).status_code == 200
    refused = post(staff, url, {"reason": "   "})
    assert refused.status_code == 200 and fresh(domain).status == "pending"
    response = post(staff, url, {"reason": "Checked the registrar's WHOIS by phone"})
    assert response.status_code == 303
    domain = fresh(domain)
    assert domain.status == "verified" and domain.verified_by_hand
    assert domain.manual_by == "Sam Staff"
    event = db.session.scalar(
        sa.select(AuditEvent).where(AuditEvent.action == "domain.verified_by_hand")
    )
    assert event.org_id == org.id and event.actor_type == "staff"
    assert event.details["reason"] == "Checked the registrar's WHOIS by phone"
    # No DNS record is expected, so re-checks leave it alone.
    assert domain.id not in domains.due_for_recheck()
    person = make_participant(email="ana@acme.example")
    assert claims.claim_accounts(ACTOR, org, domain, [person])[0].outcome == "claimed"


def test_staff_cannot_verify_a_domain_another_org_verified(
    acme, make_org, make_admin, client_for, dns
):
    verified(make_org(), "acme.example", dns)
    domain = domains.add_domain(ACTOR, acme[0], "other.example")
    domain.domain = "acme.example"  # as if added before the other org verified it
    db.session.flush()
    staff = client_for(make_admin(staff=True))
    response = post(staff, f"/staff/domains/{domain.id}/verify", {"reason": "by phone"})
    assert "Another organization has verified" in page_text(response)
    assert fresh(domain).status == "pending"


def test_staff_pages_are_for_staff_only(acme, client_for):
    domain = domains.add_domain(ACTOR, acme[0], "acme.example")
    owner = client_for(acme[1])
    assert owner.get("/staff/domains").status_code == 404
    assert owner.get(f"/staff/domains/{domain.id}/verify").status_code == 404
    assert post(owner, f"/staff/domains/{domain.id}/verify", {"reason": "x"}).status_code == 404
    assert fresh(domain).status == "pending"


# -- which accounts may be claimed ---------------------------------------------------------


@pytest.fixture
def crowd(acme, make_org, make_participant):
    """Accounts in and around acme.example, each a reason to be shown or not."""
    org = acme[0]
    other = make_org(name="Rival")
    people = {
        "exact": make_participant(email="ana@acme.example", name="Ana Ortega"),
        "member": make_participant(org, email="bea@acme.example", name="Bea Ruiz"),
        "sub": make_participant(email="carl@sales.acme.example", name="Carl Sales"),
        "deep": make_participant(email="dan@eu.sales.acme.example", name="Dan Deep"),
        "lookalike": make_participant(email="eve@notacme.example", name="Eve Look"),
        "suffix": make_participant(email="fay@acme.example.evil", name="Fay Suffix"),
        "unconfirmed": make_participant(
            email="gus@acme.example", name="Gus Unconfirmed", email_verified=False
        ),
        "elsewhere": make_participant(
            other, email="hal@acme.example", name="Hal Elsewhere", managed=True
        ),
        "ours": make_participant(org, email="ida@acme.example", name="Ida Ours", managed=True),
    }
    return people


def claimable_emails(domain: OrgDomain, q: str = "") -> list[str]:
    return [p.email for p in db.session.scalars(claims.claimable(domain, q).order_by("email"))]


def test_the_preview_holds_unmanaged_confirmed_accounts_of_exactly_the_domain(
    acme, crowd, dns, owner
):
    domain = verified(acme[0], "acme.example", dns)
    assert claimable_emails(domain) == ["ana@acme.example", "bea@acme.example"]
    text = page_text(owner.get("/orgs/acme/domains/acme.example/claimable"))
    assert "2 accounts can be claimed" in text
    assert "ana@acme.example" in text and "bea@acme.example" in text
    for hidden in ("carl@", "dan@", "eve@", "fay@", "gus@", "hal@", "ida@"):
        assert hidden not in text


def test_subdomains_count_only_when_the_owner_says_so(acme, crowd, dns, owner):
    domain = verified(acme[0], "acme.example", dns)
    response = post(owner, "/orgs/acme/domains/acme.example/settings", {"include_subdomains": "y"})
    assert response.status_code == 303
    assert fresh(domain).include_subdomains
    assert claimable_emails(domain) == [
        "ana@acme.example",
        "bea@acme.example",
        "carl@sales.acme.example",
        "dan@eu.sales.acme.example",
    ]
    assert "domain.updated" in actions(acme[0])
    post(owner, "/orgs/acme/domains/acme.example/settings", {})
    assert not fresh(domain).include_subdomains
    assert "carl@sales.acme.example" not in claimable_emails(domain)


def test_a_subdomain_never_covers_its_parent(acme, crowd, dns):
    domain = verified(acme[0], "sales.acme.example", dns, include_subdomains=True)
    assert claimable_emails(domain) == ["carl@sales.acme.example", "dan@eu.sales.acme.example"]


def test_the_preview_searches_counts_and_pages(
    acme, dns, owner, make_participant, app, monkeypatch
):
    domain = verified(acme[0], "acme.example", dns)
    for n in range(7):
        make_participant(email=f"person{n}@acme.example", name=f"Person {n} Núñez")
    make_participant(email="zoe@acme.example", name="Zoë Zapata")
    monkeypatch.setitem(app.config, "PAGE_SIZE", 3)
    url = "/orgs/acme/domains/acme.example/claimable"
    seen, cursor = [], None
    while True:
        response = owner.get(url, query_string={"cursor": cursor} if cursor else {})
        seen += re.findall(r'<td class="mono">([^<]+)</td>', response.get_data(as_text=True))
        found = re.search(
            r'href="[^"]*cursor=([^"&]+)[^"]*" [^>]*rel="next"', response.get_data(as_text=True)
        )
        if not found:
            break
        cursor = found.group(1)
    assert seen == sorted(seen) and len(seen) == 8 == len(set(seen))
    text = page_text(owner.get(url, query_string={"q": "zapa"}))
    assert "8 accounts can be claimed" in text and "1 matches the search" in text
    assert "zoe@acme.example" in text and "person0@" not in text
    assert claimable_emails(domain, "nunez") == [f"person{n}@acme.example" for n in range(7)]
    # Words are read as the participant list reads them: punctuation and an email both work.
    assert claimable_emails(domain, "Zapata,") == ["zoe@acme.example"]
    assert claimable_emails(domain, "zoë (zapata)") == ["zoe@acme.example"]
    assert claimable_emails(domain, "person3@acme") == ["person3@acme.example"]
    partial = owner.get(url, query_string={"q": "zoe"}, headers={"HX-Request": "true"})
    assert "<html" not in partial.get_data(as_text=True)
    assert "HX-Request" in partial.headers["Vary"]
    assert owner.get(url, query_string={"cursor": "garbage"}).status_code == 400


# -- claiming ------------------------------------------------------------------------------


def test_claiming_selected_accounts_makes_them_managed_members(acme, crowd, dns, owner, client_for):
    org = acme[0]
    verified(org, "acme.example", dns)
    ana, bea = crowd["exact"], crowd["member"]
    response = post(
        owner,
        "/orgs/acme/domains/acme.example/claims",
        [("ids", str(ana.id)), ("ids", str(bea.id))],
    )
    assert response.status_code == 200
    assert "2 of 2 claimed" in page_text(response)
    for person in (ana, bea):
        person = fresh(person)
        assert person.managed_by_org_id == org.id and person.managed_since is not None
        member = db.session.get(Member, (org.id, person.id))
        assert member is not None
        [message] = mails("claim_effective", person)
        assert message.subject == "Acme Bank now manages your account"
        assert "acme.example" in message.text_body
        assert "require you to set a new password" in message.text_body
        assert "erase your account for good" in message.html_body
    assert db.session.get(Member, (org.id, ana.id)).joined_via == "claimed"
    # Bea was a member already: she keeps her program and gains no empty one.
    assert db.session.get(Member, (org.id, bea.id)).joined_via != "claimed"
    assert actions(org).count("participant.claimed") == 2
    listing = page_text(owner.get("/orgs/acme/participants/", query_string={"managed": "true"}))
    assert "Ana Ortega" in listing and "Bea Ruiz" in listing
    home = page_text(client_for(fresh(ana)).get("/account"))
    assert "Managed by Acme Bank since" in home and "require you to set a new password" in home
    trail = page_text(client_for(fresh(ana)).get("/account/activity"))
    assert "Took over management of your account" in trail


def test_claims_are_idempotent_and_never_take_what_is_not_claimable(acme, crowd, dns, owner):
    org = acme[0]
    verified(org, "acme.example", dns)
    ids = [crowd[k].id for k in ("exact", "unconfirmed", "elsewhere", "lookalike", "ours")]
    response = post(owner, "/orgs/acme/domains/acme.example/claims", [("ids", str(i)) for i in ids])
    text = page_text(response)
    assert "1 of 5 claimed" in text and "Already managed by Acme Bank" in text
    assert text.count("No account with this address can be claimed") == 3
    assert managed_by(crowd["unconfirmed"]) is None
    assert managed_by(crowd["elsewhere"]) != org.id
    again = page_text(post(owner, "/orgs/acme/domains/acme.example/claims", [("ids", str(ids[0]))]))
    assert "0 of 1 claimed" in again and "Already managed" in again
    assert len(mails("claim_effective", crowd["exact"])) == 1


def test_claim_all_goes_in_batches_and_is_safe_to_repeat(
    acme, dns, owner, make_participant, monkeypatch
):
    org = acme[0]
    domain = verified(org, "acme.example", dns)
    people = [make_participant(email=f"p{n}@acme.example") for n in range(5)]
    monkeypatch.setattr(claims, "BATCH", 2)
    url = "/orgs/acme/domains/acme.example/claims"
    first = page_text(post(owner, url, {"all": "1"}))
    assert (
        "2 of 2 claimed" in first and "3 more remain" in first and "Claim the next batch" in first
    )
    post(owner, url, {"all": "1"})
    last = page_text(post(owner, url, {"all": "1"}))
    assert "1 of 1 claimed" in last and "remain" not in last
    assert all(managed_by(p) == org.id for p in people)
    nothing = page_text(post(owner, url, {"all": "1"}))
    assert "Nothing to do" in nothing
    assert claims.claim_counts(domain) == {"pending": 0, "effective": 5}


def test_the_selection_is_checked(acme, dns, owner):
    verified(acme[0], "acme.example", dns)
    url = "/orgs/acme/domains/acme.example/claims"
    assert post(owner, url, {}).status_code == 400
    assert post(owner, url, {"ids": "not-a-uuid"}).status_code == 400
    assert post(owner, url, [("ids", str(uuid.uuid4()))] * 201).status_code == 400
    assert owner.post(url, data={"all": "1"}).status_code == 400  # no CSRF token


def test_claims_need_a_verified_domain(acme, dns, owner, make_participant):
    person = make_participant(email="ana@acme.example")
    domains.add_domain(ACTOR, acme[0], "acme.example")
    url = "/orgs/acme/domains/acme.example"
    assert "not verified yet" in page_text(owner.get(url + "/claimable"))
    assert owner.get(url + "/claimable").status_code == 409
    assert post(owner, url + "/claims", {"ids": str(person.id)}).status_code == 409
    assert managed_by(person) is None


# -- the notice period ------------------------------------------------------------------------


def test_with_a_notice_period_the_participant_is_told_and_can_escape(
    acme, dns, owner, client, client_for, make_participant
):
    org = acme[0]
    domain = verified(org, "acme.example", dns)
    response = post(owner, "/orgs/acme/domains/notice", {"notice_days": "14"})
    assert response.status_code == 303 and fresh(org).claim_notice_days == 14
    assert "org.claim_notice_changed" in actions(org)
    ana = make_participant(email="ana@acme.example", name="Ana Ortega")
    bruno = make_participant(email="bruno@acme.example", name="Bruno Vidal")
    text = page_text(
        post(
            owner,
            "/orgs/acme/domains/acme.example/claims",
            [("ids", str(ana.id)), ("ids", str(bruno.id))],
        )
    )
    assert "notice sent" in text and "takes effect on" in text
    assert managed_by(ana) is None and claims.claim_counts(domain)["pending"] == 2
    [notice] = mails("claim_notice", ana)
    assert notice.subject.startswith("Acme Bank will manage your account from")
    assert "http://console.test/account/email" in notice.text_body
    assert "require you to set a new password" in notice.text_body
    home = page_text(client_for(fresh(ana)).get("/account"))
    assert "Acme Bank will manage your account from" in home and "Change email" in home
    assert "From " in home and "will then be able to" in home
    # A pending account is not claimable by anyone else meanwhile.
    assert claimable_emails(domain) == []

    # Ana moves to a personal address: the claim is dropped and she is told.
    participant = client_for(fresh(ana))
    token = csrf_token(participant, "/account/email")
    response = participant.post(
        "/account/email", data={"csrf_token": token, "email": "ana@home.example"}
    )
    assert response.status_code == 303
    link = re.search(
        r"/account/email/confirm/[\w-]+", mails("email_change_confirm", ana)[-1].text_body
    ).group(0)
    assert client.get(link).status_code == 303  # following the link confirms
    claim = db.session.scalar(sa.select(DomainClaim).where(DomainClaim.participant_id == ana.id))
    assert claim.status == "dropped" and claim.end_reason == "email_changed"
    [dropped] = mails("claim_dropped", ana)
    assert (
        dropped.to_address == "ana@home.example"
        and "no longer in acme.example" in dropped.text_body
    )
    assert "participant.claim_dropped" in actions(org)

    # Bruno does nothing: when the notice is over the claim takes effect.
    later = utcnow() + timedelta(days=14, minutes=1)
    due = claims.due(now=later)
    assert [c.participant_id for c in due] == [bruno.id]
    assert claims.apply(audit.SYSTEM, due[0], now=later) == "effective"
    assert managed_by(bruno) == org.id and mails("claim_effective", bruno)
    assert not claims.due(now=later)


def test_moving_to_another_address_in_the_domain_keeps_the_claim(acme, dns, make_participant):
    org = acme[0]
    org.claim_notice_days = 7
    domain = verified(org, "acme.example", dns, include_subdomains=True)
    ana = make_participant(email="ana@acme.example")
    [result] = claims.claim_accounts(ACTOR, org, domain, [ana])
    token_link = control.start_email_change(ana, None, ana, "ana@sales.acme.example")
    link = db.session.scalar(
        sa.select(OutboxMessage).where(OutboxMessage.kind == "email_change_confirm")
    )
    token = re.search(r"/account/email/confirm/([\w-]+)", link.text_body).group(1)
    control.confirm_email_change(token)
    assert token_link and fresh(result.claim).status == "pending"


def test_the_recheck_command_applies_due_claims(runner, acme, dns, make_participant):
    org = acme[0]
    org.claim_notice_days = 3
    domain = verified(org, "acme.example", dns)
    ana, ben = (
        make_participant(email="ana@acme.example"),
        make_participant(email="ben@acme.example"),
    )
    first, second = claims.claim_accounts(ACTOR, org, domain, [ana, ben])
    first.claim.notice_until = utcnow() - timedelta(minutes=1)
    second.claim.notice_until = utcnow() - timedelta(minutes=1)
    ben.email_verified = False  # no longer provably his: the claim must not take effect
    db.session.flush()
    result = runner.invoke(args=["domains", "recheck"])
    assert result.exit_code == 0, result.output
    assert "1 took effect, 1 dropped" in result.output
    assert managed_by(ana) == org.id and managed_by(ben) is None


# -- new sign-ups -----------------------------------------------------------------------------


def register(client, email: str, name: str = "New Person") -> None:
    token = csrf_token(client, "/account/register")
    response = client.post(
        "/account/register",
        data={
            "csrf_token": token,
            "email": email,
            "name": name,
            "password": "a long enough password",
        },
    )
    assert response.status_code == 303


def confirm(client, email: str) -> None:
    message = db.session.scalar(
        sa.select(OutboxMessage).where(
            OutboxMessage.kind == "registration_confirm", OutboxMessage.to_address == email
        )
    )
    link = re.search(r"/account/confirm/[\w-]+", message.text_body).group(0)
    assert client.get(link).status_code == 303  # following the link confirms


def test_new_sign_ups_are_claimed_once_confirmed_when_the_domain_says_so(
    acme, dns, owner, client, client_for
):
    org = acme[0]
    org.claim_notice_days = 30  # auto-claims take effect at once regardless
    domain = verified(org, "acme.example", dns)
    post(owner, "/orgs/acme/domains/acme.example/settings", {"auto_claim": "y"})
    assert fresh(domain).auto_claim
    register(client, "newbie@acme.example", "Nina Newbie")
    newbie = db.session.scalar(
        sa.select(Participant).where(Participant.email == "newbie@acme.example")
    )
    # Unconfirmed: someone may have used another person's address. Never claimed, never shown.
    assert newbie.managed_by_org_id is None and claimable_emails(domain) == []
    confirm(client, "newbie@acme.example")
    newbie = fresh(newbie)
    assert newbie.managed_by_org_id == org.id
    assert db.session.get(Member, (org.id, newbie.id)).joined_via == "claimed"
    [message] = mails("claim_effective", newbie)
    assert "Acme Bank now manages your account" == message.subject
    claim = db.session.scalar(sa.select(DomainClaim).where(DomainClaim.participant_id == newbie.id))
    assert claim.via == "sign_up" and claim.status == "effective"
    home = page_text(client_for(newbie).get("/account"))
    assert "Managed by Acme Bank since" in home


def test_without_auto_claim_a_sign_up_stays_unmanaged_but_claimable(acme, dns, client):
    domain = verified(acme[0], "acme.example", dns)
    register(client, "solo@acme.example")
    confirm(client, "solo@acme.example")
    solo = db.session.scalar(sa.select(Participant).where(Participant.email == "solo@acme.example"))
    assert solo.managed_by_org_id is None
    assert claimable_emails(domain) == ["solo@acme.example"]


def test_auto_claim_ignores_a_lapsed_domain_and_other_domains(acme, dns, client):
    domain = verified(acme[0], "acme.example", dns, auto_claim=True)
    domain.status = "lapsed"
    db.session.flush()
    register(client, "late@acme.example")
    confirm(client, "late@acme.example")
    register(client, "sub@sales.acme.example")
    confirm(client, "sub@sales.acme.example")
    assert not db.session.scalars(
        sa.select(Participant.id).where(Participant.managed_by_org_id.is_not(None))
    ).all()


# -- releasing ----------------------------------------------------------------------------------


def test_releasing_one_account_and_then_all(acme, claimed, dns, owner, make_participant):
    org = acme[0]
    domain, (ana, bruno) = claimed
    org.claim_notice_days = 5
    carla = make_participant(email="carla@acme.example")
    claims.claim_accounts(ACTOR, org, domain, [carla])
    text = page_text(owner.get("/orgs/acme/domains/acme.example/claims"))
    assert "2 managed, 1 in their notice period" in text and "Bruno Vidal" in text

    response = post(owner, "/orgs/acme/domains/acme.example/claims/release", {"ids": str(ana.id)})
    assert response.status_code == 200 and "1 account released or dropped" in page_text(response)
    assert managed_by(ana) is None and managed_by(bruno) == org.id
    [told] = mails("control_released", ana)
    assert "Acme Bank no longer manages your account" == told.subject
    assert (
        db.session.scalar(sa.select(DomainClaim.status).where(DomainClaim.participant_id == ana.id))
        == "released"
    )

    response = post(owner, "/orgs/acme/domains/acme.example/claims/release", {"all": "1"})
    assert "2 accounts released or dropped" in page_text(response)
    assert managed_by(bruno) is None
    assert mails("claim_dropped", carla) and not mails("control_released", carla)
    assert claims.claim_counts(domain) == {"pending": 0, "effective": 0}
    # Released accounts can be claimed again later.
    assert sorted(claimable_emails(domain)) == [
        "ana@acme.example",
        "bruno@acme.example",
        "carla@acme.example",
    ]


def test_deprovisioning_a_claimed_account_closes_its_claim(acme, claimed):
    # What SCIM's DELETE does to a person the org claimed through its domain:
    # the claim must end too, or the account stays hidden from later claims.
    org = acme[0]
    domain, (ana, _) = claimed
    control.deprovision(ACTOR, org, ana)
    db.session.flush()
    assert managed_by(ana) is None
    claim = db.session.scalar(sa.select(DomainClaim).where(DomainClaim.participant_id == ana.id))
    assert (claim.status, claim.end_reason) == ("released", "released")
    claimable = claims.claimable(domain).with_only_columns(Participant.id)
    assert ana.id in db.session.scalars(claimable).all()


def test_a_release_approved_on_the_requests_page_closes_the_claim(acme, claimed):
    org = acme[0]
    domain, (ana, _bruno) = claimed
    request = control.ask_release(ana, "this is my own account")
    control.decide_release(ACTOR, org, request, approve=True)
    assert (
        db.session.scalar(sa.select(DomainClaim.status).where(DomainClaim.participant_id == ana.id))
        == "released"
    )
    assert claimable_emails(domain) == ["ana@acme.example"]


def test_a_domain_with_managed_accounts_cannot_be_removed(acme, claimed, owner):
    domain, _people = claimed
    response = post(owner, "/orgs/acme/domains/acme.example/remove", follow_redirects=True)
    assert "2 accounts were claimed through acme.example" in page_text(response)
    assert fresh(domain).status == "verified"
    post(owner, "/orgs/acme/domains/acme.example/claims/release", {"all": "1"})
    response = post(owner, "/orgs/acme/domains/acme.example/remove")
    assert response.status_code == 303 and response.headers["Location"] == "/orgs/acme/domains/"
    assert domains.find_domain(acme[0], "acme.example") is None
    assert "domain.removed" in actions(acme[0])
    # The claims' history outlives the domain.
    assert db.session.scalars(sa.select(DomainClaim.domain)).all() == ["acme.example"] * 2


def test_erasing_a_claimed_account_closes_its_claim(acme, claimed):
    domain, (ana, _bruno) = claimed
    control.erase(ACTOR, acme[0], ana, "ana@acme.example")
    assert claims.claim_counts(domain) == {"pending": 0, "effective": 1}
    assert fresh(ana).email_domain_key is None


# -- provisioning --------------------------------------------------------------------------


@pytest.fixture
def api(app, acme):
    from console.services import tokens

    _token, secret = tokens.create_token(ACTOR, acme[0], ["participants:write", "domains:write"])
    client = app.test_client()

    class Api:
        def open(self, method: str, url: str, **kwargs: Any):
            headers = {"Authorization": f"Bearer {secret}"}
            return client.open(url, method=method, headers=headers, **kwargs)

        def get(self, url: str, **kwargs: Any):
            return self.open("GET", url, **kwargs)

        def post(self, url: str, **kwargs: Any):
            return self.open("POST", url, **kwargs)

    return Api()


def problem(response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    return response.get_json()


def test_provisioning_an_unmanaged_account_without_a_verified_domain_is_a_conflict(
    api, acme, make_participant, dns
):
    make_participant(email="ana@acme.example")
    domains.add_domain(ACTOR, acme[0], "acme.example")  # pending: proves nothing
    body = problem(
        api.post("/api/v1/participants", json={"email": "ana@acme.example", "name": "A"}), 409
    )
    assert "already exists" in body["detail"]


def test_provisioning_an_account_in_a_verified_domain_claims_it(api, acme, make_participant, dns):
    org = acme[0]
    verified(org, "acme.example", dns)
    ana = make_participant(email="ana@acme.example", name="Ana Ortega")
    response = api.post(
        "/api/v1/participants",
        json={
            "email": "ANA@acme.example",
            "name": "Someone Else",
            "password": "another long password",
        },
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["id"] == str(ana.id) and body["name"] == "Ana Ortega"
    assert body["managed"] is True and body["claimed"] is True
    assert body["claim"]["status"] == "effective" and body["claim"]["domain"] == "acme.example"
    assert response.headers["Location"] == f"/api/v1/participants/{ana.id}"
    ana = fresh(ana)
    assert ana.managed_by_org_id == org.id and ana.name == "Ana Ortega"
    claim = db.session.scalar(sa.select(DomainClaim).where(DomainClaim.participant_id == ana.id))
    assert claim.via == "provisioning"
    again = api.post("/api/v1/participants", json={"email": "ana@acme.example", "name": "A"})
    problem(again, 409)  # managed already: nothing to claim


def test_provisioning_with_a_notice_period_answers_202_and_waits(api, acme, make_participant, dns):
    org = acme[0]
    org.claim_notice_days = 10
    verified(org, "acme.example", dns)
    ana = make_participant(email="ana@acme.example")
    response = api.post("/api/v1/participants", json={"email": "ana@acme.example", "name": "A"})
    assert response.status_code == 202
    body = response.get_json()
    assert body["managed"] is False and body["joined_at"] is None
    assert body["claim"]["status"] == "pending"
    assert "Location" not in response.headers
    assert managed_by(ana) is None and mails("claim_notice", ana)
    repeat = api.post("/api/v1/participants", json={"email": "ana@acme.example", "name": "A"})
    assert repeat.status_code == 202 and len(mails("claim_notice", ana)) == 1


@pytest.mark.parametrize("case", ["lapsed", "elsewhere", "unconfirmed", "other_domain"])
def test_provisioning_never_takes_an_account_it_may_not_claim(
    api, acme, make_org, make_participant, dns, case
):
    org = acme[0]
    domain = verified(org, "acme.example", dns)
    email = "ana@acme.example"
    if case == "lapsed":
        domain.status = "lapsed"
        make_participant(email=email)
    elif case == "elsewhere":
        make_participant(make_org(), email=email, managed=True)
    elif case == "unconfirmed":
        make_participant(email=email, email_verified=False)
    else:
        email = "ana@elsewhere.example"
        make_participant(email=email)
    db.session.flush()
    problem(api.post("/api/v1/participants", json={"email": email, "name": "A"}), 409)
    person = db.session.scalar(sa.select(Participant).where(Participant.email == email))
    assert person.managed_by_org_id != org.id
    assert not db.session.scalars(sa.select(DomainClaim)).all()


def test_provisioning_a_new_email_still_creates_an_account(api, acme, dns):
    verified(acme[0], "acme.example", dns)
    response = api.post("/api/v1/participants", json={"email": "new@acme.example", "name": "New"})
    assert response.status_code == 201
    assert "claimed" not in response.get_json()


# -- the API ----------------------------------------------------------------------------------

DOMAIN_KEYS = {"domain", "status", "txt_name", "txt_value", "verified_at", "include_subdomains"}


def test_api_adds_lists_and_verifies_domains(api, acme, dns):
    response = api.post("/api/v1/domains", json={"domain": "Acme.Example."})
    assert response.status_code == 201
    added = response.get_json()
    assert set(added) == DOMAIN_KEYS
    token = domains.find_domain(acme[0], "acme.example").token
    assert added == {
        "domain": "acme.example",
        "status": "pending",
        "txt_name": "_partner-console.acme.example",
        "txt_value": f"partner-console-verification={token}",
        "verified_at": None,
        "include_subdomains": False,
    }
    listed = api.get("/api/v1/domains").get_json()
    assert listed == {"data": [added], "next_cursor": None}

    failed = api.post("/api/v1/domains/acme.example/verify", json={})
    assert failed.status_code == 200 and failed.get_json()["status"] == "failed"
    assert failed.headers["Verification-Result"] == "nxdomain"
    dns.txt(added["txt_name"], added["txt_value"])
    ok = api.post("/api/v1/domains/ACME.example/verify")
    assert ok.status_code == 200 and ok.headers["Verification-Result"] == "found"
    body = ok.get_json()
    assert body["status"] == "verified" and body["verified_at"]
    events = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action.like("domain.%")).order_by(AuditEvent.seq)
    ).all()
    assert {e.actor_type for e in events} == {"token"}


@pytest.mark.parametrize(
    "body,status,field",
    [
        ({"domain": "gmail.com"}, 422, "domain"),
        ({"domain": "not a domain"}, 422, "domain"),
        ({"domain": 5}, 422, "domain"),
        ({}, 422, "domain"),
        ({"domain": "acme.example", "extra": 1}, 422, "extra"),
    ],
)
def test_api_refuses_bad_domains(api, body, status, field):
    response = problem(api.post("/api/v1/domains", json=body), status)
    assert field in [e["field"] for e in response["errors"]]


def test_api_refuses_a_domain_another_org_verified(api, make_org, dns):
    verified(make_org(), "acme.example", dns)
    body = problem(api.post("/api/v1/domains", json={"domain": "acme.example"}), 409)
    assert "Another organization has verified acme.example" in body["detail"]


def test_api_claimable_list_has_the_participant_shape(api, acme, crowd, dns):
    from tests.test_api import PARTICIPANT_KEYS

    verified(acme[0], "acme.example", dns)
    response = api.get("/api/v1/domains/acme.example/claimable", query_string={"limit": 1})
    body = response.get_json()
    assert response.status_code == 200 and body["next_cursor"]
    [first] = body["data"]
    assert set(first) == PARTICIPANT_KEYS
    assert first["email"] == "ana@acme.example" and first["joined_at"] is None
    assert first["managed"] is False and first["managed_by"] is None
    second = api.get(
        "/api/v1/domains/acme.example/claimable",
        query_string={"limit": 1, "cursor": body["next_cursor"]},
    ).get_json()
    assert second["data"][0]["email"] == "bea@acme.example" and second["data"][0]["joined_at"]
    assert second["next_cursor"] is None
    found = api.get("/api/v1/domains/acme.example/claimable", query_string={"q": "bea"}).get_json()
    assert [p["email"] for p in found["data"]] == ["bea@acme.example"]
    problem(api.get("/api/v1/domains/acme.example/claimable?limit=0"), 422)
    problem(api.get("/api/v1/domains/acme.example/claimable?cursor=x"), 422)


def test_api_claims_by_email_and_all(api, acme, crowd, dns, make_participant):
    org = acme[0]
    verified(org, "acme.example", dns)
    response = api.post(
        "/api/v1/domains/acme.example/claims",
        json={
            "emails": [
                "ANA@acme.example",
                "ana@acme.example",
                "gus@acme.example",
                "hal@acme.example",
                "nobody@acme.example",
                "eve@notacme.example",
                "ida@acme.example",
                "nonsense",
            ]
        },
    )
    assert response.status_code == 200
    body = response.get_json()
    results = {r["email"]: r for r in body["results"]}
    assert len(body["results"]) == 7
    assert results["ana@acme.example"]["status"] == "claimed"
    assert results["ana@acme.example"]["participant_id"] == str(crowd["exact"].id)
    assert results["ana@acme.example"]["effective_at"]
    # Unconfirmed, managed elsewhere and missing accounts look alike.
    for email in ("gus@acme.example", "hal@acme.example", "nobody@acme.example"):
        assert results[email]["status"] == "refused" and results[email]["participant_id"] is None
        assert results[email]["detail"] == results["nobody@acme.example"]["detail"]
    assert "not in acme.example" in results["eve@notacme.example"]["detail"]
    assert results["ida@acme.example"]["status"] == "already_claimed"
    assert results["nonsense"]["status"] == "refused"
    assert body["remaining"] == 1  # bea

    everyone = api.post("/api/v1/domains/acme.example/claims", json={"all": True}).get_json()
    assert [r["email"] for r in everyone["results"]] == ["bea@acme.example"]
    assert everyone["remaining"] == 0
    assert managed_by(crowd["member"]) == org.id
    assert api.post("/api/v1/domains/acme.example/claims", json={"all": True}).get_json() == {
        "results": [],
        "remaining": 0,
    }


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"emails": ["a@acme.example"], "all": True},
        {"all": False},
        {"all": "yes"},
        {"emails": "a@acme.example"},
        {"emails": []},
        {"emails": [1]},
        {"emails": ["a@acme.example"] * 501},
        {"everyone": True},
    ],
)
def test_api_claims_refuse_bad_bodies(api, acme, dns, body):
    verified(acme[0], "acme.example", dns)
    problem(api.post("/api/v1/domains/acme.example/claims", json=body), 422)


def test_api_refuses_claims_on_a_lapsed_domain(api, acme, dns, make_participant):
    domain = verified(acme[0], "acme.example", dns)
    domain.status = "lapsed"
    db.session.flush()
    make_participant(email="ana@acme.example")
    body = problem(api.post("/api/v1/domains/acme.example/claims", json={"all": True}), 409)
    assert "has lapsed" in body["detail"]
    problem(api.get("/api/v1/domains/acme.example/claimable"), 409)


def test_api_domains_need_the_scope(app, acme, dns):
    from console.services import tokens

    verified(acme[0], "acme.example", dns)
    _t, secret = tokens.create_token(ACTOR, acme[0], ["participants:read", "participants:write"])
    headers = {"Authorization": f"Bearer {secret}"}
    client = app.test_client()
    for method, url, body in API_ROUTES:
        response = client.open(url, method=method, json=body, headers=headers)
        assert response.status_code == 403, url
        assert "domains:write" in response.get_json()["detail"]
        assert client.open(url, method=method, json=body).status_code == 401


API_ROUTES = [
    ("GET", "/api/v1/domains", None),
    ("POST", "/api/v1/domains", {"domain": "new.example"}),
    ("POST", "/api/v1/domains/acme.example/verify", {}),
    ("GET", "/api/v1/domains/acme.example/claimable", None),
    ("POST", "/api/v1/domains/acme.example/claims", {"all": True}),
]


def test_api_responses_match_the_document(api, acme, crowd, dns, client):
    from tests.test_api import conform
    from tests.test_api import response_schema

    spec = client.get("/api/v1/openapi.json").get_json()
    verified(acme[0], "acme.example", dns)
    checks = [
        ("/domains", "get", api.get("/api/v1/domains")),
        ("/domains", "post", api.post("/api/v1/domains", json={"domain": "new.example"})),
        ("/domains", "post", api.post("/api/v1/domains", json={"domain": "gmail.com"})),
        ("/domains/{domain}/verify", "post", api.post("/api/v1/domains/new.example/verify")),
        ("/domains/{domain}/verify", "post", api.post("/api/v1/domains/none.example/verify")),
        ("/domains/{domain}/claimable", "get", api.get("/api/v1/domains/acme.example/claimable")),
        (
            "/domains/{domain}/claims",
            "post",
            api.post(
                "/api/v1/domains/acme.example/claims", json={"emails": ["ana@acme.example", "x"]}
            ),
        ),
        (
            "/domains/{domain}/claims",
            "post",
            api.post("/api/v1/domains/new.example/claims", json={"all": True}),
        ),
    ]
    acme[0].claim_notice_days = 3
    db.session.flush()
    checks.append(
        (
            "/participants",
            "post",
            api.post("/api/v1/participants", json={"email": "bea@acme.example", "name": "B"}),
        )
    )
    for path, method, response in checks:
        schema = response_schema(spec, path, method, response.status_code)
        conform(spec, schema, response.get_json(), f"{method} {path} {response.status_code}")
    statuses = [response.status_code for _p, _m, response in checks]
    assert statuses == [200, 201, 422, 200, 404, 200, 200, 409, 202]


# -- other orgs and other roles --------------------------------------------------------------


def test_another_orgs_administrators_see_none_of_it(
    acme, claimed, make_org, make_admin, client_for, dns
):
    from console.services import tokens

    rival = make_org(slug="rival")
    rival_owner = client_for(make_admin(rival, "owner"))
    for url in (
        "/orgs/acme/domains/",
        "/orgs/acme/domains/acme.example",
        "/orgs/acme/domains/acme.example/claimable",
        "/orgs/acme/domains/acme.example/claims",
    ):
        assert rival_owner.get(url).status_code == 404, url
    # Asking for acme's domain under the rival's own org is a 404 too.
    assert rival_owner.get("/orgs/rival/domains/acme.example").status_code == 404
    assert "acme.example" not in page_text(rival_owner.get("/orgs/rival/domains/"))
    response = post(rival_owner, "/orgs/rival/domains/acme.example/claims/release", {"all": "1"})
    assert response.status_code == 404
    _t, secret = tokens.create_token(ACTOR, rival, ["domains:write"])
    headers = {"Authorization": f"Bearer {secret}"}
    client = rival_owner
    assert client.get("/api/v1/domains", headers=headers).get_json()["data"] == []
    for method, url, body in API_ROUTES[2:]:
        response = client.open(url, method=method, json=body, headers=headers)
        assert response.status_code == 404, url
    domain, people = claimed
    assert all(managed_by(p) == acme[0].id for p in people)
    assert fresh(domain).status == "verified"


@pytest.mark.parametrize("role", ["admin", "support", "analyst"])
def test_only_owners_manage_domains(acme, claimed, make_admin, client_for, role):
    client = client_for(make_admin(acme[0], role))
    assert client.get("/orgs/acme/domains/").status_code == 403
    assert client.get("/orgs/acme/domains/acme.example/claimable").status_code == 403
    assert (
        post(client, "/orgs/acme/domains/acme.example/claims/release", {"all": "1"}).status_code
        == 403
    )
    assert "/orgs/acme/domains/" not in client.get("/orgs/acme/participants/").get_data(
        as_text=True
    )
    assert all(managed_by(p) == acme[0].id for p in claimed[1])


def test_owners_find_domains_in_the_navigation(owner):
    assert 'href="/orgs/acme/domains/"' in owner.get("/orgs/acme/participants/").get_data(
        as_text=True
    )


# -- trail, mail, bookkeeping ----------------------------------------------------------------


def test_the_audit_trail_tells_the_story(acme, claimed, owner, dns):
    text = re.sub(r"<[^>]+>", "", page_text(owner.get("/orgs/acme/audit")))
    assert "added the domain acme.example" in text
    assert "verified acme.example by its DNS record" in text
    assert "took over the account of Ana Ortega through acme.example" in text
    filtered = page_text(owner.get("/orgs/acme/audit", query_string={"action": "domain.*"}))
    assert "added the domain acme.example" in filtered and "took over" not in filtered


def test_the_lapse_mail_to_owners_renders_with_links_on_the_base_url(app, acme, dns):
    from console.services import mail

    org, admin = acme
    domain = verified(org, "acme.example", dns)
    domain.missing_since = utcnow() - timedelta(days=7)
    with app.test_request_context("/", base_url="http://evil.example"):
        message = mail.queue(
            "domain_lapsed",
            admin.email,
            org=org,
            admin=admin,
            domain=domain,
            managed=3,
            release_on=utcnow() + timedelta(days=30),
            domain_link=mail.external_url("domains.show", org=org.slug, domain=domain.domain),
        )
    for body in (message.text_body, message.html_body):
        assert "Olga Owner" in body and "Acme Bank" in body and domain.txt_value in body
        assert "3 accounts claimed through it" in body and "None" not in body
        assert "evil.example" not in body
    links = re.findall(r"https?://[^\s\"<>]+", message.text_body + message.html_body)
    assert links and all(
        link.startswith("http://console.test/orgs/acme/domains/") for link in links
    )


def test_the_email_domain_key_follows_the_email(make_participant):
    person = make_participant(email="Ana@Sales.Acme.Example")
    assert person.email_domain_key == "example.acme.sales"
    person.email = "ana@home.example"
    assert person.email_domain_key == "example.home"
    person.email = None
    assert person.email_domain_key is None


def test_two_orgs_verifying_at_once_cannot_both_win(acme, make_org, dns, owner, monkeypatch):
    rival = make_org()
    mine = domains.add_domain(ACTOR, acme[0], "acme.example")
    lapsed = domains.add_domain(ACTOR, acme[0], "old.example")
    lapsed.status, lapsed.lapsed_at, lapsed.missing_since = "lapsed", utcnow(), utcnow()
    verified(rival, "acme.example", dns)
    verified(rival, "old.example", dns)
    publish(dns, mine)
    publish(dns, lapsed)
    # As if the rival's verification landed between our check and our write.
    monkeypatch.setattr(domains, "verified_elsewhere", lambda domain: False)
    response = post(owner, "/orgs/acme/domains/acme.example/check")
    assert response.status_code == 409 and "Another organization" in page_text(response)
    assert fresh(mine).status == "pending"
    check = domains.recheck(lapsed)
    assert check.events == [] and fresh(lapsed).status == "lapsed"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(OrgDomain)) == 4


@pytest.mark.parametrize(
    "path",
    [
        "/orgs/acme/domains/%00",
        "/orgs/acme/domains/" + "a" * 400 + ".example",
        "/orgs/acme/domains/xn--.example/claimable",
        "/orgs/acme/domains/acme.example/claimable?q=%F4%8F%BF%BF",
        "/orgs/acme/domains/acme.example/claimable?q=%00%00",
        "/orgs/acme/domains/acme.example/claimable?cursor=%00",
        "/orgs/acme/domains/acme.example/claims?cursor=eyJ4IjoxfQ",
        "/orgs/acme/domains/b%C3%BCcher.example",
    ],
)
def test_garbage_in_domain_pages_is_never_a_500(acme, dns, owner, path):
    verified(acme[0], "acme.example", dns)
    assert owner.get(path).status_code in (200, 400, 404)


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/domains/%00/verify",
        "/api/v1/domains/acme.example/claimable?q=%F4%8F%BF%BF",
        "/api/v1/domains/acme.example/claimable?cursor=%FF",
        "/api/v1/domains/acme.example/claimable?limit=-1",
    ],
)
def test_garbage_in_domain_api_calls_is_never_a_500(api, acme, dns, path):
    verified(acme[0], "acme.example", dns)
    method = "POST" if path.endswith("verify") else "GET"
    assert api.open(method, path).status_code in (200, 404, 422)


def test_the_notice_period_is_0_to_30_days(acme, owner):
    response = post(owner, "/orgs/acme/domains/notice", {"notice_days": "31"})
    assert response.status_code == 200 and 'aria-invalid="true"' in response.get_data(as_text=True)
    assert post(owner, "/orgs/acme/domains/notice", {"notice_days": "-1"}).status_code == 200
    assert post(owner, "/orgs/acme/domains/notice", {"notice_days": "x"}).status_code == 200
    assert fresh(acme[0]).claim_notice_days == 0
    with pytest.raises(domains.InvalidDomain):
        domains.set_claim_notice(ACTOR, acme[0], 31)
    acme[0].claim_notice_days = 45
    with pytest.raises(sa.exc.IntegrityError):
        db.session.flush()


def test_removing_a_domain_drops_its_pending_claims(acme, dns, owner, make_participant):
    org = acme[0]
    org.claim_notice_days = 7
    domain = verified(org, "acme.example", dns)
    ana = make_participant(email="ana@acme.example")
    claims.claim_accounts(ACTOR, org, domain, [ana])
    response = post(owner, "/orgs/acme/domains/acme.example/remove")
    assert response.status_code == 303
    claim = db.session.scalar(sa.select(DomainClaim))
    assert claim.status == "dropped" and claim.end_reason == "domain_removed"
    assert claim.domain_id is None or fresh(claim).domain_id is None
    assert "withdrew the claim" in mails("claim_dropped", ana)[0].text_body
