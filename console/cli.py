"""Command-line administration: ``flask --app console <group> <command>``."""

from __future__ import annotations

import getpass
import signal
import time

import click
import sqlalchemy as sa
from flask import Flask
from flask import current_app
from flask.cli import AppGroup

from console.config import ConfigError
from console.config import parse_nameservers
from console.extensions import db
from console.models import AuditEvent
from console.models import Scope
from console.services import admins as admins_service
from console.services import audit as audit_service
from console.services import claims as claims_service
from console.services import demo as demo_service
from console.services import domains as domains_service
from console.services import mail as mail_service
from console.services import orgs as orgs_service
from console.services import participants as participants_service
from console.services import retention as retention_service
from console.services import rollups as rollups_service
from console.services import sso as sso_service
from console.services import tokens as tokens_service

demo = AppGroup("demo", help="Demo data.")
staff = AppGroup("staff", help="Platform staff accounts.")
org = AppGroup("org", help="Partner organizations.")
admin = AppGroup("admin", help="Administrators of partner organizations.")
participant = AppGroup("participant", help="Participant accounts.")
audit = AppGroup("audit", help="The audit trail.")
token = AppGroup("token", help="API tokens.")
outbox = AppGroup("outbox", help="The mail outbox.")
retention = AppGroup("retention", help="Data retention.")
domains = AppGroup("domains", help="Verified domains and the accounts claimed through them.")
sso = AppGroup("sso", help="Single sign-on through an org's OpenID Connect provider.")
reports = AppGroup("reports", help="Report rollups.")


