"""Forms for acting on a participant from the console."""

from __future__ import annotations

import re
from datetime import date
from urllib.parse import urlsplit

from babel import Locale
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField
from wtforms import EmailField
from wtforms import Field
from wtforms import IntegerField
from wtforms import SelectField
from wtforms import StringField
from wtforms import TextAreaField
from wtforms.validators import DataRequired
from wtforms.validators import Email
from wtforms.validators import Length
from wtforms.validators import NumberRange
from wtforms.validators import Optional
from wtforms.validators import ValidationError

# Region codes that are not countries (Babel lists them among territories).
_NOT_COUNTRIES = {"EU", "EZ", "UN", "QO", "ZZ", "XA", "XB", "XK"}
_PHONE = re.compile(r"^\+?[0-9 ()./-]{6,40}$")


def country_choices() -> list[tuple[str, str]]:
    """Return ISO 3166-1 alpha-2 codes with English names, sorted by name."""
    territories = Locale("en").territories
    countries = [
        (code, name)
        for code, name in territories.items()
        if len(code) == 2 and code.isalpha() and code not in _NOT_COUNTRIES
    ]
    return [("", "—")] + sorted(countries, key=lambda pair: pair[1])


def http_url(form: FlaskForm, field: Field) -> None:
    """Accept only absolute http(s) URLs with a host (no javascript:, data:, …)."""
    if not field.data:
        return
    parts = urlsplit(field.data.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or "." not in parts.netloc:
        raise ValidationError(_l("Enter a full web address starting with https://"))


def phone_number(form: FlaskForm, field: Field) -> None:
    if field.data and not _PHONE.match(field.data.strip()):
        raise ValidationError(_l("Use digits, spaces and + ( ) - only."))


def _year_range(low: int, high_offset: int = 0) -> NumberRange:
    return NumberRange(min=low, max=date.today().year - high_offset)


class EditProfileForm(FlaskForm):
    """Every profile field, validated as the field demands."""

    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    role = SelectField(
        _l("Role"),
        choices=[
            ("entrepreneur", _l("Entrepreneur")),
            ("mentor", _l("Mentor")),
            ("both", _l("Mentor and entrepreneur")),
        ],
    )
    headline = StringField(_l("Headline"), validators=[Optional(), Length(max=200)])
    bio = TextAreaField(_l("About"), validators=[Optional(), Length(max=4000)])
    city = StringField(_l("City"), validators=[Optional(), Length(max=100)])
    country = SelectField(_l("Country"), choices=country_choices(), validators=[Optional()])
    languages = StringField(_l("Languages"), validators=[Optional(), Length(max=200)])
    website = StringField(_l("Website"), validators=[Optional(), Length(max=500), http_url])
    linkedin_url = StringField(_l("LinkedIn"), validators=[Optional(), Length(max=500), http_url])
    expertise = StringField(_l("Expertise"), validators=[Optional(), Length(max=500)])
    mentor_industries = StringField(_l("Industries"), validators=[Optional(), Length(max=500)])
    years_experience = IntegerField(
        _l("Years of experience"), validators=[Optional(), NumberRange(min=0, max=80)]
    )
    mentee_capacity = IntegerField(
        _l("Mentees at a time"), validators=[Optional(), NumberRange(min=0, max=50)]
    )
    business_name = StringField(_l("Business name"), validators=[Optional(), Length(max=200)])
    business_stage = SelectField(
        _l("Stage"),
        choices=[
            ("", "—"),
            ("idea", _l("Idea")),
            ("startup", _l("Startup")),
            ("growing", _l("Growing")),
            ("established", _l("Established")),
        ],
        validators=[Optional()],
    )
    business_industry = StringField(_l("Industry"), validators=[Optional(), Length(max=100)])
    founded_year = IntegerField(_l("Founded"), validators=[Optional(), _year_range(1800)])
    employees = IntegerField(
        _l("Employees"), validators=[Optional(), NumberRange(min=0, max=1_000_000)]
    )
    business_website = StringField(
        _l("Business website"), validators=[Optional(), Length(max=500), http_url]
    )
    needs = StringField(_l("Looking for help with"), validators=[Optional(), Length(max=500)])
    phone = StringField(_l("Phone"), validators=[Optional(), Length(max=40), phone_number])
    birth_year = IntegerField(_l("Year of birth"), validators=[Optional(), _year_range(1900, 13)])
    gender = StringField(_l("Gender"), validators=[Optional(), Length(max=40)])
    postal_code = StringField(_l("Postal code"), validators=[Optional(), Length(max=20)])
    education_level = StringField(_l("Education"), validators=[Optional(), Length(max=40)])

    def changes(self) -> dict[str, object]:
        """Return the submitted values keyed by field name (CSRF token left out)."""
        return {
            name: (field.data if field.data != "" else None)
            for name, field in self._fields.items()
            if name != "csrf_token"
        }


class SuspendForm(FlaskForm):
    reason = TextAreaField(
        _l("Reason (the participant is told)"),
        validators=[DataRequired(), Length(max=500)],
    )
    until = DateField(_l("Suspended until (optional, last day included)"), validators=[Optional()])

    def validate_until(self, field: Field) -> None:
        if field.data and field.data < date.today():
            raise ValidationError(_l("Choose today or a later day."))


class ChangeEmailForm(FlaskForm):
    email = EmailField(
        _l("New email"),
        validators=[DataRequired(), Email(check_deliverability=False), Length(max=320)],
    )


class EraseForm(FlaskForm):
    confirmation = StringField(
        _l("Type the account's email address to confirm"),
        validators=[DataRequired(), Length(max=320)],
    )


class DecisionForm(FlaskForm):
    note = StringField(
        _l("Note to the participant (optional)"), validators=[Optional(), Length(max=500)]
    )
