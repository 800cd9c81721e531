"""What devices send to the bridge (docs/protocol.md), validated at the edge with pydantic.

Anything that does not validate is rejected with a one-line reason that is safe to log
(pydantic's messages name the field and the rule, never more than a short input echo,
and event payloads carry no UIDs). Every payload is first parsed by the one strict JSON
loader (contracts/strict_json.py): no NaN/Infinity, no lone surrogates, no NUL.

An events message is judged per event where it can be: when the envelope is sound and
an event's seq is known, a bad event is refused on its own (``split_events``) and the
others of the batch are stored.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from cloud_bridge.errors import Invalid
from contracts import strict_json

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


class Rejected(Invalid):
    """A message that the bridge will not store; the text is safe for the log."""


def first_error(exc: ValidationError) -> str:
    err = exc.errors(include_input=False, include_url=False)[0]
    where = ".".join(str(p) for p in err["loc"]) or "payload"
    return f"{where}: {err['msg']}" + (f" (+{exc.error_count() - 1} more)"
                                       if exc.error_count() > 1 else "")


class _Envelope(_Msg):
    v: Literal[1]
    tenant: _Id
    device: _Id
    events: Annotated[list[Any], Field(min_length=1, max_length=MAX_EVENTS_PER_BATCH)]


@dataclass(frozen=True, slots=True)
class RefusedEvent:
    """One event of a sound batch that will never be stored; its seq is known."""

    seq: int
    event_id: str | None
    reason: str
    raw: bytes  # the event as JSON, for the quarantine


@dataclass(frozen=True, slots=True)
class SplitEvents:
    batch: EventBatch  # the events that passed (possibly none)
    refused: list[RefusedEvent] = field(default_factory=list)


def _load(payload: bytes) -> tuple[Any, bool]:
    """(value, clean): strict first; JSON that only holds refused values is read leniently
    so that the bad events can be told from the good ones."""
    try:
        return strict_json.loads(payload), True
    except strict_json.StrictJsonError as exc:
        if exc.syntax:
            raise Rejected(str(exc)) from None
    try:
        return json.loads(payload), False
    except (ValueError, RecursionError):
        raise Rejected("not JSON") from None


def _event_seq(raw: Any, tenant: str, device: str) -> int | None:
    """The seq of an event that is this device's own, even when the rest is invalid."""
    if not isinstance(raw, dict) or raw.get("tenant") != tenant or raw.get("device") != device:
        return None
    seq = raw.get("seq")
    return seq if type(seq) is int and 1 <= seq <= 2**62 else None


def split_events(tenant: str, device: str, payload: bytes) -> SplitEvents:
    """Validate an events message against its topic. A broken envelope (or an event that
    cannot be placed) raises Rejected; a bad event of a sound batch is refused alone."""
    if len(payload) > MAX_EVENTS_BYTES:
        raise Rejected(f"batch of {len(payload)} bytes is over the {MAX_EVENTS_BYTES} limit")
    value, clean = _load(payload)
    if clean:  # the usual case: the whole batch validates in one pass
        try:
            batch = EventBatch.model_validate(value)
        except ValidationError:
            pass
        else:
            _check_topic(batch, tenant, device)
            return SplitEvents(batch)
    try:
        env = _Envelope.model_validate(value)
    except ValidationError as exc:
        raise Rejected(first_error(exc)) from None
    if env.tenant != tenant or env.device != device:
        raise Rejected(f"envelope names {env.tenant}/{env.device}, topic is {tenant}/{device}")
    good: list[EventIn] = []
    refused: list[RefusedEvent] = []
    first = None
    for i, raw in enumerate(env.events):
        seq = _event_seq(raw, tenant, device)
        if seq is None:
            _check_placed(raw, i, tenant, device)
            raise Rejected(f"event {i}: seq must be an integer from 1")
        first = seq if first is None else first
        if seq != first + i:
            raise Rejected(f"seq not ascending and contiguous at event {i} "
                           f"({seq} after {first + i - 1})")
        reason = None if clean else strict_json.poison_in(raw, f"events.{i}")
        if reason is None:
            try:
                good.append(EventIn.model_validate(raw))
                continue
            except ValidationError as exc:
                reason = f"events.{i}.{first_error(exc)}"
        ev_id = raw.get("id") if isinstance(raw.get("id"), str) else None
        refused.append(RefusedEvent(seq, ev_id[:36] if ev_id else None, reason,
                                    json.dumps(raw, ensure_ascii=False).encode(
                                        "utf-8", "backslashreplace")))
    batch = EventBatch.model_construct(v=1, tenant=tenant, device=device, events=good)
    return SplitEvents(batch, refused)


def _check_topic(batch: EventBatch, tenant: str, device: str) -> None:
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


def _check_placed(raw: Any, i: int, tenant: str, device: str) -> None:
    if isinstance(raw, dict) and isinstance(raw.get("tenant"), str) and isinstance(
            raw.get("device"), str) and (raw["tenant"], raw["device"]) != (tenant, device):
        raise Rejected(f"event {i} names {str(raw['tenant'])[:64]}/{str(raw['device'])[:64]}, "
                       f"topic is {tenant}/{device}")


def parse_events(tenant: str, device: str, payload: bytes) -> EventBatch:
    """The whole batch or Rejected: for callers that store nothing partial."""
    split = split_events(tenant, device, payload)
    if split.refused:
        raise Rejected(split.refused[0].reason)
    return split.batch


def parse_small(model: type[_Msg] | type[DeviceState], payload: bytes) -> Any:
    if len(payload) > MAX_SMALL_BYTES:
        raise Rejected(f"message of {len(payload)} bytes is over the {MAX_SMALL_BYTES} limit")
    try:
        value = strict_json.loads(payload)
    except strict_json.StrictJsonError as exc:
        raise Rejected(str(exc)) from None
    try:
        return model.model_validate(value)
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
