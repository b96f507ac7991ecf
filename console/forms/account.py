"""The participant's forms: sign-up, sign-in, passwords, email, profile, release."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any
from urllib.parse import urlsplit

from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField
from wtforms import Field
from wtforms import IntegerField
from wtforms import PasswordField
from wtforms import SelectChoice
from wtforms import SelectField
from wtforms import StringField
from wtforms import TelField
from wtforms import TextAreaField
from wtforms import URLField
from wtforms.validators import DataRequired
from wtforms.validators import Email
from wtforms.validators import EqualTo
from wtforms.validators import Length
from wtforms.validators import NumberRange
from wtforms.validators import Optional
from wtforms.validators import Regexp
from wtforms.validators import ValidationError

from console.models import Participant
from console.models.participants import PROFILE_FIELDS
from console.services.auth import MAX_PASSWORD
from console.services.auth import MIN_PASSWORD

# Codes that Babel lists as territories but ISO 3166-1 does not assign to a country.
NOT_COUNTRIES = frozenset(
    {"AC", "CP", "CQ", "DG", "EA", "EU", "EZ", "IC", "QO", "TA", "UN", "XA", "XB", "XK", "ZZ"}
)
BUSINESS_STAGES = [
    SelectChoice("", _l("Not given")),
    SelectChoice("idea", _l("Idea")),
    SelectChoice("startup", _l("Startup")),
    SelectChoice("growing", _l("Growing")),
    SelectChoice("established", _l("Established")),
]
ROLES = [
    SelectChoice("entrepreneur", _l("Entrepreneur")),
    SelectChoice("mentor", _l("Mentor")),
    SelectChoice("both", _l("Mentor and entrepreneur")),
]


def _email() -> EmailField:
    return EmailField(
        _l("Email"),
        validators=[DataRequired(), Email(check_deliverability=False), Length(max=320)],
        render_kw={"autocomplete": "email"},
    )


def _new_password(label: Any) -> PasswordField:
    return PasswordField(
        label,
        validators=[
            DataRequired(),
            Length(
                min=MIN_PASSWORD,
                max=MAX_PASSWORD,
                message=_l("A password needs %(min)d to %(max)d characters."),
            ),
        ],
        render_kw={"autocomplete": "new-password"},
    )


def _password_confirm() -> PasswordField:
    return PasswordField(
        _l("New password, again"),
        validators=[
            DataRequired(),
            EqualTo("password", message=_l("The two passwords are not the same.")),
        ],
        render_kw={"autocomplete": "new-password"},
    )


class SignInForm(FlaskForm):
    email = EmailField(
        _l("Email"),
        validators=[DataRequired(), Email(check_deliverability=False), Length(max=320)],
        render_kw={"autocomplete": "username", "autofocus": True},
    )
    password = PasswordField(
        _l("Password"),
        validators=[DataRequired(), Length(max=MAX_PASSWORD)],
        render_kw={"autocomplete": "current-password"},
    )


class RegisterForm(FlaskForm):
    email = _email()
    name = StringField(
        _l("Your name"),
        validators=[DataRequired(), Length(max=200)],
        render_kw={"autocomplete": "name"},
    )
    password = _new_password(_l("Password"))


class ForgotPasswordForm(FlaskForm):
    email = _email()


class SetPasswordForm(FlaskForm):
    password = _new_password(_l("New password"))
    password_confirm = _password_confirm()


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(
        _l("Current password"),
        validators=[DataRequired(), Length(max=MAX_PASSWORD)],
        render_kw={"autocomplete": "current-password"},
    )
    password = _new_password(_l("New password"))
    password_confirm = _password_confirm()


class ChangeEmailForm(FlaskForm):
    email = EmailField(
        _l("New email"),
        validators=[DataRequired(), Email(check_deliverability=False), Length(max=320)],
        render_kw={"autocomplete": "email"},
    )


class AskReleaseForm(FlaskForm):
    message = TextAreaField(
        _l("Why (optional)"),
        validators=[Optional(), Length(max=1000)],
        render_kw={"rows": 4},
    )


class WebAddress:
    """Accept only http:// and https:// addresses with a host name."""

    def __call__(self, form: FlaskForm, field: Field) -> None:
        value = (field.data or "").strip()
        if not value:
            return
        parts = urlsplit(value)
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or any(c.isspace() for c in value)
        ):
            raise ValidationError(_("Enter a web address starting with https:// or http://."))


