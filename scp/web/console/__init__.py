"""The operator console (人工坐席), mounted at ``/console/``.

Staff log in with the name and password of ``mcn-scp operator add`` (sessions expire, logins
are throttled). An **agent** finds a subscriber by number (``/console/subscribers/{msisdn}``
is that subscriber's page) and does for them everything the portal does (their voice messages
played, marked heard, deleted), plus the call
inquiry for any number (来话点播 is open to all users), PIN reset and unlock, the subscriber's
SMS with retry, and enrolling a new subscriber. A **supervisor** also manages the operator
accounts, ads, tariffs (added and removed) and the products' price lists (the monthly fees),
reads the audit log (by subscriber, agent, channel, time) and sees
the dashboard's charts. Every change is the flow every channel calls, as channel
``operator`` with the agent's name in the audit log.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import Response

from scp.flows import billing
from scp.flows import provisioning as prov
from scp.flows import selfservice as flows
from scp.service.billing import PRODUCTS, price_on
from scp.service.notifications import local_day, notify_tz
from scp.service.provisioning import (
    CALL_CATEGORIES,
    CHANNELS,
    SERVICES,
    Actor,
    Conflict,
    InvalidInput,
    NotFound,
    ProvisioningError,
    valid_msisdn,
)
from scp.service.webauth import ROLES, SessionInfo
from scp.web.context import WebContext
from scp.web.ui import selfcare
from scp.web.ui.charts import bar_chart, legend
from scp.web.ui.forms import FORM_FIELDS, form_str, page_number
from scp.web.ui.i18n import translator
from scp.web.ui.pages import Site, redirect, safe_next

TEMPLATES = Path(__file__).resolve().parent / "templates"
COOKIE = "mcn_console"
PREFIX = "/console/"

# What the console offers, against the self-service table (scp.service.parity.FUNCTIONS): the
# subscriber page's sections (anchors), and the console's own pages.
OFFERS = {
    "missed-calls": "/console/subscribers/{msisdn}#missed",
    "callbacks": "/console/subscribers/{msisdn}#callbacks-h",
    "voicemail": "/console/subscribers/{msisdn}#voicemail",
    "service-on-off": "/console/subscribers/{msisdn}#services",
    "blacklist": "/console/subscribers/{msisdn}#blacklist-h",
    "forward-to": "/console/subscribers/{msisdn}#settings",
    "notify-mode": "/console/subscribers/{msisdn}#settings",
    "language": "/console/subscribers/{msisdn}#settings",
    "change-pin": "/console/subscribers/{msisdn}#set-pin",
    "pin-reset-unlock": "/console/subscribers/{msisdn}#pin",
    "charges": "/console/subscribers/{msisdn}#charges",
    "sms-outbox": "/console/subscribers/{msisdn}#sms",
    "enrol": "/console/enrol",
    "call-inquiry": "/console/calls",
    "operator": "/console/",
}

Handler = Callable[[Request, SessionInfo], Awaitable[Response]]


def install(app: FastAPI, ctx: WebContext) -> None:
    site = Site(
        ctx,
        templates=TEMPLATES,
        cookie=COOKIE,
        prefix=PREFIX,
        login=PREFIX + "login",
        site_name="Operator console",
    )
    cfg = ctx.cfg

    def refusal(request: Request, sess: SessionInfo, supervisor: bool) -> Response | None:
        """What a session that may not see the page gets: the login (no staff session) or a
        403 (an agent on a supervisor's page); None: it may."""
        if sess.kind != "operator":
            return site.to_login(request)
        if supervisor and sess.role != "supervisor":
            return site.page(request, "message.html", sess, status=403, message="forbidden")
        return None

    def staff(
        supervisor: bool = False,
    ) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
        """A page for logged-in staff (a supervisor's page: 403 for an agent)."""

        def wrap(fn: Handler) -> Callable[[Request], Awaitable[Response]]:
            async def page(request: Request) -> Response:
                sess = await site.session(request)
                if sess is None:
                    return site.to_login(request)
                return refusal(request, sess, supervisor) or await fn(request, sess)

            page.__name__ = fn.__name__
            return page

        return wrap

    def change(
        supervisor: bool = False,
    ) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
        """A form's POST: the CSRF token first, then the role."""

        def wrap(fn: Handler) -> Callable[[Request], Awaitable[Response]]:
            async def post(request: Request) -> Response:
                sess, _ = await site.checked_form(request)
                if sess is None:
                    return site.refused(request)
                return refusal(request, sess, supervisor) or await fn(request, sess)

            post.__name__ = fn.__name__
            return post

        return wrap

    def actor(sess: SessionInfo) -> Actor:
        return Actor("operator", sess.subject or "?")

    def route(path: str, method: str = "GET") -> Callable[[Callable[..., Any]], Any]:
        return app.api_route(PREFIX + path, methods=[method], include_in_schema=False)

    # -- login ----------------------------------------------------------------------------------

    @route("login")
    async def login_page(request: Request) -> Response:
        sess = await site.session(request)
        if sess is not None and sess.kind == "operator":
            return redirect(safe_next(request.query_params.get("next"), PREFIX))
        sess = await site.form_session(request)
        return site.page(request, "login.html", sess, next=request.query_params.get("next", ""))

    @route("login", "POST")
    async def login(request: Request) -> Response:
        sess, form = await site.checked_form(request)
        if sess is None:
            return site.refused(request)
        got = await flows.operator_login(
            ctx.pool,
            form_str(form, "name", 64),
            form_str(form, "password", 200),
            address=site.address(request),
            now=site.now(),
            s=site.settings,
        )
        if isinstance(got, str):
            key = "throttled" if got == "throttled" else "wrong-password"
            return redirect(f"{PREFIX}login?e={key}")
        target = safe_next(form_str(form, "next", 500), PREFIX)
        resp = redirect(target if target.startswith(PREFIX) else PREFIX)
        await site.login(request, resp, "operator", got.name, via="password", role=got.role)
        return resp

    @route("logout", "POST")
    async def logout(request: Request) -> Response:
        sess, _ = await site.checked_form(request)
        if sess is None:
            return site.refused(request)
        resp = redirect(PREFIX + "login")
        await site.logout(request, resp)
        return resp

    # -- agent pages ----------------------------------------------------------------------------

    @route("")
    @staff()
    async def home(request: Request, sess: SessionInfo) -> Response:
        return site.page(request, "home.html", sess, services=SERVICES)

    @route("find")
    @staff()
    async def find(request: Request, sess: SessionInfo) -> Response:
        try:
            msisdn = valid_msisdn(request.query_params.get("msisdn", "")[:20], "msisdn")
        except InvalidInput:
            return redirect(f"{PREFIX}?e=invalid&f=msisdn")
        return redirect(f"{PREFIX}subscribers/{msisdn}")

    @app.get(PREFIX + "subscribers/{msisdn}", include_in_schema=False)
    @staff()
    async def subscriber_page(request: Request, sess: SessionInfo) -> Response:
        msisdn = request.path_params["msisdn"]
        now = site.now()
        try:
            m = valid_msisdn(msisdn, "msisdn")
            view = await selfcare.load(ctx, m, now)
        except (InvalidInput, NotFound):
            return site.page(
                request, "missing.html", sess, status=404, msisdn=msisdn[:20], services=SERVICES
            )
        if m != msisdn:
            return redirect(f"{PREFIX}subscribers/{m}")
        missed = await flows.missed_calls_page(
            ctx.pool, m, now=now, cfg=cfg, page=page_number(request)
        )
        callbacks = await prov.list_callbacks(ctx.pool, callee=m, limit=50)
        sms = await prov.list_sms(ctx.pool, destination=m, limit=50)
        # its own page parameter: the missed calls' pager says "page"
        charges, total = await flows.charges_page(
            ctx.pool, m, page=page_number(request, "charges_page"), per_page=20
        )
        return site.page(
            request,
            "subscriber.html",
            sess,
            view=view,
            missed=missed,
            hours=cfg.service.window_hours,
            callbacks=callbacks,
            sms=sms,
            charges=charges,
            total=total,
            base=f"{PREFIX}subscribers/{m}",
            CODE_SMS_KEY=flows.CODE_SMS_KEY,
        )

    def subscriber_action(name: str) -> None:
        @app.post(PREFIX + "subscribers/{msisdn}/" + name, include_in_schema=False)
        @change()
        async def post(request: Request, sess: SessionInfo) -> Response:
            msisdn = request.path_params["msisdn"]
            base = f"{PREFIX}subscribers/{quote(msisdn)}"
            form = await request.form()
            try:
                key = await selfcare.apply(ctx, actor(sess), msisdn, name, form, site.now())
            except selfcare.Refused as r:
                return redirect(f"{base}?e={r.key}&f={r.field}#{name}")
            return redirect(f"{base}?m={key}#{name}")

    for name in selfcare.ACTIONS:
        subscriber_action(name)

    @app.get(PREFIX + "subscribers/{msisdn}/voicemail/{vm_id}/audio", include_in_schema=False)
    @staff()
    async def voicemail_audio(request: Request, sess: SessionInfo) -> Response:
        """The subscriber page's player: that subscriber's recordings only."""
        p = request.path_params
        return await site.recording(request, p["vm_id"], owner=p["msisdn"])

    @app.post(PREFIX + "subscribers/{msisdn}/pin", include_in_schema=False)
    @change()
    async def pin_action(request: Request, sess: SessionInfo) -> Response:
        msisdn = request.path_params["msisdn"]
        base = f"{PREFIX}subscribers/{quote(msisdn)}"
        form = await request.form()
        op = form_str(form, "op")
        try:
            if op == "unlock":
                await prov.unlock_pin(ctx.pool, actor(sess), msisdn)
                return redirect(f"{base}?m=unlocked#pin")
            if op == "reset":
                await flows.reset_pin(ctx.pool, actor(sess), msisdn)
                return redirect(f"{base}?m=pin-reset#pin")
            if op == "set":  # the subscriber tells the agent the new PIN (the portal's flow)
                new = form_str(form, "new", 20)
                if new != form_str(form, "again", 20):
                    return redirect(f"{base}?e=pin-mismatch&f=pin#set-pin")
                await flows.set_pin(ctx.pool, actor(sess), msisdn, new)
                return redirect(f"{base}?m=pin-changed#set-pin")
        except InvalidInput as e:
            f = "pin" if e.field == "pin" else "msisdn"
            return redirect(f"{base}?e=invalid&f={f}#set-pin")
        except ProvisioningError:
            return redirect(f"{base}?e=refused#pin")
        return redirect(f"{base}?e=invalid&f=op#pin")

    @app.post(PREFIX + "subscribers/{msisdn}/sms/{sms_id}/retry", include_in_schema=False)
    @change()
    async def sms_retry(request: Request, sess: SessionInfo) -> Response:
        msisdn = request.path_params["msisdn"]
        base = f"{PREFIX}subscribers/{quote(msisdn)}"
        try:
            sms_id = int(request.path_params["sms_id"])
            if not 0 < sms_id < 2**63 or not await flows.sms_is_for(ctx.pool, sms_id, msisdn):
                raise NotFound("sms")  # only this subscriber's SMS from here
            await prov.retry_sms(ctx.pool, actor(sess), sms_id, now=site.now())
        except (ValueError, ProvisioningError):
            return redirect(f"{base}?e=refused#sms")
        return redirect(f"{base}?m=retried#sms")

    @route("enrol", "POST")
    @change()
    async def enrol(request: Request, sess: SessionInfo) -> Response:
        form = await request.form()
        msisdn = form_str(form, "msisdn", 20)
        services = [s for s in SERVICES if form.get(f"svc-{s}") == "1"]
        try:
            sub = await prov.add_subscriber(
                ctx.pool,
                actor(sess),
                msisdn,
                today=local_day(site.now(), cfg),
                services=services,
                language=form_str(form, "language") or "zh",
            )
        except InvalidInput as e:
            return _invalid(f"{PREFIX}enrol?msisdn={quote(msisdn)}&", e)
        except Conflict:
            return redirect(f"{PREFIX}enrol?msisdn={quote(msisdn)}&e=exists")
        return redirect(f"{PREFIX}subscribers/{sub.msisdn}?m=enrolled")

    @route("enrol")
    @staff()
    async def enrol_page(request: Request, sess: SessionInfo) -> Response:
        return site.page(
            request,
            "missing.html",
            sess,
            msisdn=request.query_params.get("msisdn", "")[:20],
            services=SERVICES,
        )

    @route("calls")
    @staff()
    async def calls(request: Request, sess: SessionInfo) -> Response:
        number = request.query_params.get("number", "")[:20]
        rows: list[Any] = []
        if number:
            try:
                rows = await flows.calls_of_number(ctx.pool, number, now=site.now(), cfg=cfg)
            except InvalidInput:
                return redirect(f"{PREFIX}calls?e=invalid&f=number")
        return site.page(
            request, "calls.html", sess, number=number, rows=rows, hours=cfg.service.window_hours
        )

    # -- supervisor pages -----------------------------------------------------------------------

    @route("operators")
    @staff(supervisor=True)
    async def operators(request: Request, sess: SessionInfo) -> Response:
        ops = await flows.list_operators(ctx.pool)
        return site.page(request, "operators.html", sess, operators=ops, roles=ROLES)

    @route("operators", "POST")
    @change(supervisor=True)
    async def operator_add(request: Request, sess: SessionInfo) -> Response:
        form = await request.form()
        try:
            await flows.add_operator(
                ctx.pool,
                actor(sess),
                form_str(form, "name", 64),
                form_str(form, "role"),
                form_str(form, "password", 200),
            )
        except InvalidInput as e:
            return redirect(f"{PREFIX}operators?e=invalid&f={e.field}")
        except Conflict:
            return redirect(f"{PREFIX}operators?e=exists")
        return redirect(f"{PREFIX}operators?m=added")

    @app.post(PREFIX + "operators/{name}/delete", include_in_schema=False)
    @change(supervisor=True)
    async def operator_del(request: Request, sess: SessionInfo) -> Response:
        try:
            await flows.delete_operator(ctx.pool, actor(sess), request.path_params["name"])
        except ProvisioningError:
            return redirect(f"{PREFIX}operators?e=refused")
        return redirect(f"{PREFIX}operators?m=deleted")

    @app.post(PREFIX + "operators/{name}/password", include_in_schema=False)
    @change(supervisor=True)
    async def operator_passwd(request: Request, sess: SessionInfo) -> Response:
        form = await request.form()
        try:
            await flows.set_operator_password(
                ctx.pool, actor(sess), request.path_params["name"], form_str(form, "password", 200)
            )
        except InvalidInput:
            return redirect(f"{PREFIX}operators?e=invalid&f=password")
        except ProvisioningError:
            return redirect(f"{PREFIX}operators?e=refused")
        return redirect(f"{PREFIX}operators?m=password-set")

    @route("ads")
    @staff(supervisor=True)
    async def ads(request: Request, sess: SessionInfo) -> Response:
        return site.page(request, "ads.html", sess, ads=await prov.list_ads(ctx.pool))

    @route("ads", "POST")
    @change(supervisor=True)
    async def ad_add(request: Request, sess: SessionInfo) -> Response:
        form = await request.form()
        tz = notify_tz(cfg)
        try:
            start = _time(form_str(form, "window_start"), "window_start") or dt.time(0, 0)
            end = _time(form_str(form, "window_end"), "window_end")
            await prov.add_ad(
                ctx.pool,
                actor(sess),
                form_str(form, "text", 400),
                now=site.now(),
                window_start=start,
                window_end=end,
                caller_prefixes=_csv(form_str(form, "caller_prefixes", 400)),
                user_groups=_csv(form_str(form, "user_groups", 400)),
                priority=_int(form_str(form, "priority") or "0", "priority"),
                valid_from=_when(form_str(form, "valid_from"), tz, "valid_from"),
                valid_until=_when(form_str(form, "valid_until"), tz, "valid_until"),
            )
        except InvalidInput as e:
            return _invalid(f"{PREFIX}ads?", e)
        return redirect(f"{PREFIX}ads?m=added")

    @app.post(PREFIX + "ads/{ad_id}/delete", include_in_schema=False)
    @change(supervisor=True)
    async def ad_del(request: Request, sess: SessionInfo) -> Response:
        try:
            await prov.delete_ad(ctx.pool, actor(sess), int(request.path_params["ad_id"]))
        except (ValueError, ProvisioningError):
            return redirect(f"{PREFIX}ads?e=refused")
        return redirect(f"{PREFIX}ads?m=deleted")

    @route("rates")
    @staff(supervisor=True)
    async def rates(request: Request, sess: SessionInfo) -> Response:
        return site.page(
            request,
            "rates.html",
            sess,
            rates=await prov.list_rates(ctx.pool),
            categories=CALL_CATEGORIES,
        )

    @route("rates", "POST")
    @change(supervisor=True)
    async def rate_add(request: Request, sess: SessionInfo) -> Response:
        form = await request.form()
        try:
            await prov.add_rate(
                ctx.pool,
                actor(sess),
                form_str(form, "call_category"),
                form_str(form, "prefix", 20),
                today=local_day(site.now(), cfg),
                per_minute=form_str(form, "per_minute") or "0",
                per_sms=form_str(form, "per_sms") or "0",
                per_use=form_str(form, "per_use") or "0",
                monthly_fee=form_str(form, "monthly_fee") or "0",
                valid_from=form_str(form, "valid_from") or None,
            )
        except InvalidInput as e:
            return _invalid(f"{PREFIX}rates?", e)
        return redirect(f"{PREFIX}rates?m=added")

    @app.post(PREFIX + "rates/{rate_id}/delete", include_in_schema=False)
    @change(supervisor=True)
    async def rate_del(request: Request, sess: SessionInfo) -> Response:
        """`mcn-scp rates del`: the line goes; the one before it in time is in force again."""
        try:
            await prov.delete_rate(ctx.pool, actor(sess), int(request.path_params["rate_id"]))
        except (ValueError, ProvisioningError):
            return redirect(f"{PREFIX}rates?e=refused")
        return redirect(f"{PREFIX}rates?m=deleted")

    @route("products")
    @staff(supervisor=True)
    async def products(request: Request, sess: SessionInfo) -> Response:
        """The products' price lists (`mcn-scp products list`): the monthly fees the portal shows."""
        today = local_day(site.now(), cfg)
        lines = await billing.list_prices(ctx.pool)
        in_force = {p for s in PRODUCTS if (p := price_on(lines, s, today)) is not None}
        return site.page(
            request,
            "products.html",
            sess,
            lines=lines,
            in_force=in_force,
            products=PRODUCTS,
            today=today,
        )

    @route("products", "POST")
    @change(supervisor=True)
    async def product_set(request: Request, sess: SessionInfo) -> Response:
        """`mcn-scp products set SERVICE --monthly-fee --valid-from`."""
        form = await request.form()
        try:
            await billing.set_price(
                ctx.pool,
                actor(sess),
                form_str(form, "service"),
                form_str(form, "monthly_fee", 20),
                today=local_day(site.now(), cfg),
                valid_from=form_str(form, "valid_from", 20) or None,
            )
        except InvalidInput as e:
            return _invalid(f"{PREFIX}products?", e)
        return redirect(f"{PREFIX}products?m=saved")

    @route("audit")
    @staff(supervisor=True)
    async def audit(request: Request, sess: SessionInfo) -> Response:
        q = request.query_params
        tz = notify_tz(cfg)
        try:
            since = _when(q.get("since", "")[:40], tz, "since")
            until = _when(q.get("until", "")[:40], tz, "until")
            before = _int(q.get("before", "")[:20], "before") if q.get("before") else None
            channel = q.get("channel", "")
            if channel and channel not in CHANNELS:
                raise InvalidInput("channel", f"{channel[:20]!r} is not a channel")
        except InvalidInput as e:
            # a filter that cannot be applied is said, never dropped: no unfiltered rows
            return site.page(
                request, "audit.html", sess, status=400, rows=[], channels=CHANNELS, bad=e.field
            )
        rows = await flows.audit_page(
            ctx.pool,
            subject=q.get("subscriber", "")[:40] or None,
            agent=q.get("agent", "")[:40] or None,
            channel=channel or None,
            since=since,
            until=until,
            before_id=before,
        )
        return site.page(request, "audit.html", sess, rows=rows, channels=CHANNELS, bad="")

    @route("dashboard")
    @staff(supervisor=True)
    async def dashboard(request: Request, sess: SessionInfo) -> Response:
        d = await flows.dashboard(ctx.pool, now=site.now(), cfg=cfg, days=7)
        t = translator(site.language(request))
        labels = [f"{x.month}/{x.day}" for x in d.days]
        missed = [(t(k), v) for k, v in d.missed.items()]
        sms = [(t(k), v) for k, v in d.sms.items()]
        charts = [
            (
                t("Missed calls by reason"),
                bar_chart(labels, missed, title=t("Missed calls by reason"), stacked=True),
                legend([n for n, _ in missed]),
            ),
            (
                t("SMS sent, delivered, failed"),
                bar_chart(labels, sms, title=t("SMS sent, delivered, failed")),
                legend([n for n, _ in sms]),
            ),
            (
                t("Callback requests"),
                bar_chart(
                    labels, [(t("Callback requests"), d.callbacks)], title=t("Callback requests")
                ),
                "",
            ),
            (
                t("Revenue (CNY)"),
                bar_chart(labels, [(t("Revenue (CNY)"), d.revenue)], title=t("Revenue (CNY)")),
                "",
            ),
        ]
        return site.page(
            request, "dashboard.html", sess, charts=charts, days=len(d.days), tz=cfg.notify.timezone
        )


def _invalid(back: str, e: InvalidInput) -> Response:
    """Back to the form at ``back`` (a URL ending in ``?`` or ``&``), saying which field was
    refused (only a field the form has: the page names it beside that input)."""
    f = e.field if e.field in FORM_FIELDS else ""
    return redirect(f"{back}e=invalid&f={f}")


def _csv(v: str) -> list[str]:
    return [x.strip() for x in v.replace(";", ",").split(",") if x.strip()]


def _int(v: str, name: str) -> int:
    try:
        return int(v)
    except ValueError:
        raise InvalidInput(name, f"{v!r} is not a whole number") from None


def _time(v: str, name: str) -> dt.time | None:
    if not v:
        return None
    try:
        return dt.time.fromisoformat(v)
    except ValueError:
        raise InvalidInput(name, f"{v!r} is not HH:MM") from None


def _when(v: str, tz: Any, name: str) -> dt.datetime | None:
    """A date or date and time from a form; without an offset, in the network's time zone."""
    if not v:
        return None
    try:
        d = dt.datetime.fromisoformat(v)
    except ValueError:
        raise InvalidInput(name, f"{v!r} is not a date") from None
    return d if d.tzinfo else d.replace(tzinfo=tz)


__all__ = ["OFFERS", "install"]
