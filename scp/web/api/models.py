"""The API's JSON shapes (pydantic): what the OpenAPI document publishes and requests are read
by. Field names follow the provisioning values (:mod:`scp.service.provisioning`); the rules a
value must meet (E.164 numbers, PINs, groups) are checked by the flows, which name the field.

Two rules hold for every value a request carries (body, form, query, path, cursor), because
PostgreSQL or Python would otherwise fail on them with a server error: no string holds a NUL
character (PostgreSQL text cannot), and a time lies in :data:`EARLIEST` .. :data:`LATEST` once
in UTC (``9999-12-31T23:59:59-14:00`` is accepted by RFC 3339 but is past the year 9999 in UTC,
beyond Python's datetime; the margin keeps a local day or a window added to it in range).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
)

EARLIEST = dt.datetime(1900, 1, 1, tzinfo=dt.UTC)
LATEST = dt.datetime(9999, 1, 1, tzinfo=dt.UTC)  # exclusive


def check_instant(v: dt.datetime) -> dt.datetime:
    """``v`` (aware) if it lies in EARLIEST .. LATEST once in UTC; ValueError if not."""
    try:
        utc = v.astimezone(dt.UTC)
    except OverflowError:
        utc = None
    if utc is None or not EARLIEST <= utc < LATEST:
        raise ValueError(f"a time from {EARLIEST:%Y-%m-%d} to before {LATEST:%Y-%m-%d} UTC")
    return v


def check_text(v: str) -> str:
    """``v`` if it has no NUL character (PostgreSQL text cannot hold one); ValueError if not."""
    if "\x00" in v:
        raise ValueError("a NUL character is not allowed")
    return v


Instant = Annotated[AwareDatetime, AfterValidator(check_instant)]
Text = Annotated[str, AfterValidator(check_text)]

Service = Literal["missed-call", "busy", "delivery-receipt", "voicemail", "forwarding"]
Language = Literal["zh", "en"]
NotifyMode = Literal["sms", "digest", "none"]
VoicemailNotify = Literal["sms", "none"]
Status = Literal["active", "suspended", "barred"]
Number = Field(
    min_length=1,
    max_length=32,
    description="E.164 (8613812345678, +86...) or national (013812345678)",
)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*")
    @classmethod
    def _no_nul(cls, v: object) -> object:
        for s in v if isinstance(v, list) else [v]:
            if isinstance(s, str):
                check_text(s)
        return v


class SubscriberIn(_In):
    """A subscriber as BOSS / CRM provisions it (PUT: the whole of it)."""

    services: list[Service] = Field(default_factory=list, max_length=5)
    group: str = Field(
        "default", min_length=1, max_length=32, description="user group (CRM segment)"
    )
    language: Language = "zh"
    notify_mode: NotifyMode = "sms"
    voicemail_notify: VoicemailNotify = "sms"
    forward_to: str | None = Field(None, max_length=32)
    imsi: str | None = Field(None, max_length=15)
    status: Status = "active"


class SubscriberPatch(_In):
    """The attributes to change; absent ones stay, null clears forward_to / imsi."""

    group: str | None = Field(None, min_length=1, max_length=32)
    language: Language | None = None
    notify_mode: NotifyMode | None = None
    voicemail_notify: VoicemailNotify | None = None
    forward_to: str | None = Field(None, max_length=32)
    imsi: str | None = Field(None, max_length=15)
    status: Status | None = None


class SubscriptionOut(BaseModel):
    service: Service
    start_date: dt.date
    end_date: dt.date | None


class SubscriberOut(BaseModel):
    msisdn: str
    imsi: str | None
    status: Status
    language: Language
    user_group: str
    notify_mode: NotifyMode
    voicemail_notify: VoicemailNotify
    forward_to: str | None
    pin_set: bool
    pin_failed_attempts: int
    pin_locked: bool
    subscriptions: list[SubscriptionOut]
    created_at: dt.datetime | None
    updated_at: dt.datetime | None


class BlacklistIn(_In):
    number: str = Field(min_length=1, max_length=32)
    prefix: bool = False


class BlacklistOut(BaseModel):
    owner: str
    number: str
    kind: Literal["exact", "prefix"]


class GroupOut(BaseModel):
    group: str
    subscribers: int


# A time of day in [notify] timezone. JSON Schema's "time" format (RFC 3339) demands an offset,
# which a local time of day does not have: documented by its pattern instead.
LocalTime = Annotated[
    dt.time,
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?$",
            "description": "a time of day in [notify] timezone, HH:MM[:SS], without an offset",
            "examples": ["08:00:00"],
        }
    ),
]


class AdIn(_In):
    """An ad appended to notification SMS of callees in ``user_groups`` (CRM segments)."""

    text: str = Field(min_length=1, max_length=160)
    window_start: LocalTime = dt.time(0, 0)
    window_end: LocalTime | None = None
    caller_prefixes: list[str] = Field(default_factory=list, max_length=100)
    user_groups: list[str] = Field(default_factory=list, max_length=100)
    priority: int = Field(0, ge=-(2**31), le=2**31 - 1)
    valid_from: Instant | None = None
    valid_until: Instant | None = None

    @field_validator("window_start", "window_end")
    @classmethod
    def _local_time(cls, v: dt.time | None) -> dt.time | None:
        if v is not None and v.tzinfo is not None:
            raise ValueError("a time of day in [notify] timezone, without an offset")
        return v


class AdOut(BaseModel):
    id: int
    text: str
    window_start: LocalTime
    window_end: LocalTime | None
    caller_prefixes: list[str]
    user_groups: list[str]
    priority: int
    valid_from: dt.datetime
    valid_until: dt.datetime | None


class MissedCallOut(BaseModel):
    id: int
    caller: str | None
    callee: str
    occurred_at: dt.datetime
    reason: Literal["busy", "not-reachable", "no-answer"]
    cause: int | None
    notified_at: dt.datetime | None


class ChoiceIn(_In):
    """The caller's menu choice as the media server reports it."""

    caller: str = Field(min_length=1, max_length=32)
    callee: str = Field(min_length=1, max_length=32)


