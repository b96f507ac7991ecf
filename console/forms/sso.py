"""Forms for an org's single sign-on connection."""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField
from wtforms import EmailField
from wtforms import PasswordField
from wtforms import SelectChoice
from wtforms import SelectField
from wtforms import SelectMultipleField
from wtforms import StringField
from wtforms import TextAreaField
from wtforms import ValidationError
from wtforms.validators import DataRequired
from wtforms.validators import Email
from wtforms.validators import Length
from wtforms.validators import Optional
from wtforms.widgets import CheckboxInput
from wtforms.widgets import ListWidget

from console.models.sso import DEFAULT_GROUPS_CLAIM
from console.models.sso import DEFAULT_SCOPES
from console.services import sso


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class ConnectionForm(FlaskForm):
    issuer = StringField(
        _l("Issuer URL"),
        validators=[DataRequired(), Length(max=500)],
        render_kw={
            "placeholder": "https://login.example.com/realms/acme",
            "autocomplete": "off",
            "spellcheck": "false",
        },
    )
    client_id = StringField(
        _l("Client id"),
        validators=[DataRequired(), Length(max=255)],
        render_kw={"autocomplete": "off", "spellcheck": "false"},
    )
    client_secret = PasswordField(
        _l("Client secret"),
        validators=[Optional(), Length(max=2000)],
        render_kw={"autocomplete": "new-password"},
    )
    scopes = StringField(
        _l("Scopes"),
        default=DEFAULT_SCOPES,
        validators=[DataRequired(), Length(max=500)],
        render_kw={"spellcheck": "false"},
    )
    groups_claim = StringField(
        _l("Claim that carries groups"),
        default=DEFAULT_GROUPS_CLAIM,
        validators=[DataRequired(), Length(max=200)],
        render_kw={"spellcheck": "false"},
    )
    role_mapping = TextAreaField(
        _l("Groups and the roles they give"),
        validators=[Length(max=20000)],
        render_kw={
            "rows": 5,
            "spellcheck": "false",
            "placeholder": "console-owners = owner\nconsole-support = support",
        },
    )
    default_role = SelectField(
        _l("Role for people in no mapped group"),
        choices=[
            SelectChoice("", _l("None: only people in a mapped group get in")),
            SelectChoice("analyst", _l("Analyst")),
            SelectChoice("support", _l("Support")),
            SelectChoice("admin", _l("Admin")),
            SelectChoice("owner", _l("Owner")),
        ],
        default="",
    )
    enforce_admins = BooleanField(_l("Administrators must sign in through single sign-on"))
    break_glass = MultiCheckboxField(
        _l("Break-glass owners (may still use their password)"), choices=[]
    )
    enforce_participants = BooleanField(
        _l("Participants this organization manages must sign in through single sign-on")
    )

    def validate_scopes(self, field: Any) -> None:
        try:
            field.data = sso.parse_scopes(field.data)
        except sso.SettingsError as error:
            raise ValidationError(error.message) from None

    def validate_role_mapping(self, field: Any) -> None:
        try:
            self.mapping = sso.parse_role_mapping(field.data)
        except sso.MappingError as error:
            raise ValidationError(error.message) from None

    def validate_break_glass(self, field: Any) -> None:
        if self.enforce_admins.data and not field.data:
            raise ValidationError(
                _l(
                    "Name at least one break-glass owner: if the identity provider is down, "
                    "they are the only ones who can still sign in."
                )
            )


class SsoSignInForm(FlaskForm):
    """The email of a participant who asks to sign in through their organization's SSO."""

    email = EmailField(
        _l("Email"),
        validators=[DataRequired(), Email(check_deliverability=False), Length(max=320)],
    )