def cli_actor() -> audit_service.Actor:
    """Return the actor that commands run as, named after the operating-system user."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return audit_service.Actor(type="cli", name=f"cli:{user}")


def _load_org(slug: str):  # type: ignore[no-untyped-def]
    found = orgs_service.find_org(slug)
    if found is None:
        raise click.ClickException(f"No org with the slug '{slug}'.")
    return found


@demo.command("seed")
@click.option(
    "--participants",
    default=1000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Members of the org 'demo'.",
)
@click.option(
    "--events-per-participant",
    default=30,
    show_default=True,
    type=click.IntRange(min=0),
    help="Activity events per demo member, on average.",
)
@click.option(
    "--seed",
    "seed_value",
    default=1,
    show_default=True,
    type=int,
    help="Random seed: the same seed builds the same world.",
)
@click.option(
    "--if-empty", is_flag=True, help="Do nothing (but print the sign-ins) if any org exists."
)
def demo_seed(
    participants: int, events_per_participant: int, seed_value: int, if_empty: bool
) -> None:
    """Build the demo world: orgs, administrators, participants and a year of activity."""
    if if_empty and demo_service.demo_exists():
        click.echo("The database already has data; nothing seeded.")
        _print_sign_ins(demo_service.sign_ins())
        return
    try:
        report = demo_service.seed(participants, events_per_participant, seed_value)
    except demo_service.DemoError as error:
        raise click.ClickException(str(error)) from None
    db.session.commit()
    click.echo(
        f"Seeded {len(report.orgs)} orgs ({', '.join(report.orgs)}), "
        f"{report.participants:,} participants ({report.demo_members:,} members of demo), "
        f"{report.memberships:,} program memberships, {report.relationships:,} relationships, "
        f"{report.events:,} activity events in {report.seconds:.1f} s "
        f"(rolled up into {report.report_days:,} report days)."
    )
    _print_sign_ins(report.sign_ins)


def _print_sign_ins(sign_ins: list[tuple[str, str, str]]) -> None:
    click.echo("Demo sign-ins (console at /login, participants at /account/login):")
    for who, email, password in sign_ins:
        if email:
            click.echo(f"  {who:<48} {email:<36} {password}")
        else:
            click.echo(f"  {who:<48} {'(none yet)':<36} {password}")


@staff.command("create")
@click.argument("email")
@click.option("--name")
@click.option(
    "--password", help="At least 12 characters. Without it the account cannot sign in yet."
)
def staff_create(email: str, name: str | None, password: str | None) -> None:
    """Create a platform staff account."""
    try:
        created = admins_service.create_staff(cli_actor(), email, name, password)
    except admins_service.AdminError as error:
        raise click.ClickException(str(error)) from None
    db.session.commit()
    click.echo(f"Created staff {created.email} (id {created.id}).")


@org.command("create")
@click.argument("slug")
@click.option("--name", required=True)
@click.option("--program", "programs", multiple=True, help="A program (cohort); repeat for more.")
@click.option("--time-zone", default="UTC", show_default=True)
def org_create(slug: str, name: str, programs: tuple[str, ...], time_zone: str) -> None:
    """Create a partner org with its programs."""
    try:
        created = orgs_service.create_org(cli_actor(), slug, name, list(programs), time_zone)
    except orgs_service.OrgError as error:
        raise click.ClickException(str(error)) from None
    db.session.commit()
    click.echo(f"Created org {created.slug} (id {created.id}).")
    for program in created.programs:
        click.echo(f"  program {program.name} (id {program.id})")


@admin.command("add")
@click.argument("email")
@click.option("--org", "slug", required=True)
@click.option("--role", required=True, type=click.Choice(["owner", "admin", "support", "analyst"]))
@click.option("--password")
@click.option("--name")
def admin_add(email: str, slug: str, role: str, password: str | None, name: str | None) -> None:
    """Give an administrator a role in an org, creating them if needed."""
    target = _load_org(slug)
    try:
        added = admins_service.add_admin(cli_actor(), target, email, role, name, password)
    except admins_service.AdminError as error:
        raise click.ClickException(str(error)) from None
    db.session.commit()
    click.echo(f"{added.email} is {role} of {target.slug} (admin id {added.id}).")


@participant.command("create")
@click.argument("email")
@click.option("--name", required=True)
@click.option("--password")
@click.option(
    "--role",
    default="entrepreneur",
    show_default=True,
    type=click.Choice(["mentor", "entrepreneur", "both"]),
)
@click.option("--org", "slug", help="Make the account a member of this org.")
@click.option("--program", help="The program (name or id) within --org.")
@click.option("--managed", is_flag=True, help="The org manages the account (needs --org).")
def participant_create(
    email: str,
    name: str,
    password: str | None,
    role: str,
    slug: str | None,
    program: str | None,
    managed: bool,
) -> None:
    """Create a participant account with a confirmed email."""
    if (program or managed) and not slug:
        raise click.ClickException("--program and --managed need --org.")
    target = _load_org(slug) if slug else None
    chosen = None
    if target is not None and program:
        chosen = orgs_service.find_program(target, program)
        if chosen is None:
            raise click.ClickException(f"{target.slug} has no program '{program}'.")
    try:
        created = participants_service.create_participant(
            cli_actor(),
            email,
            name,
            password=password,
            role=role,
            org=target,
            program=chosen,
            managed=managed,
        )
    except participants_service.ParticipantError as error:
        raise click.ClickException(str(error)) from None
    db.session.commit()
    where = f", member of {target.slug}" if target else ""
    click.echo(
        f"Created participant {created.email} (id {created.id}{where}"
        f"{', managed' if managed else ''})."
    )


@audit.command("verify")
@click.option("--org", "slug", help="Check one org's chain; by default every chain.")
def audit_verify(slug: str | None) -> None:
    """Check the audit trail's hash chains and name the first broken link."""
    if slug:
        chains = [str(_load_org(slug).id)]
    else:
        chains = list(db.session.scalars(sa.select(AuditEvent.chain).distinct()))
    broken = False
    for chain in sorted(chains):
        check = audit_service.verify_chain(chain)
        if check.broken_at is None:
            click.echo(f"chain {chain}: {check.events} events, intact")
        else:
            broken = True
            event = check.broken_at
            click.echo(
                f"chain {chain}: BROKEN at seq {event.seq} (event {event.id}, "
                f"{event.action} at {event.at.isoformat()}): {check.reason}"
            )
    if broken:
        raise SystemExit(1)


