"""Forms for an org's domains and claims, and for staff verifying a domain by hand."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField
from wtforms import IntegerField
from wtforms import StringField
from wtforms import TextAreaField
from wtforms.validators import DataRequired
from wtforms.validators import InputRequired
from wtforms.validators import Length
from wtforms.validators import NumberRange


class AddDomainForm(FlaskForm):
    domain = StringField(
        _l("Domain"),
        validators=[DataRequired(), Length(max=300)],
        render_kw={"placeholder": "acme.org", "autocomplete": "off", "spellcheck": "false"},
    )


class NoticeForm(FlaskForm):
    notice_days = IntegerField(
        _l("Notice before a claim takes effect (days)"),
        validators=[InputRequired(), NumberRange(min=0, max=30)],
        render_kw={"min": 0, "max": 30},
    )


class DomainSettingsForm(FlaskForm):
    include_subdomains = BooleanField(_l("Include subdomains (such as people@sales.acme.org)"))
    auto_claim = BooleanField(_l("Claim new sign-ups automatically"))


class VerifyByHandForm(FlaskForm):
    reason = TextAreaField(
        _l("Why the domain is verified without DNS (recorded in the org's audit trail)"),
        validators=[DataRequired(), Length(max=500)],
    )
