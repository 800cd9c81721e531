"""A form's validation errors as one message per field, in the reader's language.

Forms are pydantic models (the server is the judge; the limits are also shown in the
form). Pydantic's own texts are for developers ("Input should be a valid integer"), so
each error type gets a message a clerk can act on, with the limit in it. A validator's
own ``ValueError`` text is used as it is: write it with ``gettext`` so it is translated.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from contracts.i18n import gettext as _
from contracts.i18n import ngettext

FormT = TypeVar("FormT", bound=BaseModel)
FieldErrors = dict[str, str]


def _limit(ctx: Mapping[str, Any], key: str) -> str:
    return str(ctx.get(key, ""))


def message_for(error: ErrorDetails) -> str:
    kind = error["type"]
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    if kind == "missing" or (kind == "string_too_short" and ctx.get("min_length") == 1):
        return _("Fill this in.")
    if kind == "string_too_short":
        n = int(ctx.get("min_length", 0))
        return ngettext("Enter at least %(n)d character.", "Enter at least %(n)d characters.",
                        n) % {"n": n}
    if kind == "string_too_long":
        n = int(ctx.get("max_length", 0))
        return ngettext("Enter at most %(n)d character.", "Enter at most %(n)d characters.",
                        n) % {"n": n}
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return _("Enter a whole number, for example 30.")
    if kind in ("float_parsing", "float_type", "decimal_parsing", "decimal_type"):
        return _("Enter a number, for example 12,50.")
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        return _bound_message(kind, ctx)
    if kind in ("date_parsing", "date_type", "date_from_datetime_parsing"):
        return _("Enter a date as day. month. year, for example 3. 12. 2026.")
    if kind in ("bool_parsing", "bool_type"):
        return _("Choose yes or no.")
    if kind in ("literal_error", "enum"):
        return _("Choose one of the offered options.")
    if kind == "string_pattern_mismatch":
        return _("This format is not accepted; see the hint below the field.")
    if kind == "value_error":
        return str(ctx.get("error", "")) or _("This value is not accepted.")
    return _("This value is not accepted.")


def _bound_message(kind: str, ctx: Mapping[str, Any]) -> str:
    if kind == "greater_than_equal":
        return _("Enter %(n)s or more.") % {"n": _limit(ctx, "ge")}
    if kind == "greater_than":
        return _("Enter more than %(n)s.") % {"n": _limit(ctx, "gt")}
    if kind == "less_than_equal":
        return _("Enter %(n)s or less.") % {"n": _limit(ctx, "le")}
    return _("Enter less than %(n)s.") % {"n": _limit(ctx, "lt")}


def field_errors(exc: ValidationError) -> FieldErrors:
    """The first error of each field, keyed by the form field's name."""
    errors: FieldErrors = {}
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else "__all__"
        errors.setdefault(name, message_for(error))
    return errors


def validate_form(model: type[FormT], data: Mapping[str, Any]
                  ) -> tuple[FormT | None, FieldErrors]:
    """The model, or None and the messages to show beside the fields."""
    try:
        return model.model_validate(dict(data)), {}
    except ValidationError as exc:
        return None, field_errors(exc)
