"""What staff read for the codes the pages show: audit actions, peripheral roles and
their health. English msgids (translated where shown); an unknown code is shown as it
is, so a new action is never hidden."""

from __future__ import annotations

from contracts.i18n import N_
from contracts.i18n import gettext as _

AUDIT_ACTIONS = {
    "member.create": N_("Member added"),
    "member.update": N_("Member changed"),
    "member.erase": N_("Member erased"),
    "entitlement.create": N_("Entitlement added"),
    "entitlement.update": N_("Entitlement changed"),
    "entitlement.delete": N_("Entitlement removed"),
    "credential.issue": N_("Card or code issued"),
    "credential.block": N_("Card or code blocked or unblocked"),
    "credential.revoke": N_("Card or code revoked"),
    "plan.create": N_("Plan created"),
    "plan.active": N_("Plan offered or retired"),
    "user.create": N_("User added"),
    "user.role": N_("User's role changed"),
    "user.active": N_("User enabled or disabled"),
    "command.open": N_("Gate opened remotely"),
    "command.reload": N_("Settings reload sent"),
    "command.resend-state": N_("State report requested"),
    "receipt.reprint": N_("Receipt reprinted"),
    "tenant.export": N_("Data exported"),
    "device.enrolment_code": N_("Device enrolment code issued"),
}
PERIPHERAL_ROLES = {"reader": N_("reader"), "gate": N_("gate"), "display": N_("display"),
                    "printer": N_("printer")}
HEALTH = {"ok": N_("working"), "degraded": N_("degraded"), "down": N_("not working")}


def audit_action(code: str) -> str:
    return _(AUDIT_ACTIONS[code]) if code in AUDIT_ACTIONS else code


def peripheral_role(code: str) -> str:
    return _(PERIPHERAL_ROLES[code]) if code in PERIPHERAL_ROLES else code


def health(code: str) -> str:
    return _(HEALTH[code]) if code in HEALTH else code
