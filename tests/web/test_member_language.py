"""The language of a member's notices (issue 18): set on the member form, kept with the
member, and used for every notice to them — a membership about to end and a waiver to
sign reach a real SMTP server (aiosmtpd) in English for an English member and in
Slovenian for a Slovenian one. SQLite and PostgreSQL."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from sqlalchemy import select

from cloud_bridge.api_models import EntitlementIn, MemberIn
from cloud_bridge.db_schema import members, write_tx
from cloud_bridge.member_notice_sweep import ensure_member_notice_schema, sweep
from cloud_bridge.member_qr_links import LOCAL_TZ
from cloud_bridge.membership_ops import create_entitlement, create_member
from cloud_bridge.notifications import Notifier, mailer_from_url
from cloud_bridge.waiver_notices import waiver_to_sign
from cloud_bridge.waivers import ensure_waiver_schema, publish
from tests.outbox_isolation import set_aside_other_tenants
from tests.smtp_server import SmtpServer
from tests.web.conftest import WebSite
from tests.web.seed import ok_redirect

NOW = datetime.now(LOCAL_TZ).replace(microsecond=0)


def _language(site: WebSite, tenant: str, member_id: str) -> str:
    with site.engine.connect() as conn:
        return str(conn.execute(select(members.c.language).where(
            members.c.tenant == tenant, members.c.id == member_id)).scalar_one())


def test_the_member_form_sets_the_language_and_refuses_an_unknown_one(site: WebSite) -> None:
    tenant, _ = site.tenants
    client, csrf = site.login(site.user(tenant, "administrator"))
    form = {"csrf_token": csrf, "first_name": "John", "email": "john@example.com",
            "language": "en"}
    member_id = ok_redirect(client.post(f"/t/{tenant}/members", data=form,
                                        follow_redirects=False)).split("/")[-1].split("?")[0]
    assert _language(site, tenant, member_id) == "en"
    page = client.get(f"/t/{tenant}/members/{member_id}").text
    assert re.search(r'<option value="en" selected>English</option>', page)

    bad = client.post(f"/t/{tenant}/members/{member_id}",
                      data={**form, "first_name": "Johnny", "language": "de"})
    assert bad.status_code == 422
    assert 'id="e-language"' in bad.text and "Izberite jezik obvestil za člana." in bad.text
    assert 'value="Johnny"' in bad.text  # what was typed is kept
    assert _language(site, tenant, member_id) == "en"

    ok_redirect(client.post(f"/t/{tenant}/members/{member_id}",
                            data={**form, "language": "sl"}, follow_redirects=False))
    assert _language(site, tenant, member_id) == "sl"
    # a form without the field (a page from before) keeps the default
    plain = ok_redirect(client.post(f"/t/{tenant}/members", data={
        "csrf_token": csrf, "first_name": "Ana"}, follow_redirects=False))
    assert _language(site, tenant, plain.split("/")[-1].split("?")[0]) == "sl"


def test_notices_are_written_in_each_members_language(
        site: WebSite, smtp_server: SmtpServer) -> None:
    tenant, _ = site.tenants
    ensure_member_notice_schema(site.engine)
    ensure_waiver_schema(site.engine)
    with write_tx(site.engine) as conn:
        for name, language in (("Ana", "sl"), ("John", "en")):
            member_id, _ = create_member(conn, tenant, MemberIn(
                first_name=name, email=f"{name.lower()}@example.si", language=language))
            create_entitlement(conn, tenant, EntitlementIn(
                member_id=member_id, kind="membership",
                valid_from=int((NOW - timedelta(days=20)).timestamp()),
                valid_to=int((NOW + timedelta(days=3)).timestamp())))
    set_aside_other_tenants(site.engine, site.tenants)
    notifier = Notifier(site.engine, mailer_from_url(smtp_server.url()), None)

    assert sweep(site.engine, notifier, NOW) == 2
    version, _failed = publish(site.engine, tenant, "Izjava", "Vadim na lastno odgovornost.",
                               by="test")
    assert waiver_to_sign(site.engine, notifier, tenant, version) == 2
    notifier.deliver_due()
    mails = smtp_server.wait_for(4)
    # the expiry subject ends with the day, written the way of the language
    got = sorted((m["To"], re.sub(r"(poteče|expires on) .*", r"\1 …", m["Subject"]))
                 for m in mails)
    assert got == [
        ("ana@example.si", "Podpišite novo izjavo"),
        ("ana@example.si", "Vaša članarina poteče …"),
        ("john@example.si", "Please sign the new waiver"),
        ("john@example.si", "Your membership expires on …")]
    english = [m.get_content() for m in mails if m["To"] == "john@example.si"]
    assert all("Hello John" in text and "Pozdravljeni" not in text for text in english)
    assert all("To stop these messages" in text for text in english)
