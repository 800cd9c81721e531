"""The member's phone QR: a page that shows a fresh signed QR token every 30 seconds.

Gates verify the token offline (contracts/qr_token.py) with the tenant's public
key, so the page only needs the bridge while it refreshes.

Authentication is a per-member secret link, sent to the member once (e-mail, SMS, the
member portal)::

    https://<bridge>/member-qr/{tenant}/{member_id}#k=<link token>

``link token = base64url(HMAC-SHA256(server link key, "member-qr-link/v1" | tenant |
member_id | link epoch))[:22]`` (128 bits). The token sits in the URL *fragment*, which a
browser never sends to a server, so it appears in no access log, proxy log or Referer;
the page's script sends it in an ``Authorization: Bearer`` header to the token endpoint.
Nothing is stored per link: the bridge recomputes the HMAC. To revoke one member's link
(phone lost, link forwarded) the bridge bumps that credential's ``link_epoch``; rotating
the server link key revokes every link at once. A forwarded link works only until then,
and its tokens are refused after the first use at a gate (replay guard), so sharing it
does not let two people in on one pass at the same time without the gate noticing.

Wrong tokens and unknown members get the same 404, so the endpoint does not tell which
member ids exist. Responses are ``Cache-Control: no-store`` and the page has a strict
Content-Security-Policy (no third-party anything) and ``Referrer-Policy: no-referrer``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Protocol

import segno
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import APIRouter, Header, HTTPException, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from cloud_bridge.errors import Conflict, Invalid, NotFound
from cloud_bridge.web.page_templates import page_templates
from contracts.i18n import N_, gettext, use_language
from contracts.qr_token import STEP_S, issue_token

LINK_TOKEN_CHARS = 22  # 132 bits of base64url
_ID = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
TenantId = Annotated[str, PathParam(pattern=_ID)]
MemberId = Annotated[str, PathParam(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


@dataclass(frozen=True, slots=True)
class MemberQrCredential:
    """The member's QR credential as the bridge knows it (kind 'qr', no hash)."""

    credential_id: str  # UUID: what the token carries and the gate looks up
    valid_from: int  # epoch seconds; the token never outlives the credential
    valid_to: int
    first_name: str = ""  # shown on the page, so the member sees it is theirs
    blocked: bool = False
    link_epoch: int = 0  # bump to revoke this member's link
    # the member has a membership or ticket valid now (the gate would let them in);
    # without one the page says so instead of showing a code the gate refuses
    has_pass: bool = True


SigningKeyGetter = Callable[[str], Ed25519PrivateKey]
CredentialGetter = Callable[[str, str], MemberQrCredential | None]


