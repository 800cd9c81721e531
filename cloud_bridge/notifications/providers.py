"""Back-ends by URL: ``smtp://[user:password@]host:port?from=a@b[&starttls=1]`` or
``smtps://...`` for e-mail; ``file:///path/sms.jsonl`` or ``https://gateway/...?token=...``
for SMS. A wrong URL is refused at start with what to write instead."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from cloud_bridge.errors import Invalid
from cloud_bridge.notifications.channels import Mailer, SmsSender
from cloud_bridge.notifications.sms_file import FileSms
from cloud_bridge.notifications.sms_http import HttpSms
from cloud_bridge.notifications.smtp_mailer import SmtpMailer


def mailer_from_url(url: str) -> Mailer:
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps"):
        raise Invalid(f"mail URL {parts.scheme or url!r}: write smtp://host:port?from=address "
                      "or smtps://host:port?from=address")
    query = parse_qs(parts.query)
    sender = query.get("from", [""])[0]
    if "@" not in sender or not parts.hostname:
        raise Invalid("mail URL needs a host and ?from=sender@domain")
    implicit = parts.scheme == "smtps"
    return SmtpMailer(host=parts.hostname, port=parts.port or (465 if implicit else 25),
                      sender=sender, implicit_tls=implicit,
                      starttls=query.get("starttls", ["0"])[0] in ("1", "true", "yes"),
                      username=unquote(parts.username) if parts.username else None,
                      password=unquote(parts.password) if parts.password else None)


def sms_from_url(url: str) -> SmsSender:
    parts = urlsplit(url)
    if parts.scheme == "file":
        if not parts.path:
            raise Invalid("SMS URL file:// needs a path: file:///var/lib/bridge/sms.jsonl")
        return FileSms(Path(unquote(parts.path)))
    if parts.scheme == "https":
        query = parse_qs(parts.query)
        token = query.pop("token", [""])[0]
        if not token:
            raise Invalid("SMS URL https:// needs ?token=... (the provider's API key)")
        rest = "&".join(f"{k}={v[0]}" for k, v in query.items() if k != "from")
        url_clean = parts._replace(query=rest).geturl()
        return HttpSms(url=url_clean, token=token, sender=query.get("from", [None])[0])
    raise Invalid(f"SMS URL {parts.scheme or url!r}: write file:///path/sms.jsonl or "
                  "https://provider/...?token=...")