@token.command("create")
@click.option("--org", "slug", help="The org whose data the token reaches.")
@click.option("--platform", is_flag=True, help="A platform token (events:write), for no org.")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    help="Repeat for more: " + ", ".join(scope.value for scope in Scope) + ".",
)
@click.option("--expires-days", type=int, help="Days until it expires (1-3650); default never.")
@click.option("--name", help="What the token is for, as the audit trail names it.")
def token_create(
    slug: str | None,
    platform: bool,
    scopes: tuple[str, ...],
    expires_days: int | None,
    name: str | None,
) -> None:
    """Create an API token and print it once, alone on the last line."""
    if bool(slug) == platform:
        raise click.ClickException("Give either --org SLUG or --platform.")
    target = _load_org(slug) if slug else None
    try:
        created, secret = tokens_service.create_token(
            cli_actor(), target, list(scopes), name=name, expires_days=expires_days
        )
    except tokens_service.TokenError as error:
        raise click.ClickException(str(error)) from None
    db.session.commit()
    expires = created.expires_at.isoformat(timespec="seconds") if created.expires_at else "never"
    owner = f"org {target.slug}" if target else "the platform"
    click.echo(
        f"Created token '{created.name}' (id {created.id}) for {owner}, "
        f"scopes {', '.join(created.scopes)}, expires {expires}."
    )
    click.echo("Store it now: it is shown only this once. The token:")
    click.echo(secret)


@token.command("revoke")
@click.argument("token_id")
def token_revoke(token_id: str) -> None:
    """Revoke a token at once."""
    found = tokens_service.get_token(token_id)
    if found is None:
        raise click.ClickException(f"No token with the id '{token_id}'.")
    if found.revoked_at is not None:
        click.echo(f"Token {found.id} was already revoked at {found.revoked_at.isoformat()}.")
        return
    tokens_service.revoke_token(cli_actor(), found.org, found)
    db.session.commit()
    click.echo(f"Revoked token '{found.name}' (id {found.id}).")


@token.command("list")
@click.option("--org", "slug", help="The org whose tokens to list.")
@click.option("--platform", is_flag=True, help="List the platform tokens instead.")
def token_list(slug: str | None, platform: bool) -> None:
    """List tokens (never their secrets): id, name, scopes, dates and state."""
    if bool(slug) == platform:
        raise click.ClickException("Give either --org SLUG or --platform.")
    found = tokens_service.list_tokens(_load_org(slug) if slug else None)
    if not found:
        click.echo("No tokens.")
    for item in found:
        if item.revoked_at is not None:
            state = f"revoked {item.revoked_at:%Y-%m-%d}"
        elif not item.usable():
            state = "expired"
        else:
            state = "active"
        expires = f"{item.expires_at:%Y-%m-%d}" if item.expires_at else "never"
        used = f"{item.last_used_at:%Y-%m-%d %H:%M}" if item.last_used_at else "never"
        click.echo(
            f"{item.id}  {item.prefix}…  {item.name}  [{', '.join(item.scopes)}]  {state}, "
            f"created {item.created_at:%Y-%m-%d}, expires {expires}, last used {used}"
        )


@outbox.command("deliver")
@click.option("--loop", is_flag=True, help="Keep delivering until stopped (Ctrl-C).")
@click.option(
    "--interval",
    default=10.0,
    show_default=True,
    type=click.FloatRange(min=0.1),
    help="Seconds between rounds with --loop.",
)
def outbox_deliver(loop: bool, interval: float) -> None:
    """Send the mail that is due over SMTP (CONSOLE_MAIL_URL); failures retry with backoff."""
    url = current_app.config["MAIL_URL"]
    if not url:
        raise click.ClickException(
            "CONSOLE_MAIL_URL is not set, so mail stays in the outbox (staff read it at "
            "/staff/outbox). Set it to smtp://host:port to deliver."
        )
    try:
        server = mail_service.mail_server(url)
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Delivering to {server.host}:{server.port}{' until stopped' if loop else ''}.")
    # SIGTERM (from a process manager) stops the loop like Ctrl-C: between messages.
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler) if loop else None
    try:
        while True:
            _deliver_round(quiet=loop)
            if not loop:
                return
            time.sleep(interval)
    except KeyboardInterrupt:
        db.session.rollback()
        click.echo("Stopped.")
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _deliver_round(quiet: bool) -> None:
    batch = 100
    while True:
        report = mail_service.deliver_due(batch=batch)
        for message, outcome in report.outcomes:
            detail = f" ({message.last_error})" if outcome != "sent" and message.last_error else ""
            click.echo(
                f"  {outcome:<8} {message.id} {message.kind} to "
                f"{audit_service.mask_email(message.to_address)}{detail}"
            )
        handled = report.sent + report.retrying + report.failed
        if handled or not quiet:
            click.echo(f"Sent {report.sent}, retrying {report.retrying}, failed {report.failed}.")
        if handled < batch:
            return