def member_link_token(link_key: bytes, tenant: str, member_id: str, link_epoch: int = 0) -> str:
    msg = b"\x00".join([b"member-qr-link/v1", tenant.encode(), member_id.encode(),
                        str(link_epoch).encode()])
    digest = hmac.new(link_key, msg, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode()[:LINK_TOKEN_CHARS]


def member_link(base_url: str, link_key: bytes, tenant: str, member_id: str,
                link_epoch: int = 0) -> str:
    """The link staff send to a member (secret: treat it like a password)."""
    token = member_link_token(link_key, tenant, member_id, link_epoch)
    return f"{base_url.rstrip('/')}/member-qr/{tenant}/{member_id}#k={token}"


def qr_svg(text: str) -> str:
    """Server-side SVG of the token: alphanumeric mode, error correction M."""
    out = io.BytesIO()
    segno.make(text, error="m", boost_error=False).save(
        out, kind="svg", scale=6, border=4, xmldecl=False, svgns=True, title="QR")
    return out.getvalue().decode()


_PAGE = page_templates(Path(__file__).parent / "web" / "templates")


# what the page's script says, in the page's language (templates/member_qr.html)
PAGE_TEXTS = (
    N_("Your entry code is blocked. Ask the reception."),
    N_("Your entry code is not valid now: there is no valid membership or ticket. "
       "Ask the reception."),
    N_("Your entry code is not valid now. Ask the reception."),
    N_("This link is not valid. Ask the reception for a new one."),
    N_("The server could not make a code. Trying again…"),
    N_("No connection: the code is not fresh."),
    N_("Next code in %(n)s s."),
    N_("The link is incomplete."),
    # the waiver to sign on the phone (cloud_bridge/waivers.py, docs/waivers.md)
    N_("A new version of the waiver: please read and sign it again."),
    N_("Please read and sign the waiver."),
    N_("Your full name"),
    N_("I have read the waiver and agree to it."),
    N_("Sign"),
    N_("Signed. Thank you."),
    N_("Type your full name and tick the box to agree to the waiver."),
    N_("The waiver has changed meanwhile: read the new text."),
    # the drawn signature (static/signature_pad.js); the typed name stays the alternative
    N_("Type your full name or draw your signature, and tick the box to agree to the "
       "waiver."),
    # enrolling this phone as a contactless key (cloud_bridge/phone_enrolment.py)
    N_("Use this phone as your entry key"),
    N_("Your phone's app asks to open the gate with this phone: hold it to the reader "
       "instead of a card."),
    N_("Enrol this phone"),
    N_("This phone now opens the gate."),
    N_("This phone is already enrolled."),
    N_("The app's key could not be checked. Open the link from the app again."),
)


class WaiverSigning(Protocol):
    """What the phone page needs of waivers (cloud_bridge.waivers.WaiverDesk)."""

    def pending(self, tenant: str, member_id: str) -> dict[str, object] | None: ...

    def sign(self, tenant: str, member_id: str, version: int, signed_name: str,
             consent: bool, drawing: str | None = None) -> None: ...


class PhoneKeys(Protocol):
    """Enrolling the member's phone as a contactless key (cloud_bridge.phone_enrolment)."""

    def enrol(self, tenant: str, member_id: str, public_key_hex: str,
              proof_hex: str) -> str: ...


class PhoneKeyEnrolment(BaseModel):
    public_key: str = Field(pattern=r"^[0-9a-fA-F]{64}$")  # Ed25519, 32 bytes
    proof: str = Field(pattern=r"^[0-9a-fA-F]{128}$")  # its signature, 64 bytes


class PhoneSignature(BaseModel):
    version: int = Field(ge=1)
    signed_name: str = Field(max_length=120)
    consent: bool
    # a drawn signature: the SVG path of the strokes (cloud_bridge/waiver_drawing.py)
    drawing: str | None = Field(default=None, max_length=20_000)


def page_catalog() -> dict[str, str]:
    return {text: gettext(text) for text in PAGE_TEXTS}


def _security_headers(nonce: str | None = None) -> dict[str, str]:
    csp = "default-src 'none'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; " \
          "form-action 'none'; frame-ancestors 'none'"
    if nonce:
        csp += f"; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'"
    return {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff", "Content-Security-Policy": csp}


def make_member_qr_router(
    get_signing_key: SigningKeyGetter,
    get_credential: CredentialGetter,
    link_key: bytes,
    clock: Callable[[], float] = time.time,
    waivers: WaiverSigning | None = None,
    phones: PhoneKeys | None = None,
) -> APIRouter:
    """``get_signing_key(tenant)`` returns the tenant's Ed25519 key (the one whose public
    half is the devices' ``keys.tenant_public_key``); ``get_credential(tenant, member_id)``
    returns the member's QR credential or None. ``link_key`` (>= 32 random bytes) is the
    server secret behind every member link."""
    if len(link_key) < 32:
        raise ValueError("the member link key must be at least 32 random bytes")
    router = APIRouter(prefix="/member-qr", tags=["member-qr"])
    not_found = HTTPException(404, "unknown or revoked member link",
                              headers={"Cache-Control": "no-store"})

    @router.get("/{tenant}/{member_id}", response_class=HTMLResponse)
    def page(request: Request, tenant: TenantId, member_id: MemberId) -> HTMLResponse:
        # the page itself holds no secret; the link token stays in the fragment
        nonce = secrets.token_urlsafe(16)
        # ids are pattern-checked above; the template escapes the attribute anyway
        token_url = f"/member-qr/{tenant}/{member_id}/token"
        # Slovenian unless the phone used the staff pages' language switch (lang cookie)
        with use_language(request.cookies.get("lang")):
            return _PAGE.TemplateResponse(
                request, "member_qr.html",
                {"nonce": nonce, "token_url": token_url, "catalog": page_catalog()},
                headers=_security_headers(nonce))

    def linked(tenant: str, member_id: str, authorization: str | None) -> MemberQrCredential:
        """The member's credential if the link's secret was presented, else 404."""
        presented = (authorization or "").removeprefix("Bearer ").strip()
        if len(presented) != LINK_TOKEN_CHARS:
            raise not_found
        cred = get_credential(tenant, member_id)
        epoch = cred.link_epoch if cred is not None else 0
        expected = member_link_token(link_key, tenant, member_id, epoch)
        if not hmac.compare_digest(presented.encode(), expected.encode()) or cred is None:
            raise not_found
        return cred

    _member_actions(router, linked, not_found, waivers, phones)

    @router.post("/{tenant}/{member_id}/token")
    def token(tenant: TenantId, member_id: MemberId,
              authorization: Annotated[str | None, Header()] = None) -> JSONResponse:
        cred = linked(tenant, member_id, authorization)
        now = int(clock())
        refusal = ("blocked" if cred.blocked else "not_valid_now"
                   if not cred.valid_from <= now < cred.valid_to
                   else None if cred.has_pass else "no_valid_pass")
        if refusal:
            # JSON for the page's script, which says why in the member's language
            return JSONResponse({"error": refusal}, status_code=403,
                                headers=_security_headers())
        text = issue_token(get_signing_key(tenant), cred.credential_id, cred.valid_from,
                           cred.valid_to, now)
        refresh_s = STEP_S - now % STEP_S  # 1..30: right when the next time step starts
        return JSONResponse(
            {"token": text, "svg": qr_svg(text), "refresh_s": refresh_s,
             "first_name": cred.first_name,
             "waiver": waivers.pending(tenant, member_id) if waivers else None},
            headers=_security_headers())

    return router


Linked = Callable[[str, str, str | None], MemberQrCredential]


def _member_actions(router: APIRouter, linked: Linked, not_found: HTTPException,
                    waivers: WaiverSigning | None, phones: PhoneKeys | None) -> None:
    """The member's actions on their page: sign the waiver, enrol the phone as a key."""
    @router.post("/{tenant}/{member_id}/waiver")
    def sign_waiver(tenant: TenantId, member_id: MemberId, body: PhoneSignature,
                    authorization: Annotated[str | None, Header()] = None) -> Response:
        linked(tenant, member_id, authorization)
        if waivers is None:
            raise not_found
        try:
            waivers.sign(tenant, member_id, body.version, body.signed_name, body.consent,
                         body.drawing or None)
        except NotFound:
            raise not_found from None
        except Invalid as exc:
            stale = "not the current one" in str(exc)
            return JSONResponse({"error": "stale" if stale else "incomplete"},
                                status_code=409 if stale else 422,
                                headers=_security_headers())
        return Response(status_code=204, headers=_security_headers())

    @router.post("/{tenant}/{member_id}/phone-key")
    def enrol_phone(tenant: TenantId, member_id: MemberId, body: PhoneKeyEnrolment,
                    authorization: Annotated[str | None, Header()] = None) -> Response:
        linked(tenant, member_id, authorization)
        if phones is None:
            raise not_found
        try:
            cred_id = phones.enrol(tenant, member_id, body.public_key, body.proof)
        except NotFound:
            raise not_found from None
        except Conflict:
            return JSONResponse({"error": "enrolled"}, status_code=409,
                                headers=_security_headers())
        except Invalid:
            return JSONResponse({"error": "proof"}, status_code=422,
                                headers=_security_headers())
        return JSONResponse({"credential_id": cred_id}, status_code=201,
                            headers=_security_headers())
