"""SMS commands to the service number (来话点播 by SMS): the self-care channel "sms",
carried out in the MO's transaction.

A mobile-originated SMS to ``[notify].service_number`` is one command (CX, KT [s], QX [s],
KTYM, QXYM, LY, HMD n, QHMD n, or anything else for the help text; the table and the parsing are in
:mod:`scp.service.smscmd`). KT from a number that is not a subscriber enrols it (channel
``sms``), with the missed-call service and the one it named.

Each command calls the same provisioning functions as the CLI and the IVR
(:mod:`scp.flows.provisioning`, channel ``sms``; ARCHITECTURE §2), so the channels stay
identical. The reply is an outbox SMS keyed ``mo-reply:<sms_mo id>`` and a charged command
writes one CDR (record_type ``sms``, ``per_sms`` of the ``[notify].command_category`` tariff
for the sender) - all in the command's transaction, which also marks the ``sms_mo`` row handled
(:meth:`scp.flows.outbox.NotifyingOutbox.handle_mo`; the row itself was committed before,
on its own, when the SMSC's deliver_sm was answered). That transaction commits everything or
nothing, and a retry of a failed one (the MO re-scan) writes the reply under the same key, so a
command is answered and charged exactly once per MO row.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import asyncpg

from scp.flows import provisioning as prov
from scp.flows import voicemail as voicemail_flow
from scp.service.notifications import (
    Templates,
    display_number,
    local_day,
    notify_tz,
    render,
    service_name,
    templates_for,
    time_values,
)
from scp.service.provisioning import (
    Actor,
    Conflict,
    InvalidInput,
    NotFound,
    ProvisioningError,
    valid_msisdn,
)
from scp.service.smscmd import Command, parse_command, service_number
from scp.state import notify_store as store

if TYPE_CHECKING:
    from scp.config import Config

__all__ = ["handle_mo"]


async def _reply(
    conn: asyncpg.Connection, cmd: Command, source: str, at: dt.datetime, cfg: Config, t: Templates
) -> str:
    """Carry out ``cmd`` for ``source``; the reply text."""
    actor = Actor("sms", source)
    tz = notify_tz(cfg)
    hours = cfg.service.window_hours
    if cmd.verb == "KT":
        service = cmd.arg or "missed-call"
        await prov.enable_service(conn, actor, source, service, today=local_day(at, cfg))
        if not cmd.arg:
            return t["cmd_kt"]
        return render(t["cmd_kt_service"], service=service_name(service, t))
    if cmd.verb == "QX":
        service = cmd.arg or "missed-call"
        try:
            await prov.disable_service(conn, actor, source, service, today=local_day(at, cfg))
        except NotFound:
            if not cmd.arg:
                return t["cmd_qx_none"]
            return render(t["cmd_qx_service_none"], service=service_name(service, t))
        if not cmd.arg:
            return t["cmd_qx"]
        return render(t["cmd_qx_service"], service=service_name(service, t))
    if cmd.verb == "CX":
        calls = await store.recent_missed_calls(conn, source, at - dt.timedelta(hours=hours))
        if not calls:
            return render(t["cmd_cx_none"], hours=hours)
        items = t["cmd_cx_separator"].join(
            render(
                t["cmd_cx_item"],
                caller=display_number(c.caller, t),
                **time_values(c.occurred_at, tz),
            )
            for c in calls
        )
        return render(t["cmd_cx"], hours=hours, count=len(calls), items=items)
    if cmd.verb == "LY":
        new, total = await voicemail_flow.mailbox_counts(conn, source)
        if not total:
            return t["cmd_ly_none"]
        retrieval = display_number(cfg.call.voicemail_retrieval, t)
        return render(t["cmd_ly"], new=new, total=total, retrieval=retrieval)
    number = cmd.arg
    try:
        if cmd.verb == "HMD":
            entry = await prov.blacklist_add(conn, actor, source, number)
            return render(t["cmd_hmd"], number=display_number(entry.number, t))
        e164 = valid_msisdn(number, "number")
        try:
            await prov.blacklist_del(conn, actor, source, e164)
        except NotFound:
            return render(t["cmd_qhmd_none"], number=display_number(e164, t))
        return render(t["cmd_qhmd"], number=display_number(e164, t))
    except InvalidInput:
        return render(t["cmd_bad_number"], number=number or "-")


async def handle_mo(
    conn: asyncpg.Connection,
    *,
    mo_id: int,
    source: str,
    destination: str,
    text: str,
    at: dt.datetime,
    cfg: Config,
) -> str | None:
    """Answer one MO SMS (in its transaction); the reply text, or None if not for us."""
    if destination.lstrip("+") != service_number(cfg):
        return None
    try:
        sender = valid_msisdn(source, "source")
    except InvalidInput:
        await store.mark_mo_handled(conn, mo_id, at)  # nobody to answer or charge
        return None
    day = local_day(at, cfg)
    rcpt = await store.load_recipient(conn, sender, day)
    t = templates_for(cfg, rcpt.language if rcpt else None)
    cmd = parse_command(text)
    if cmd.verb == "KT" and rcpt is None:
        # A number that is not a subscriber yet enrols itself (with the service it named).
        services = ("missed-call", cmd.arg) if cmd.arg else ("missed-call",)
        try:
            async with conn.transaction():
                await prov.add_subscriber(
                    conn,
                    Actor("sms", sender),
                    sender,
                    today=day,
                    services=services,
                    language=cfg.notify.language,
                )
        except Conflict:  # enrolled meanwhile by another channel: KT as for a subscriber
            pass
        rcpt = await store.load_recipient(conn, sender, day)
    if cmd.verb == "HELP":
        reply = t["cmd_help"]
    elif rcpt is None:
        reply = t["cmd_not_subscriber"]
    else:
        try:
            # a savepoint: a refused change leaves the MO and its reply intact
            async with conn.transaction():
                reply = await _reply(conn, cmd, sender, at, cfg, t)
        except NotFound:
            reply = t["cmd_not_subscriber"]
        except ProvisioningError:
            reply = t["cmd_help"]
        category = cfg.notify.command_category
        charge = await store.sms_rate(conn, category, sender, day)
        await store.insert_cdr(
            conn,
            msisdn=sender,
            service=f"sms-command:{cmd.verb.lower()}",
            call_category=category,
            at=at,
            charge=charge,
            call_ref=f"mo:{mo_id}",
        )
    await store.enqueue_sms(
        conn,
        key=f"mo-reply:{mo_id}",
        destination=sender,
        text=reply,
        not_before=at,
        source=service_number(cfg),
    )
    await store.mark_mo_handled(conn, mo_id, at)
    return reply