@retention.command("apply")
@click.option("--dry-run", is_flag=True, help="Only count what would go.")
def retention_apply(dry_run: bool) -> None:
    """Delete or anonymise what is past its retention period (meant for a daily cron)."""
    report = retention_service.apply_retention(dry_run=dry_run)
    if not dry_run:
        db.session.commit()
    verb = "Would remove" if dry_run else "Removed"
    click.echo(
        f"{verb} {report.mail} delivered or failed messages, {report.links} spent links, "
        f"{report.requests} decided requests; "
        f"{'would anonymise' if dry_run else 'anonymised'} {len(report.anonymized)} accounts "
        "deactivated past retention."
    )
    for participant_id in report.anonymized:
        click.echo(f"  anonymised {participant_id}" if not dry_run else f"  due {participant_id}")


@domains.command("recheck")
def domains_recheck() -> None:
    """Re-check every verified and lapsed domain, then apply the claims whose notice is over."""
    try:
        parse_nameservers(current_app.config["DNS_NAMESERVERS"])
    except ConfigError as error:
        raise click.ClickException(str(error)) from None
    totals: dict[str, int] = {}
    released = 0
    ids = domains_service.due_for_recheck()
    for domain_id in ids:
        domain = domains_service.get_domain(domain_id)
        if domain is None:
            continue
        check = domains_service.recheck(domain)
        db.session.commit()
        released += check.released
        for event in [check.lookup.outcome, *check.events]:
            totals[event] = totals.get(event, 0) + 1
        events = f" -> {', '.join(check.events)}" if check.events else ""
        detail = f" ({check.lookup.detail})" if check.lookup.detail else ""
        click.echo(
            f"  {domain.domain} (org {domain.org.slug}): {check.lookup.outcome}{detail}, "
            f"{domain.status}{events}"
            + (f", {check.released} accounts released" if check.released else "")
        )
    click.echo(
        f"Checked {len(ids)} domains: {totals.get('found', 0)} found, "
        f"{sum(totals.get(k, 0) for k in ('nxdomain', 'no_record', 'wrong_value'))} missing, "
        f"{totals.get('timeout', 0) + totals.get('error', 0)} unanswered; "
        f"{totals.get('lapsed', 0)} lapsed, {totals.get('restored', 0)} restored, "
        f"{released} accounts released."
    )
    applied = {"effective": 0, "dropped": 0}
    while due := claims_service.due():
        for claim in due:
            outcome = claims_service.apply(audit_service.SYSTEM, claim)
            applied[outcome] += 1
            click.echo(f"  claim {claim.id} on {claim.domain} (org {claim.org.slug}): {outcome}")
        db.session.commit()
    click.echo(
        f"Claims past their notice period: {applied['effective']} took effect, "
        f"{applied['dropped']} dropped."
    )


