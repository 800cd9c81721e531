"""The timesheet's alerts (timesheet.py writes them in English, as the JSON API and the
machine CSV carry them) in the reader's language on the pages and printouts."""

from __future__ import annotations

import re
from collections.abc import Callable

from cloud_bridge.attendance.labels import PUNCH_NAMES
from contracts.i18n import N_, format_number
from contracts.i18n import gettext as _

_PARTS = {"break": N_("break"), "official trip": N_("official trip"),
          "private leave": N_("private leave")}


def _hours(text: str) -> str:
    return format_number(float(text))


def _punch(kind: str) -> str:
    return _(PUNCH_NAMES[kind]) if kind in PUNCH_NAMES else kind


_RULES: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    (re.compile(r"^departure ([\d.]+) h after the arrival: check the record$"),
     lambda m: _("departure %(hours)s h after the arrival: check the record")
     % {"hours": _hours(m[1])}),
    (re.compile(r"^missing departure \(a new arrival came at (.+)\)$"),
     lambda m: _("missing departure (a new arrival came at %(when)s)") % {"when": m[1]}),
    (re.compile(r"^missing departure \(none within ([\d.]+) h of the arrival\)$"),
     lambda m: _("missing departure (none within %(hours)s h of the arrival)")
     % {"hours": _hours(m[1])}),
    (re.compile(r"^(\w+) without an arrival: ignored$"),
     lambda m: _("%(punch)s without an arrival: ignored") % {"punch": _punch(m[1])}),
    (re.compile(r"^(\w+) without its start$"),
     lambda m: _("%(punch)s without its start") % {"punch": _punch(m[1])}),
    (re.compile(r"^(break|official trip|private leave) not ended before the departure$"),
     lambda m: _("%(part)s not ended before the departure") % {"part": _(_PARTS[m[1]])}),
)


def alert_text(text: str) -> str:
    """The alert translated; an alert this list does not know is shown as it is."""
    for pattern, translate in _RULES:
        if found := pattern.match(text):
            return translate(found)
    return text
