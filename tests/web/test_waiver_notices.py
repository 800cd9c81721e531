""""Waiver to sign" e-mails through the notifications outbox to a real SMTP server
(aiosmtpd): each member with an address is told once per version; an opted-out member,
a member without an address and another tenant's member get nothing."""

from __future__ import annotations

from cloud_bridge.api_models import MemberIn
from cloud_bridge.db_schema import write_tx
from cloud_bridge.membership_ops import create_member
from cloud_bridge.notifications import Notifier, mailer_from_url
from cloud_bridge.waiver_notices import KIND, ensure_optout_schema, opt_out, waiver_to_sign
from cloud_bridge.waivers import ensure_waiver_schema, publish
from tests.outbox_isolation import set_aside_other_tenants
from tests.smtp_server import SmtpServer
from tests.web.conftest import WebSite


def test_a_new_waiver_version_is_mailed_once_to_who_has_not_opted_out(
        site: WebSite, smtp_server: SmtpServer) -> None:
    tenant, other = site.tenants
    ensure_waiver_schema(site.engine)
    ensure_optout_schema(site.engine)
    with write_tx(site.engine) as conn:
        create_member(conn, tenant, MemberIn(first_name="Ana", email="ana@example.si"))
        quiet, _ = create_member(conn, tenant, MemberIn(first_name="Bor",
                                                        email="bor@example.si"))
        create_member(conn, tenant, MemberIn(first_name="Cene"))  # no address
        create_member(conn, other, MemberIn(first_name="Eva", email="eva@example.si"))
        opt_out(conn, tenant, quiet, KIND)
    set_aside_other_tenants(site.engine, site.tenants)
    notifier = Notifier(site.engine, mailer_from_url(smtp_server.url()), None)
    version, _failed = publish(site.engine, tenant, "Izjava", "Vadim na lastno odgovornost.",
                               by="test")

    assert waiver_to_sign(site.engine, notifier, tenant, version) == 1
    assert waiver_to_sign(site.engine, notifier, tenant, version) == 0  # not twice
    notifier.deliver_due()
    (mail,) = smtp_server.wait_for(1)
    assert mail["To"] == "ana@example.si"
    assert mail["Subject"] == "Podpišite novo izjavo"
    assert "Izjava" in mail.get_content() and "Ana" in mail.get_content()
    notifier.deliver_due()
    assert len(smtp_server.messages) == 1
