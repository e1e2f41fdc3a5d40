"""The media server's side of a call in ``[ivr] mode = "connect"``: the caller's menu choice.

In connect mode the SCP hands the caller to the IVR with a Connect (ARCHITECTURE §4) and the
dialogue with the switch ends; the IVR plays the menu itself and reports what the caller chose
through the API. A report is believed only when the SCP itself recorded that this caller
missed that callee within ``[ivr] choice_window`` seconds (so a media server cannot invent a
callback and charge it), and each missed call takes one choice of a kind. Then it writes
exactly what the same digit writes in ``ctr`` / ``etc`` mode, with the same functions
(:func:`scp.service.calls.callback_record` / :func:`~scp.service.calls.voicemail_record`,
carried out by :func:`scp.flows.calls.write_records`), so it is stored, charged and later
notified (:func:`scp.flows.notify.on_present`) alike:

* ``callback`` (digit 1): callback request + per-use fee CDR for the caller;
* ``voicemail`` (digit 2): the expected voice message, completed by the deposit
  (:mod:`scp.flows.voicemail`); refused when the callee has no voicemail service or a full
  mailbox;
* ``operator`` (digit 0): nothing is written in ctr / etc mode either; the answer carries the
  operator's number.

All in one transaction with the audit row (channel and client of the caller of this flow).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from scp.flows.calls import write_records
from scp.flows.provisioning import Db, audit, transaction
from scp.service.calls import CallSettings, callback_record, voicemail_record
from scp.service.notifications import local_day
from scp.service.provisioning import Actor, Conflict, InvalidInput, valid_msisdn
from scp.service.voicemail import MailboxFull
from scp.state import voicemail_store

if TYPE_CHECKING:
    from scp.config import Config

__all__ = ["CHOICES", "ChoiceTaken", "caller_choice"]

CHOICES = ("callback", "voicemail", "operator")


@dataclass(frozen=True, slots=True)
class ChoiceTaken:
    """A caller's choice as the SCP accepted it."""

    choice: str
    caller: str
    callee: str
    missed_call_id: int
    missed_at: dt.datetime
    route: str | None  # the number the IVR connects the caller to (deposit, operator)
    callback_id: int | None = None
    expires_at: dt.datetime | None = None
    fee: str | None = None  # the callback's per-use fee (CNY), charged when its SMS goes out


async def caller_choice(
    db: Db, actor: Actor, cfg: Config, *, choice: str, caller: str, callee: str, now: dt.datetime
) -> ChoiceTaken:
    """Carry out the caller's ``choice`` reported at ``now`` (see the module docstring).

    InvalidInput (naming ``caller``) when no such missed call is on record; Conflict when that
    missed call already took this choice or the callee cannot take it.
    """
    if choice not in CHOICES:
        raise InvalidInput("choice", f"{choice!r} is not one of {', '.join(CHOICES)}")
    caller = valid_msisdn(caller, "caller")
    callee = valid_msisdn(callee, "callee")
    s = CallSettings.from_config(cfg)
    window = cfg.ivr.choice_window
    async with transaction(db) as conn:
        mc = await conn.fetchrow(
            "SELECT id, occurred_at, call_ref FROM missed_call"
            " WHERE callee = $1 AND caller = $2 AND occurred_at BETWEEN $3 AND $4"
            " ORDER BY occurred_at DESC, id DESC LIMIT 1 FOR UPDATE",
            callee,
            caller,
            now - dt.timedelta(seconds=window),
            now,
        )
        if mc is None:
            raise InvalidInput(
                "caller",
                f"{caller} has no missed call to {callee} on record in the last {window} s",
            )
        call_ref = mc["call_ref"] or f"missed:{mc['id']}"
        taken = ChoiceTaken(choice, caller, callee, mc["id"], mc["occurred_at"], None)
        if choice == "callback":
            if await conn.fetchval(
                "SELECT 1 FROM callback_request WHERE missed_call_id = $1", mc["id"]
            ):
                raise Conflict(f"missed call {mc['id']} already has its callback request")
            request = callback_record(caller, callee, now, s)
            await write_records(conn, [request], cfg=cfg, missed_call_id=mc["id"], notify=None)
            cb_id = await conn.fetchval(
                "SELECT id FROM callback_request WHERE missed_call_id = $1", mc["id"]
            )
            taken = ChoiceTaken(
                choice,
                caller,
                callee,
                mc["id"],
                mc["occurred_at"],
                None,
                cb_id,
                request.expires_at,
                str(s.callback_fee),
            )
        elif choice == "voicemail":
            services = await conn.fetchval(
                "SELECT array_agg(service) FROM subscription WHERE msisdn = $1"
                " AND start_date <= $2 AND (end_date IS NULL OR $2 < end_date)",
                callee,
                local_day(now, cfg),
            )
            if "voicemail" not in (services or ()):
                raise Conflict(f"subscriber {callee} has no voicemail service")
            if await conn.fetchval(
                "SELECT 1 FROM voicemail WHERE callee = $1 AND caller = $2 AND recorded_at >= $3",
                callee,
                caller,
                mc["occurred_at"],
            ):
                raise Conflict(f"missed call {mc['id']} already has its voice message")
            if await voicemail_store.count_messages(conn, callee) >= cfg.voicemail.max_messages:
                raise MailboxFull("callee", f"the mailbox of {callee} is full")
            rec = voicemail_record(callee, caller, now, s, call_ref=call_ref)
            await write_records(conn, [rec], cfg=cfg, missed_call_id=mc["id"], notify=None)
            taken = ChoiceTaken(
                choice, caller, callee, mc["id"], mc["occurred_at"], s.voicemail_deposit
            )
        else:
            taken = ChoiceTaken(choice, caller, callee, mc["id"], mc["occurred_at"], s.operator)
        await audit(conn, actor, f"ivr-{choice}", "missed_call", str(mc["id"]), None, taken)
    return taken
