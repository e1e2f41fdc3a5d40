"""The subscriber portal (网上营业厅), mounted at ``/``: the self-service of the IVR and more.

A subscriber logs in with the mobile number and the PIN of the self-service IVR (the same
check and the same lock: :func:`scp.flows.selfservice.subscriber_login`), or with a one-time
code by SMS when there is no PIN, it is forgotten, or the number is not a subscriber yet (it is
then enrolled); after a code the portal asks for a new PIN. Then: missed calls of the window
(来话点播), callback requests, voicemail (listed, played in the page with HTTP Range, marked
heard, deleted, how new ones are told), each service on / off, the blacklist, forward-to
number, notification mode, language, PIN, charges (:data:`OFFERS`). Every change is the flow
every channel calls, as channel ``web`` with the subscriber as actor; the number always comes
from the session, never from the request, so no URL or form field reaches another subscriber.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from scp.flows import provisioning as prov
from scp.flows import selfservice as flows
from scp.service.provisioning import Actor, InvalidInput, ProvisioningError
from scp.web.context import WebContext
from scp.web.ui import selfcare
from scp.web.ui.forms import form_str, page_number
from scp.web.ui.pages import Site, redirect, safe_next

TEMPLATES = Path(__file__).resolve().parent / "templates"
COOKIE = "mcn_portal"

# What the portal offers, against the self-service table (scp.service.parity.FUNCTIONS).
OFFERS = {
    "missed-calls": "/missed",
    "callbacks": "/callbacks",
    "voicemail": "/voicemail",
    "service-on-off": "/services",
    "blacklist": "/blacklist",
    "forward-to": "/settings",
    "notify-mode": "/settings",
    "language": "/settings",
    "change-pin": "/pin",
    "charges": "/charges",
    "enrol": "/code",
    "operator": "/",
}


def install(app: FastAPI, ctx: WebContext) -> None:
    site = Site(
        ctx,
        templates=TEMPLATES,
        cookie=COOKIE,
        prefix="/",
        login="/login",
        site_name="Missed-call service",
    )
    cfg = ctx.cfg

    async def subscriber(request: Request) -> str | None:
        sess = await site.session(request)
        return sess.subject if sess is not None and sess.kind == "subscriber" else None

    # -- login, codes, PIN ----------------------------------------------------------------------

    @app.get("/login", include_in_schema=False)
    async def login_page(request: Request) -> Response:
        if await subscriber(request):
            return redirect(safe_next(request.query_params.get("next"), "/"))
        sess = await site.form_session(request)
        return site.page(request, "login.html", sess, next=request.query_params.get("next", ""))

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        sess, form = await site.checked_form(request)
        if sess is None:
            return site.refused(request)
        number, pin = form_str(form, "number", 20), form_str(form, "pin", 20)
        res = await flows.subscriber_login(
            ctx.pool, number, pin, address=site.address(request), now=site.now(), s=site.settings
        )
        if res.outcome != "ok" or res.msisdn is None:
            key = {"locked": "locked", "no-pin": "no-pin", "throttled": "throttled"}.get(
                res.outcome, "wrong"
            )
            return redirect(f"/login?e={key}")
        resp = redirect(safe_next(form_str(form, "next", 500), "/"))
        await site.login(request, resp, "subscriber", res.msisdn, via="pin")
        await _language_cookie(request, resp, res.msisdn)
        return resp

    async def _language_cookie(request: Request, resp: Response, msisdn: str) -> None:
        """The pages speak the subscriber's language preference from the login on."""
        try:
            sub = await prov.get_subscriber(ctx.pool, msisdn)
        except ProvisioningError:
            return
        site.set_language(request, resp, sub.language)

    @app.post("/logout", include_in_schema=False)
    async def logout(request: Request) -> Response:
        sess, _ = await site.checked_form(request)
        if sess is None:
            return site.refused(request)
        resp = redirect("/login")
        await site.logout(request, resp)
        return resp

    @app.get("/code", include_in_schema=False)
    async def code_page(request: Request) -> Response:
        sess = await site.form_session(request)
        number = request.query_params.get("number", "")[:20]
        return site.page(request, "code.html", sess, number=number)

    @app.post("/code", include_in_schema=False)
    async def send_code(request: Request) -> Response:
        sess, form = await site.checked_form(request)
        if sess is None:
            return site.refused(request)
        number = form_str(form, "number", 20)
        try:
            outcome = await flows.send_code(
                ctx.pool,
                number,
                address=site.address(request),
                now=site.now(),
                cfg=cfg,
                s=site.settings,
                language=site.language(request),
            )
        except InvalidInput:
            return redirect("/code?e=invalid&f=number")
        key = "m=code-sent" if outcome == "sent" else "e=code-throttled"
        return redirect(f"/code?number={number}&{key}")

    @app.post("/code/verify", include_in_schema=False)
    async def verify_code(request: Request) -> Response:
        sess, form = await site.checked_form(request)
        if sess is None:
            return site.refused(request)
        number = form_str(form, "number", 20)
        res = await flows.check_code(
            ctx.pool,
            number,
            form_str(form, "code", 12),
            address=site.address(request),
            now=site.now(),
            cfg=cfg,
            s=site.settings,
            language=site.language(request),
        )
        if res.outcome != "ok" or res.msisdn is None:
            key = "throttled" if res.outcome == "throttled" else "wrong-code"
            return redirect(f"/code?number={number}&e={key}")
        resp = redirect("/pin")
        await site.login(request, resp, "subscriber", res.msisdn, via="code")
        await _language_cookie(request, resp, res.msisdn)
        return resp

    @app.get("/pin", include_in_schema=False)
    async def pin_page(request: Request) -> Response:
        msisdn = await subscriber(request)
        if msisdn is None:
            return site.to_login(request)
        sess = await site.session(request)
        return site.page(
            request, "pin.html", sess, need_old=sess is not None and sess.via != "code"
        )

    @app.post("/pin", include_in_schema=False)
    async def set_pin(request: Request) -> Response:
        sess, form = await site.checked_form(request)
        if sess is None:
            return site.refused(request)
        if sess.kind != "subscriber" or sess.subject is None:
            return site.to_login(request)
        msisdn = sess.subject
        new, again = form_str(form, "new", 20), form_str(form, "again", 20)
        if new != again:
            return redirect("/pin?e=pin-mismatch")
        if sess.via != "code":  # logged in by PIN: the current one proves it is the owner
            res = await flows.subscriber_login(
                ctx.pool,
                msisdn,
                form_str(form, "old", 20),
                address=site.address(request),
                now=site.now(),
                s=site.settings,
            )
            if res.outcome != "ok":
                return redirect(f"/pin?e={'locked' if res.outcome == 'locked' else 'wrong'}")
        try:
            # every session of the number ends, this one too: it is replaced just below
            await flows.set_pin(ctx.pool, Actor("web", msisdn), msisdn, new)
        except InvalidInput:
            return redirect("/pin?e=invalid&f=pin")
        # from now on the session is an ordinary one: changing the PIN again needs the PIN
        resp = redirect("/?m=pin-set")
        await site.login(request, resp, "subscriber", msisdn, via="pin")
        return resp

    # -- the functions --------------------------------------------------------------------------

    async def section(request: Request, template: str, **values: Any) -> Response:
        msisdn = await subscriber(request)
        if msisdn is None:
            return site.to_login(request)
        try:
            view = await selfcare.load(ctx, msisdn, site.now())
        except ProvisioningError:  # deleted meanwhile: the session means nothing any more
            resp = site.to_login(request)
            await site.logout(request, resp)
            return resp
        return site.page(
            request, template, await site.session(request), view=view, cfg=cfg, **values
        )

    @app.get("/", include_in_schema=False)
    async def home(request: Request) -> Response:
        msisdn = await subscriber(request)
        if msisdn is None:
            return site.to_login(request)
        pg = await flows.missed_calls_page(ctx.pool, msisdn, now=site.now(), cfg=cfg, per_page=1)
        return await section(request, "home.html", missed=pg)

    @app.get("/missed", include_in_schema=False)
    async def missed(request: Request) -> Response:
        msisdn = await subscriber(request)
        if msisdn is None:
            return site.to_login(request)
        pg = await flows.missed_calls_page(
            ctx.pool, msisdn, now=site.now(), cfg=cfg, page=page_number(request)
        )
        sess = await site.session(request)
        return site.page(request, "missed.html", sess, pg=pg, hours=cfg.service.window_hours)

    @app.get("/callbacks", include_in_schema=False)
    async def callbacks(request: Request) -> Response:
        msisdn = await subscriber(request)
        if msisdn is None:
            return site.to_login(request)
        rows = await prov.list_callbacks(ctx.pool, callee=msisdn, limit=100)
        return site.page(request, "callbacks.html", await site.session(request), rows=rows)

    @app.get("/voicemail/{vm_id}/audio", include_in_schema=False)
    async def voicemail_audio(request: Request) -> Response:
        """The page's player: the subscriber's own recordings only (another's is 404)."""
        msisdn = await subscriber(request)
        if msisdn is None:
            return site.to_login(request)
        return await site.recording(request, request.path_params["vm_id"], owner=msisdn)

    @app.get("/charges", include_in_schema=False)
    async def charges(request: Request) -> Response:
        msisdn = await subscriber(request)
        if msisdn is None:
            return site.to_login(request)
        pg, total = await flows.charges_page(ctx.pool, msisdn, page=page_number(request))
        return site.page(request, "charges.html", await site.session(request), pg=pg, total=total)

    for name in selfcare.ACTIONS:
        _function_pages(app, site, name, section, subscriber)


def _function_pages(
    app: FastAPI,
    site: Site,
    name: str,
    section: Callable[..., Awaitable[Response]],
    subscriber: Callable[[Request], Awaitable[str | None]],
) -> None:
    """GET /{name} shows the section, POST /{name} carries out its form."""

    @app.get(f"/{name}", include_in_schema=False, name=f"portal-{name}")
    async def show(request: Request) -> Response:
        return await section(request, f"{name}.html")

    @app.post(f"/{name}", include_in_schema=False, name=f"portal-{name}-post")
    async def change(request: Request) -> Response:
        sess, form = await site.checked_form(request)
        if sess is None:
            return site.refused(request)
        if sess.kind != "subscriber" or sess.subject is None:
            return site.to_login(request)
        msisdn = sess.subject  # never a form field: only the session says whose data this is
        try:
            key = await selfcare.apply(
                site.ctx, Actor("web", msisdn), msisdn, name, form, site.now()
            )
        except selfcare.Refused as r:
            return redirect(f"/{name}?e={r.key}&f={r.field}")
        resp = redirect(f"/{name}?m={key}")
        if name == "settings" and form_str(form, "field") == "language":
            site.set_language(request, resp, form_str(form, "value"))
        return resp
