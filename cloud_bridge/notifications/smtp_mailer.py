"""E-mail through an SMTP server with the standard library's smtplib (``smtp://`` plain
or STARTTLS, ``smtps://`` implicit TLS), one connection per message: notifications are
few, and a connection that broke between two of them is never reused by mistake."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from cloud_bridge.notifications.channels import DeliveryDeferred, DeliveryRefused


@dataclass(frozen=True, slots=True)
class SmtpMailer:
    host: str
    port: int
    sender: str
    implicit_tls: bool = False
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    timeout_s: float = 10.0

    def message(self, recipient: str, subject: str, body: str,
                unsubscribe_url: str | None = None) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = recipient
        msg["Subject"] = subject
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = make_msgid(domain=self.sender.rpartition("@")[2] or None)
        if unsubscribe_url:  # RFC 8058: the client POSTs "List-Unsubscribe=One-Click"
            msg["List-Unsubscribe"] = f"<{unsubscribe_url}>"
            msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        msg.set_content(body)  # UTF-8, so č, š and ž arrive as written
        return msg

    def send(self, recipient: str, subject: str, body: str,
             unsubscribe_url: str | None = None) -> None:
        msg = self.message(recipient, subject, body, unsubscribe_url)
        try:
            with self._connect() as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.username:
                    smtp.login(self.username, self.password or "")
                smtp.send_message(msg)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _text in exc.recipients.values()]
            if all(code >= 500 for code in codes):
                raise DeliveryRefused(f"the mail server refused the address (SMTP {codes[0]})"
                                      ) from None
            raise DeliveryDeferred(f"the mail server deferred the address (SMTP {codes[0]})"
                                   ) from None
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryDeferred(f"SMTP login refused ({exc.smtp_code}): check the "
                                   "notification settings' user and password") from None
        except smtplib.SMTPResponseException as exc:
            if exc.smtp_code >= 500:
                raise DeliveryRefused(f"the mail server refused the message (SMTP "
                                      f"{exc.smtp_code})") from None
            raise DeliveryDeferred(f"the mail server asked to try later (SMTP "
                                   f"{exc.smtp_code})") from None
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryDeferred(f"mail server {self.host}:{self.port} unreachable: "
                                   f"{type(exc).__name__}") from None

    def _connect(self) -> smtplib.SMTP:
        if self.implicit_tls:
            return smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout_s,
                                    context=ssl.create_default_context())
        return smtplib.SMTP(self.host, self.port, timeout=self.timeout_s)
