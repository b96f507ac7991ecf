"""Forms for acting on a participant from the console."""

from __future__ import annotations

from datetime import date

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField
from wtforms import EmailField
from wtforms import Field
from wtforms import StringField
from wtforms import TextAreaField
from wtforms.validators import DataRequired
from wtforms.validators import Email
from wtforms.validators import Length
from wtforms.validators import Optional
from wtforms.validators import ValidationError


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