@sso.command("set")
@click.option("--org", "slug", required=True)
@click.option(
    "--issuer", required=True, help="The IdP's issuer URL (discovery is fetched from it)."
)
@click.option("--client-id", required=True)
@click.option("--client-secret", required=True, help="Stored encrypted; never printed.")
@click.option(
    "--enforce/--no-enforce",
    default=None,
    help="Administrators must use SSO (break-glass owners excepted). Unchanged if not given.",
)
@click.option(
    "--default-role",
    type=click.Choice(["owner", "admin", "support", "analyst", "none"]),
    help="Role for people in no mapped group ('none': only mapped people). Unchanged if not given.",
)
@click.option("--map", "mappings", multiple=True, help="GROUP=ROLE; repeat for more.")
@click.option("--groups-claim", help="The claim (or dotted path) that carries groups.")
@click.option("--scopes", help="Space-separated scopes; openid is required.")
@click.option("--break-glass", "break_glass", multiple=True, help="An owner's email; repeat.")
@click.option("--enforce-participants/--no-enforce-participants", default=None)
def sso_set(
    slug: str,
    issuer: str,
    client_id: str,
    client_secret: str,
    enforce: bool | None,
    default_role: str | None,
    mappings: tuple[str, ...],
    groups_claim: str | None,
    scopes: str | None,
    break_glass: tuple[str, ...],
    enforce_participants: bool | None,
) -> None:
    """Create or replace an org's SSO connection (the issuer is discovered first)."""
    target = _load_org(slug)
    owners = {owner.email: owner for owner in domains_service.owners_of(target)}
    strangers = [email for email in break_glass if email.strip().lower() not in owners]
    if strangers:
        raise click.ClickException(f"Not an active owner of {slug}: {', '.join(strangers)}.")
    try:
        settings = sso_service.ConnectionSettings(
            issuer=issuer,
            client_id=client_id,
            client_secret=client_secret,
            scopes=scopes,
            groups_claim=groups_claim,
            role_mapping=sso_service.parse_role_mapping("\n".join(mappings)) if mappings else None,
            default_role=None if default_role in (None, "none") else default_role,
            keep_default_role=default_role is None,
            enforce_admins=enforce,
            enforce_participants=enforce_participants,
            break_glass=[owners[e.strip().lower()].id for e in break_glass]
            if break_glass
            else None,
        )
        connection = sso_service.save_connection(cli_actor(), target, settings)
    except sso_service.SettingsError as error:
        raise click.ClickException(f"{error.field or 'settings'}: {error.message}") from None
    db.session.commit()
    found = connection.discovery or {}
    named = sso_service.break_glass_owners(target)
    click.echo(f"Single sign-on for {target.slug} (connection id {connection.id}):")
    click.echo(f"  issuer          {connection.issuer}")
    click.echo(f"  client id       {connection.client_id}")
    click.echo("  client secret   stored encrypted")
    click.echo(f"  scopes          {connection.scopes}")
    click.echo(f"  groups claim    {connection.groups_claim}")
    for group, role in connection.role_mapping or []:
        click.echo(f"  group {group} -> {role}")
    click.echo(f"  default role    {connection.default_role or 'none (mapped groups only)'}")
    click.echo(f"  enforced        {'yes' if connection.enforce_admins else 'no'} (administrators)")
    click.echo(
        f"  enforced        {'yes' if connection.enforce_participants else 'no'} (participants)"
    )
    click.echo(f"  break-glass     {', '.join(o.email for o in named) or 'nobody'}")
    click.echo(f"  authorization   {found.get('authorization_endpoint')}")
    click.echo(f"  token           {found.get('token_endpoint')}")
    click.echo(f"  keys            {found.get('jwks_uri')}")
    click.echo(f"Register this redirect URI at the IdP: {sso_service.redirect_uri(target)}")
    if connection.enforce_admins and not named:
        click.echo(
            "Warning: SSO is enforced with no break-glass owner: if the IdP is down, nobody can "
            "sign in to this org with a password. Name one with --break-glass EMAIL.",
            err=True,
        )


@reports.command("rebuild")
def reports_rebuild() -> None:
    """Recompute every report rollup from the stored events, memberships and profiles."""
    report = rollups_service.rebuild()
    db.session.commit()
    click.echo(
        f"Rebuilt the report rollups from {report.events:,} events in {report.seconds:.1f} s: "
        f"{report.days:,} report days, {report.member_days:,} member days, "
        f"{report.scope_days:,} program days, {report.spans:,} membership spans, "
        f"{report.journeys:,} journeys."
    )


def register(app: Flask) -> None:
    """Add every command group to ``flask``."""
    groups = (
        demo,
        staff,
        org,
        admin,
        participant,
        audit,
        token,
        outbox,
        retention,
        domains,
        sso,
        reports,
    )
    for group in groups:
        app.cli.add_command(group)
    app.cli.add_command(reports)
