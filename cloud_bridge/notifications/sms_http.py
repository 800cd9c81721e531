"""An SMS provider reached over HTTPS: ``POST <url>`` with a JSON body ``{"to": ...,
"text": ...}`` and ``Authorization: Bearer <token>``. Slovenian SMS gateways (and the
international ones) differ in field names; this adapter is the one place to change for a
provider, see docs/notifications.md. 429 and 5xx are retried; other 4xx are refused."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from cloud_bridge.notifications.channels import DeliveryDeferred, DeliveryRefused


@dataclass(frozen=True, slots=True)
class HttpSms:
    url: str
    token: str
    sender: str | None = None
    timeout_s: float = 10.0

    def send(self, recipient: str, text: str) -> None:
        body: dict[str, str] = {"to": recipient, "text": text}
        if self.sender:
            body["from"] = self.sender
        try:
            reply = httpx.post(self.url, json=body, timeout=self.timeout_s,
                               headers={"Authorization": f"Bearer {self.token}"})
        except httpx.HTTPError as exc:
            raise DeliveryDeferred(f"SMS provider unreachable: {type(exc).__name__}") from None
        if reply.status_code == 429 or reply.status_code >= 500:
            raise DeliveryDeferred(f"SMS provider busy (HTTP {reply.status_code})")
        if reply.status_code >= 400:
            raise DeliveryRefused(f"SMS provider refused the message (HTTP "
                                  f"{reply.status_code}): {reply.text[:200]}")
