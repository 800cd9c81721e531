"""What is to be sent to one person: a frozen value written to the outbox."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cloud_bridge.errors import Invalid

Channel = Literal["email", "sms"]
CHANNELS: tuple[Channel, ...] = ("email", "sms")

# SMS providers bill per 160-character GSM part; longer texts are refused here, not
# split silently into several paid messages
SMS_MAX_CHARS = 480


@dataclass(frozen=True, slots=True)
class Notice:
    """One message to one recipient.

    ``kind`` names what it is about (``membership_expiring``, ``edc_alert`` ...), for the
    logs and the opt-out; ``dedup_key`` is unique per tenant: enqueueing the same key twice
    sends once (an alert found again by the next check is not mailed again)."""

    tenant: str
    kind: str
    channel: Channel
    recipient: str
    subject: str
    body: str
    dedup_key: str
    # e-mail only: the recipient's one-click opt-out address, sent as the List-Unsubscribe
    # header with List-Unsubscribe-Post (RFC 8058); mail clients show an "unsubscribe" button
    unsubscribe_url: str | None = None

    def __post_init__(self) -> None:
        if self.channel not in CHANNELS:
            raise Invalid(f"unknown notification channel {self.channel!r}: use email or sms")
        if not self.recipient.strip():
            raise Invalid("a notification needs a recipient (an e-mail address or a phone)")
        if self.channel == "email" and "@" not in self.recipient:
            raise Invalid("the e-mail address has no @: correct it in the person's profile")
        if self.channel == "sms" and len(self.body) > SMS_MAX_CHARS:
            raise Invalid(f"an SMS may have at most {SMS_MAX_CHARS} characters")
        if not self.dedup_key or len(self.dedup_key) > 200:
            raise Invalid("a notification needs a dedup key of 1-200 characters")
        if self.unsubscribe_url is not None and (
                not self.unsubscribe_url.startswith(("https://", "http://"))
                or len(self.unsubscribe_url) > 500 or any(c in self.unsubscribe_url
                                                          for c in "<>\r\n ")):
            raise Invalid("the unsubscribe address must be an http(s) URL of at most 500 "
                          "characters")
