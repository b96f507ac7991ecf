"""Forms of the reports area."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import IntegerField
from wtforms.validators import InputRequired
from wtforms.validators import NumberRange

from console.services.reports import THRESHOLD_RANGE


class ChangeThresholdForm(FlaskForm):
    threshold = IntegerField(
        _l("Suppress cells counting fewer than"),
        validators=[
            InputRequired(),
            NumberRange(
                *THRESHOLD_RANGE,
                message=_l("Use a whole number from %(min)s to %(max)s."),
            ),
        ],
    )
