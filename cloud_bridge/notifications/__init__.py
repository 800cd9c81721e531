"""Notifications to people: e-mail over SMTP and SMS through a provider, sent from a
durable outbox so that sending never blocks the caller and nothing is sent twice.

A feature writes a ``Notice`` with ``Notifier.enqueue`` inside its own transaction; the
notifier's thread delivers what is due. Back-ends are chosen by URL
(``mailer_from_url``, ``sms_from_url``): one module each, behind the ``Mailer`` and
``SmsSender`` protocols. docs/notifications.md describes the failure modes.
"""

from cloud_bridge.notifications.channels import (
    DeliveryDeferred,
    DeliveryRefused,
    Mailer,
    NotificationError,
    SmsSender,
)
from cloud_bridge.notifications.notice import Notice
from cloud_bridge.notifications.notifier import Notifier
from cloud_bridge.notifications.outbox import OutboxRow, ensure_notification_schema
from cloud_bridge.notifications.providers import mailer_from_url, sms_from_url

__all__ = [
    "DeliveryDeferred",
    "DeliveryRefused",
    "Mailer",
    "Notice",
    "NotificationError",
    "Notifier",
    "OutboxRow",
    "SmsSender",
    "ensure_notification_schema",
    "mailer_from_url",
    "sms_from_url",
]
