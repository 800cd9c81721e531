"""The customer's line on the display role: the last item and the running total while a
sale is rung up, then the total and the change. Texts in the device's language (gettext,
domain ``till``). No display configured: nothing is shown and nothing fails."""

from __future__ import annotations

import logging

from contracts.i18n import format_money
from contracts.i18n import gettext as _
from drivers.errors import DriverError
from drivers.protocols import Display, DisplayMessage, DisplayStyle

log = logging.getLogger(__name__)


class CustomerDisplay:
    def __init__(self, display: Display | None) -> None:
        self.display = display

    def _show(self, text: str, style: DisplayStyle = DisplayStyle.INFO,
              hold_s: float = 60.0) -> None:
        if self.display is None:
            return
        try:
            self.display.show(DisplayMessage(text[:80], style, hold_s))
        except (DriverError, OSError) as exc:
            log.warning("customer display: %s", exc)  # the sale goes on without it

    def item(self, name: str, total_cents: int) -> None:
        self._show(_("%(item)s | Total %(total)s") % {"item": name[:40],
                                                      "total": format_money(total_cents)})

    def paid(self, total_cents: int, change_cents: int) -> None:
        text = _("Total %(total)s") % {"total": format_money(total_cents)}
        if change_cents:
            text += " | " + _("Change %(change)s") % {"change": format_money(change_cents)}
        self._show(text + " | " + _("Thank you"), DisplayStyle.INFO, 10.0)
