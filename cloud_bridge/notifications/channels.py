"""The two roles a notification back-end plays, and how a delivery can fail.

A back-end raises ``DeliveryDeferred`` when trying again later may work (the server is
down, a 4xx SMTP reply, HTTP 429/5xx) and ``DeliveryRefused`` when it never will (an
address the server rejects with 5xx, a provider's 4xx): the outbox retries the first and
keeps the second aside with its reason.
"""

from __future__ import annotations

from typing import Protocol

from cloud_bridge.errors import BridgeError


class NotificationError(BridgeError):
    """A notification could not be delivered."""


class DeliveryDeferred(NotificationError):
    """Not delivered now; worth trying again later."""


class DeliveryRefused(NotificationError):
    """Refused for good: trying again will not help. The message says why."""


class Mailer(Protocol):
    def send(self, recipient: str, subject: str, body: str,
             unsubscribe_url: str | None = None) -> None: ...


class SmsSender(Protocol):
    def send(self, recipient: str, text: str) -> None: ...