class YearRange:
    """Accept years between ``earliest(this_year)`` and ``latest(this_year)``."""

    def __init__(self, earliest: Callable[[int], int], latest: Callable[[int], int]) -> None:
        self.earliest = earliest
        self.latest = latest

    def __call__(self, form: FlaskForm, field: Field) -> None:
        if field.data is None:
            return
        this_year = date.today().year
        low, high = self.earliest(this_year), self.latest(this_year)
        if not low <= field.data <= high:
            raise ValidationError(
                _("Enter a year from %(low)s to %(high)s.", low=str(low), high=str(high))
            )


def _text(label: Any, length: int, **render_kw: Any) -> StringField:
    return StringField(
        label, validators=[Optional(), Length(max=length)], render_kw=render_kw or None
    )


def _web(label: Any) -> URLField:
    return URLField(
        label,
        validators=[Optional(), Length(max=500), WebAddress()],
        render_kw={"placeholder": "https://"},
    )


def _count(label: Any, high: int) -> IntegerField:
    return IntegerField(
        label,
        validators=[
            Optional(),
            NumberRange(
                min=0, max=high, message=_l("Enter a whole number from %(min)s to %(max)s.")
            ),
        ],
        render_kw={"min": 0, "max": high, "inputmode": "numeric"},
    )


class EditProfileForm(FlaskForm):
    name = StringField(
        _l("Name"), validators=[DataRequired(), Length(max=200)], render_kw={"autocomplete": "name"}
    )
    role = SelectField(_l("I take part as"), choices=ROLES)
    headline = _text(_l("Headline"), 200)
    bio = TextAreaField(
        _l("About"), validators=[Optional(), Length(max=5000)], render_kw={"rows": 5}
    )
    city = _text(_l("City"), 100)
    country = SelectField(_l("Country"), choices=[])
    languages = _text(_l("Languages"), 200)
    website = _web(_l("Website"))
    linkedin_url = _web(_l("LinkedIn"))
    expertise = _text(_l("Expertise"), 500)
    mentor_industries = _text(_l("Industries"), 500)
    years_experience = _count(_l("Years of experience"), 80)
    mentee_capacity = _count(_l("Mentees at a time"), 50)
    business_name = _text(_l("Business name"), 200)
    business_stage = SelectField(_l("Stage"), choices=BUSINESS_STAGES, validators=[Optional()])
    business_industry = _text(_l("Industry"), 100)
    founded_year = IntegerField(
        _l("Founded"),
        validators=[Optional(), YearRange(lambda _now: 1800, lambda now: now)],
        render_kw={"inputmode": "numeric"},
    )
    employees = _count(_l("Employees"), 10_000_000)
    business_website = _web(_l("Business website"))
    needs = _text(_l("Looking for help with"), 500)
    phone = TelField(
        _l("Phone"),
        validators=[
            Optional(),
            Length(max=40),
            Regexp(
                r"^\+?[0-9][0-9 ()./-]{3,39}$",
                message=_l("Enter digits, spaces and + ( ) - . / only."),
            ),
        ],
        render_kw={"autocomplete": "tel"},
    )
    birth_year = IntegerField(
        _l("Year of birth"),
        validators=[Optional(), YearRange(lambda now: now - 120, lambda now: now - 13)],
        render_kw={"inputmode": "numeric"},
    )
    gender = _text(_l("Gender"), 40)
    postal_code = StringField(
        _l("Postal code"),
        validators=[
            Optional(),
            Length(max=20),
            Regexp(
                r"^[A-Za-z0-9][A-Za-z0-9 -]*$", message=_l("Enter letters, digits, spaces and -.")
            ),
        ],
        render_kw={"autocomplete": "postal-code"},
    )
    education_level = _text(_l("Education"), 40)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.country.choices = country_choices()


EDITABLE_FIELDS = ("name", "role", *PROFILE_FIELDS)


def country_choices() -> list[SelectChoice]:
    """Return ISO 3166-1 alpha-2 codes with their names in the current locale, by name."""
    territories = get_locale().territories
    countries = sorted(
        (
            SelectChoice(code, name)
            for code, name in territories.items()
            if len(code) == 2 and code.isalpha() and code not in NOT_COUNTRIES
        ),
        key=lambda choice: choice.label,
    )
    return [SelectChoice("", _("Not given")), *countries]


def profile_data(participant: Participant) -> dict[str, Any]:
    """Return the participant's current values, to fill the profile form."""
    data: dict[str, Any] = {"name": participant.name, "role": participant.role}
    for field in PROFILE_FIELDS:
        value = getattr(participant.profile, field) if participant.profile else None
        data[field] = "" if value is None and field in ("country", "business_stage") else value
    return data