class ChoiceOut(BaseModel):
    choice: Literal["callback", "voicemail", "operator"]
    caller: str
    callee: str
    missed_call_id: int
    missed_at: dt.datetime
    route: str | None = Field(description="where the IVR connects the caller (deposit, operator)")
    callback_id: int | None = None
    expires_at: dt.datetime | None = None
    fee: str | None = Field(
        None, description="per-use fee charged to the caller (CNY) once, when the SMS goes out"
    )


class VoiceMessageOut(BaseModel):
    id: int
    callee: str
    caller: str | None
    deposited_at: dt.datetime
    duration_s: int
    content_type: Literal["audio/wav", "audio/amr", "audio/amr-wb"]
    size_bytes: int
    status: Literal["new", "heard"]
    heard_at: dt.datetime | None
    notified_at: dt.datetime | None
    audio: str = Field(description="where the recording is streamed (HTTP Range)")


class DepositOut(VoiceMessageOut):
    sms_queued: bool


class ImportJobOut(BaseModel):
    id: int
    client: str
    status: Literal["queued", "running", "loaded", "rejected", "failed"]
    skip_bad: bool
    size_bytes: int
    lines_read: int
    result: dict[str, object] | None = Field(
        None, description="the importer's summary and bad lines (line, reason) once finished"
    )
    error: str | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None


class CdrOut(BaseModel):
    id: int
    record_type: str
    msisdn: str
    caller: str | None
    callee: str | None
    service: str | None
    call_category: str | None
    started_at: dt.datetime
    ended_at: dt.datetime | None
    duration_s: int | None
    charge: str
    call_ref: str | None


class RateOut(BaseModel):
    id: int
    call_category: Literal["local", "national", "hmt", "international"]
    prefix: str
    per_minute: str
    per_sms: str
    per_use: str
    monthly_fee: str
    valid_from: dt.date
