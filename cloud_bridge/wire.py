"""What devices send to the bridge (docs/protocol.md), validated at the edge with pydantic.

Anything that does not validate is rejected with a one-line reason that is safe to log
(pydantic's messages name the field and the rule, never more than a short input echo,
and event payloads carry no UIDs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

MAX_EVENTS_BYTES = 256 * 1024
MAX_EVENTS_PER_BATCH = 500
MAX_SMALL_BYTES = 64 * 1024  # state, cmd-result, members/request

_Id = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
_Uuid = Annotated[str, StringConstraints(
    pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")]
_Ts = Annotated[str, StringConstraints(pattern=r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")]
_Type = Annotated[str, StringConstraints(
    pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_-]*)+$", max_length=64)]


class _Msg(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EventIn(_Msg):
    id: _Uuid
    tenant: _Id
    device: _Id
    seq: Annotated[int, Field(ge=1, le=2**62)]
    ts: _Ts
    type: _Type
    data: dict[str, Any]


class EventBatch(_Msg):
    v: Literal[1]
    tenant: _Id
    device: _Id
    events: Annotated[list[EventIn], Field(min_length=1, max_length=MAX_EVENTS_PER_BATCH)]


class MembersRequest(_Msg):
    v: Literal[1]
    since_version: Annotated[int, Field(ge=0)]


class DeviceState(BaseModel):
    """Devices may add fields to their state; we keep the whole (size-limited) object."""

    model_config = ConfigDict(extra="allow", frozen=True)
    v: Literal[1]
    online: bool
    ts: _Ts | None = None


class CommandResult(_Msg):
    v: Literal[1]
    request_id: Annotated[str, Field(min_length=1, max_length=64)] | None
    name: Annotated[str, Field(max_length=32)] | None = None
    ok: bool
    result: dict[str, Any] | None = None
    error: Annotated[str, Field(max_length=2000)] | None = None


class Rejected(ValueError):
    """A message that the bridge will not store; the text is safe for the log."""


def first_error(exc: ValidationError) -> str:
    err = exc.errors(include_input=False, include_url=False)[0]
    where = ".".join(str(p) for p in err["loc"]) or "payload"
    return f"{where}: {err['msg']}" + (f" (+{exc.error_count() - 1} more)"
                                       if exc.error_count() > 1 else "")


def parse_events(tenant: str, device: str, payload: bytes) -> EventBatch:
    """Validate an events message against its topic; raises Rejected with the reason."""
    if len(payload) > MAX_EVENTS_BYTES:
        raise Rejected(f"batch of {len(payload)} bytes is over the {MAX_EVENTS_BYTES} limit")
    try:
        batch = EventBatch.model_validate_json(payload)
    except ValidationError as exc:
        raise Rejected(first_error(exc)) from None
    if batch.tenant != tenant or batch.device != device:
        raise Rejected(f"envelope names {batch.tenant}/{batch.device}, topic is "
                       f"{tenant}/{device}")
    first = batch.events[0].seq
    for i, ev in enumerate(batch.events):
        if ev.tenant != tenant or ev.device != device:
            raise Rejected(f"event {i} names {ev.tenant}/{ev.device}, topic is {tenant}/{device}")
        if ev.seq != first + i:
            raise Rejected(f"seq not ascending and contiguous at event {i} "
                           f"({ev.seq} after {first + i - 1})")
    return batch


def parse_small(model: type[_Msg] | type[DeviceState], payload: bytes) -> Any:
    if len(payload) > MAX_SMALL_BYTES:
        raise Rejected(f"message of {len(payload)} bytes is over the {MAX_SMALL_BYTES} limit")
    try:
        return model.model_validate_json(payload)
    except ValidationError as exc:
        raise Rejected(first_error(exc)) from None


@dataclass(frozen=True, slots=True)
class Inbound:
    """One message from the broker, with what is needed to acknowledge it later."""

    tenant: str
    device: str
    kind: str  # events | state | cmd-result | members/request
    payload: bytes
    mid: int
    qos: int
    generation: int  # connection it arrived on: a PUBACK is only valid on that one
