"""The self-service functions as the portal and the console both offer them: what a page
shows (:func:`load`) and what its forms change (:func:`apply`), for one subscriber.

The caller decides who the subscriber is (the portal: the session's own number, never a form
field; the console: the page's number) and who acts (``Actor("web", msisdn)`` or
``Actor("operator", agent)``); everything else is the flows every channel calls.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from scp.config import Config
from scp.flows import provisioning as prov
from scp.flows import selfservice as flows
from scp.flows import voicemail as vm
from scp.service.notifications import local_day
from scp.service.provisioning import (
    LANGUAGES,
    NOTIFY_MODES,
    SERVICES,
    VOICEMAIL_NOTIFY,
    Actor,
    BlacklistEntry,
    InvalidInput,
    NotFound,
    ProvisioningError,
    Subscriber,
)
from scp.service.voicemail import VoiceMessage
from scp.web.context import WebContext
from scp.web.ui.forms import FORM_FIELDS, form_str

# What each form posts to, below the subscriber's own URL (portal "/", console
# "/console/subscribers/{msisdn}/"); the portal's pages are under the same names.
ACTIONS = ("services", "blacklist", "settings", "voicemail")


@dataclass(frozen=True)
class View:
    """What the self-service sections show for one subscriber."""

    sub: Subscriber
    today: dt.date
    fees: Mapping[str, Decimal]
    blacklist: list[BlacklistEntry]
    voicemail: list[VoiceMessage]


async def load(ctx: WebContext, msisdn: str, now: dt.datetime) -> View:
    """The subscriber (NotFound), today's services, the fees, the blacklist, the mailbox
    (all of it: ``[voicemail] max_messages`` bounds it)."""
    sub = await prov.get_subscriber(ctx.pool, msisdn)
    today = local_day(now, ctx.cfg)
    fees = await flows.service_fees(ctx.pool, today=today)
    entries = await prov.blacklist_list(ctx.pool, msisdn)
    messages = await vm.list_messages(ctx.pool, msisdn, limit=ctx.cfg.voicemail.max_messages)
    return View(sub, today, fees, entries, messages)


class Refused(Exception):
    """A form's request was refused: ``key`` names the message, ``field`` the bad field."""

    def __init__(self, key: str, field: str = "") -> None:
        super().__init__(key)
        self.key = key
        self.field = field


async def apply(
    ctx: WebContext,
    actor: Actor,
    msisdn: str,
    action: str,
    form: Mapping[str, Any],
    now: dt.datetime,
) -> str:
    """Carry out one self-service form for ``msisdn``; the message key of its outcome.

    Refused names the message (and the field) of a request that could not be carried out.
    """
    cfg: Config = ctx.cfg
    today = local_day(now, cfg)
    try:
        if action == "services":
            service, state = form_str(form, "service"), form_str(form, "state")
            if service not in SERVICES or state not in ("on", "off"):
                raise Refused("invalid", "service")
            if state == "on":
                await prov.enable_service(ctx.pool, actor, msisdn, service, today=today)
            else:
                await prov.disable_service(ctx.pool, actor, msisdn, service, today=today)
            return "saved"
        if action == "blacklist":
            op, number = form_str(form, "op"), form_str(form, "number", 20)
            prefix = form_str(form, "prefix") == "1" or form_str(form, "kind") == "prefix"
            if op == "add":
                await prov.blacklist_add(ctx.pool, actor, msisdn, number, prefix=prefix)
                return "added"
            if op == "del":
                await prov.blacklist_del(ctx.pool, actor, msisdn, number, prefix=prefix)
                return "removed"
            raise Refused("invalid", "op")
        if action == "settings":
            name, value = form_str(form, "field"), form_str(form, "value", 20)
            if name == "forward_to":
                await prov.update_subscriber(ctx.pool, actor, msisdn, forward_to=value or None)
            elif name == "notify_mode" and value in NOTIFY_MODES:
                await prov.update_subscriber(ctx.pool, actor, msisdn, notify_mode=value)
            elif name == "language" and value in LANGUAGES:
                await prov.update_subscriber(ctx.pool, actor, msisdn, language=value)
            else:
                raise Refused("invalid", name if name in FORM_FIELDS else "")
            return "saved"
        if action == "voicemail":
            return await _voicemail(ctx, actor, msisdn, form, now)
    except InvalidInput as e:
        raise Refused("invalid", e.field if e.field in FORM_FIELDS else "") from None
    except ProvisioningError:
        raise Refused("refused") from None
    raise Refused("invalid")


async def _voicemail(
    ctx: WebContext, actor: Actor, msisdn: str, form: Mapping[str, Any], now: dt.datetime
) -> str:
    """Mark a message heard, delete it (only ``msisdn``'s own: another's is not found), or
    set how new ones are told (voicemail_notify)."""
    op = form_str(form, "op")
    if op == "notify":
        value = form_str(form, "value", 20)
        if value not in VOICEMAIL_NOTIFY:
            raise Refused("invalid", "voicemail_notify")
        await prov.update_subscriber(ctx.pool, actor, msisdn, voicemail_notify=value)
        return "saved"
    if op not in ("heard", "delete"):
        raise Refused("invalid", "op")
    try:
        vm_id = int(form_str(form, "id", 20))
    except ValueError:
        raise Refused("invalid", "id") from None
    if not 1 <= vm_id < 2**63:
        raise Refused("invalid", "id")
    try:
        if op == "heard":
            await vm.mark_heard(ctx.pool, actor, vm_id, at=now, owner=msisdn)
            return "heard"
        await vm.delete_message(ctx.pool, actor, vm_id, at=now, owner=msisdn)
    except NotFound:
        raise Refused("no-message") from None
    return "deleted"
