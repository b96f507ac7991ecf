"""Mail: rendered and queued in the action's transaction, delivered over SMTP afterwards."""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from datetime import timedelta
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any
from urllib.parse import unquote
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import current_app
from flask import render_template

from console.extensions import db
from console.models import MailStatus
from console.models import Org
from console.models import OutboxMessage
from console.models import Participant
from console.models.base import utcnow
from console.pagination import Page
from console.pagination import SortKey
from console.pagination import paginate
from console.services import audit

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
MAX_BACKOFF = timedelta(hours=6)
OUTBOX_SORT = SortKey("created", OutboxMessage.created_at, OutboxMessage.id, descending=True)


def external_url(endpoint: str, **values: Any) -> str:
    """Return an absolute URL on the configured base URL, never the request's Host."""
    adapter = current_app.url_map.bind("console.invalid", script_name="/")
    path = adapter.build(endpoint, values)
    return current_app.config["BASE_URL"] + path


def queue(
    kind: str,
    to: str,
    *,
    org: Org | None = None,
    participant: Participant | None = None,
    **context: Any,
) -> OutboxMessage:
    """Render ``templates/mail/<kind>.{txt,html}`` and add it to the outbox.

    The subject is the text template's first line (``Subject: …``).
    """
    context = {"org": org, "participant": participant, **context}
    text = render_template(f"mail/{kind}.txt", **context)
    subject_line, _, body = text.partition("\n")
    if not subject_line.startswith("Subject: "):
        raise ValueError(f"mail/{kind}.txt must start with 'Subject: '")
    message = OutboxMessage(
        kind=kind,
        to_address=to,
        subject=subject_line.removeprefix("Subject: ").strip(),
        text_body=body.lstrip("\n"),
        html_body=render_template(f"mail/{kind}.html", **context),
        org_id=org.id if org is not None else None,
        participant_id=participant.id if participant is not None else None,
    )
    db.session.add(message)
    db.session.flush()
    return message


@dataclass
class DeliveryReport:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    # (message, "sent" | "retrying" | "failed") in the order they were handled.
    outcomes: list[tuple[OutboxMessage, str]] = field(default_factory=list)

    def note(self, message: OutboxMessage) -> None:
        """Count ``message`` under the status it ended this round with."""
        outcome = {MailStatus.SENT: "sent", MailStatus.FAILED: "failed"}.get(
            message.status, "retrying"
        )
        setattr(self, outcome, getattr(self, outcome) + 1)
        self.outcomes.append((message, outcome))


@dataclass(frozen=True)
class MailServer:
    host: str
    port: int
    tls: str  # "none", "starttls" or "ssl"
    username: str | None
    password: str | None


def mail_server(url: str) -> MailServer:
    """Parse ``smtp://[user:pass@]host:port`` (``smtp+starttls://``, ``smtps://`` for TLS)."""
    parts = urlsplit(url)
    schemes = {"smtp": "none", "smtp+starttls": "starttls", "smtps": "ssl"}
    if parts.scheme not in schemes or not parts.hostname:
        raise ValueError(f"CONSOLE_MAIL_URL must look like smtp://host:port, not {url!r}")
    default_port = {"none": 25, "starttls": 587, "ssl": 465}[schemes[parts.scheme]]
    return MailServer(
        host=parts.hostname,
        port=parts.port or default_port,
        tls=schemes[parts.scheme],
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def deliver_due(batch: int = 100, now: datetime | None = None) -> DeliveryReport:
    """Send the pending messages that are due; failures retry later with backoff.

    Each message is committed as soon as its fate is known, so a crash never
    sends one twice or loses one.
    """
    url = current_app.config["MAIL_URL"]
    report = DeliveryReport()
    if not url:
        return report
    server = mail_server(url)
    now = now or utcnow()
    due = db.session.scalars(
        sa.select(OutboxMessage)
        .where(OutboxMessage.status == MailStatus.PENDING, OutboxMessage.next_attempt_at <= now)
        .order_by(OutboxMessage.next_attempt_at)
        .limit(batch)
        # Several delivery loops may run: each takes messages no other one holds.
        .with_for_update(skip_locked=True)
    ).all()
    if not due:
        db.session.commit()
        return report
    try:
        connection = _connect(server)
    except (OSError, smtplib.SMTPException) as error:
        for message in due:
            _retry(message, f"cannot reach the mail server: {error}", now)
            report.note(message)
        db.session.commit()
        return report
    with connection:
        for message in due:
            try:
                connection.send_message(_email(message))
            except smtplib.SMTPRecipientsRefused as error:
                # 5xx is the server's final word on the address; 4xx (mailbox busy,
                # greylisting) asks us to come back later.
                if all(code >= 500 for code, _text in error.recipients.values()):
                    message.status = MailStatus.FAILED
                    message.attempts += 1
                    message.last_error = f"refused: {error.recipients}"[:500]
                else:
                    _retry(message, f"deferred: {error.recipients}", now)
            except (OSError, smtplib.SMTPException) as error:
                _retry(message, str(error), now)
            else:
                message.status = MailStatus.SENT
                message.attempts += 1
                message.sent_at = utcnow()
                message.last_error = None
            report.note(message)
            db.session.commit()
    return report


def _connect(server: MailServer) -> smtplib.SMTP:
    timeout = 15
    if server.tls == "ssl":
        connection: smtplib.SMTP = smtplib.SMTP_SSL(
            server.host, server.port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        connection = smtplib.SMTP(server.host, server.port, timeout=timeout)
        if server.tls == "starttls":
            connection.starttls(context=ssl.create_default_context())
    if server.username:
        connection.login(server.username, server.password or "")
    return connection


def _retry(message: OutboxMessage, error: str, now: datetime) -> None:
    message.attempts += 1
    message.last_error = error[:500]
    if message.attempts >= MAX_ATTEMPTS:
        message.status = MailStatus.FAILED
        return
    message.next_attempt_at = now + min(timedelta(minutes=2**message.attempts), MAX_BACKOFF)


def _email(message: OutboxMessage) -> EmailMessage:
    email = EmailMessage()
    email["From"] = current_app.config["MAIL_FROM"]
    email["To"] = message.to_address
    email["Subject"] = message.subject
    email["Message-ID"] = make_msgid(idstring=str(message.id), domain="partner-console")
    email.set_content(message.text_body)
    email.add_alternative(message.html_body, subtype="html")
    return email


# -- the outbox as staff read it ---------------------------------------------------------


def outbox_page(cursor: str | None, limit: int) -> Page:
    """Return one page of the outbox, newest first."""
    return paginate(
        sa.select(OutboxMessage),
        OUTBOX_SORT,
        cursor,
        limit,
        key_of=lambda row: (row.OutboxMessage.created_at, row.OutboxMessage.id),
    )


def read_message(actor: Any, message: OutboxMessage) -> OutboxMessage:
    """Record that ``actor`` read a message's body; the recipient sees it in their trail."""
    target = ("participant", message.participant_id) if message.participant_id else message
    audit.record(
        actor,
        "outbox.message_read",
        target=target,
        details={"message": str(message.id), "kind": message.kind},
    )
    return message
