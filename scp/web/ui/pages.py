"""Sessions, CSRF and rendering for the portal and the console (:class:`Site`).

* The session is the server-side row of :mod:`scp.flows.selfservice` (PostgreSQL, shared by
  every web process); the cookie holds only its random token: ``HttpOnly``,
  ``SameSite=Lax``, ``Secure`` when the process serves TLS (``[web] tls_cert``) or a trusted
  proxy says the browser came over HTTPS (uvicorn believes ``X-Forwarded-Proto`` only from
  ``[web] trusted_proxies``). The portal and the console have cookies of their own.
* Every form carries the session's CSRF token (the login forms too: a browser gets an
  anonymous session with the first login page, kept in its cookie only, so anonymous page
  views write no row); a POST without the right one is refused with 403 before anything
  else happens.
* The page language is the ``mcn_lang`` cookie (the switch in every page's header; a
  subscriber's login sets it to their language preference), Chinese by default.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from scp.codecs.numbers import CHINA
from scp.flows import selfservice as flows
from scp.service.provisioning import NOTIFY_MODES, SERVICES, VOICEMAIL_NOTIFY, NotFound
from scp.service.webauth import SessionInfo, same_secret
from scp.web import recording
from scp.web.context import WebContext
from scp.web.ui.forms import FORM_FIELDS
from scp.web.ui.i18n import FLASH_ERR, FLASH_OK, LANGUAGES, translator

UI_DIR = Path(__file__).resolve().parent
LANG_COOKIE = "mcn_lang"


def safe_next(target: str | None, default: str) -> str:
    """A local path to go to after a login (never another site: no scheme, no '//')."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


def redirect(url: str) -> RedirectResponse:
    """See other (303): after a POST the browser GETs the page."""
    return RedirectResponse(url, status_code=303)


class Site:
    """One part's pages: its templates, its session cookie and its URL prefix."""

    def __init__(
        self,
        ctx: WebContext,
        *,
        templates: Path,
        cookie: str,
        prefix: str,
        login: str,
        site_name: str,
    ) -> None:
        self.ctx = ctx
        self.cookie = cookie
        self.prefix = prefix
        self.login_url = login
        self.settings = flows.WebSettings.from_config(ctx.cfg)
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader([str(templates), str(UI_DIR / "templates")]),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.globals.update(
            prefix=prefix,
            site_name=site_name,
            quote=quote,
            FLASH_OK=FLASH_OK,
            FLASH_ERR=FLASH_ERR,
            FIELDS=FORM_FIELDS,
            SERVICES=SERVICES,
            NOTIFY_MODES=NOTIFY_MODES,
            VOICEMAIL_NOTIFY=VOICEMAIL_NOTIFY,
            VOICEMAIL_RETRIEVAL=ctx.cfg.call.voicemail_retrieval,
        )
        tz = zoneinfo.ZoneInfo(ctx.cfg.notify.timezone)
        self.env.filters["localtime"] = lambda at: (
            at.astimezone(tz).strftime("%Y-%m-%d %H:%M") if at is not None else ""
        )
        self.env.filters["phone"] = lambda n, t: CHINA.to_national(n) if n else t("unknown number")

    # -- time, address, scheme ------------------------------------------------------------------

    def now(self) -> dt.datetime:
        return self.ctx.wall_now()

    @staticmethod
    def address(request: Request) -> str:
        """The client's address (a trusted proxy's X-Forwarded-For already applied)."""
        return request.client.host if request.client else "unknown"

    def secure(self, request: Request) -> bool:
        """Cookies only over HTTPS: served here with TLS, or a trusted proxy says so."""
        return self.ctx.cfg.web.tls or request.url.scheme == "https"

    @staticmethod
    def language(request: Request) -> str:
        lang = request.cookies.get(LANG_COOKIE, "")
        return lang if lang in LANGUAGES else "zh"

    # -- sessions -------------------------------------------------------------------------------

    async def session(self, request: Request) -> SessionInfo | None:
        """The request's live session, if its cookie names one (cached on the request)."""
        if "mcn_session" in request.scope:
            return request.scope["mcn_session"]  # type: ignore[no-any-return]
        token = request.cookies.get(self.cookie, "")
        sess = await flows.load_session(self.ctx.pool, token, self.now(), self.settings)
        request.scope["mcn_session"] = sess
        return sess

    async def form_session(self, request: Request) -> SessionInfo:
        """The session a login form posts with: the browser's, or an anonymous one that only
        the browser keeps (:func:`scp.flows.selfservice.anonymous_session`: a page view
        writes nothing); a new one's cookie goes out with the page, :meth:`page`."""
        sess = await self.session(request)
        if sess is not None:
            return sess
        anon = flows.anonymous_session(request.cookies.get(self.cookie, ""))
        if anon is None:
            token, anon = flows.new_anonymous_session()
            request.scope["mcn_new_token"] = token
        return anon

    def set_cookie(self, request: Request, response: Response, token: str) -> None:
        response.set_cookie(
            self.cookie,
            token,
            max_age=int(self.settings.lifetime.total_seconds()),
            path=self.prefix,
            httponly=True,
            samesite="lax",
            secure=self.secure(request),
        )

    def set_language(self, request: Request, response: Response, lang: str) -> None:
        """The pages' language from now on (a subscriber's preference)."""
        self.set_language_cookie(self.ctx, request, response, lang)

    @staticmethod
    def set_language_cookie(
        ctx: WebContext, request: Request, response: Response, lang: str
    ) -> None:
        """The ``mcn_lang`` cookie (the header's switch, a subscriber's preference)."""
        if lang in LANGUAGES:
            response.set_cookie(
                LANG_COOKIE,
                lang,
                max_age=365 * 86400,
                path="/",
                samesite="lax",
                secure=ctx.cfg.web.tls or request.url.scheme == "https",
            )

    def clear_cookie(self, request: Request, response: Response) -> None:
        response.delete_cookie(
            self.cookie,
            path=self.prefix,
            httponly=True,
            samesite="lax",
            secure=self.secure(request),
        )

    async def login(
        self,
        request: Request,
        response: Response,
        kind: str,
        subject: str,
        *,
        via: str,
        role: str | None = None,
    ) -> SessionInfo:
        """Replace the browser's session by a new logged-in one (never promote the old id)."""
        old = await self.session(request)
        if old is not None:
            await flows.end_session(self.ctx.pool, old)
        token, sess = await flows.start_session(
            self.ctx.pool, kind, subject, self.now(), self.settings, via=via, role=role
        )
        self.set_cookie(request, response, token)
        request.scope["mcn_session"] = sess
        return sess

    async def logout(self, request: Request, response: Response) -> None:
        sess = await self.session(request)
        if sess is not None:
            await flows.end_session(self.ctx.pool, sess)
        self.clear_cookie(request, response)

    def to_login(self, request: Request) -> RedirectResponse:
        """A logged-out browser gets the login page, then comes back here."""
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return redirect(f"{self.login_url}?next={quote(here)}")

    # -- forms ----------------------------------------------------------------------------------

    async def checked_form(self, request: Request) -> tuple[SessionInfo | None, FormData]:
        """The posted form, if it carries the CSRF token of the browser's session."""
        form = await request.form()
        sess = await self.session(request)
        if sess is None:  # a login form's: nothing stored, the cookie's token is the key
            sess = flows.anonymous_session(request.cookies.get(self.cookie, ""))
        token = form.get("csrf")
        if sess is None or not same_secret(sess.csrf, token if isinstance(token, str) else None):
            return None, form
        return sess, form

    def refused(self, request: Request) -> HTMLResponse:
        """403 for a form without the right CSRF token (expired session, another site)."""
        return self.page(request, "message.html", None, status=403, message="form_expired")

    # -- recordings -----------------------------------------------------------------------------

    async def recording(self, request: Request, vm_id: str, *, owner: str) -> Response:
        """A voice message of ``owner`` for the page's ``<audio>`` element, with HTTP Range
        (:mod:`scp.web.recording`, the API's code); anyone else's, or none, is 404."""
        sess = await self.session(request)
        try:
            n = int(vm_id) if vm_id.isascii() and vm_id.isdigit() and len(vm_id) <= 18 else 0
            if n < 1:
                raise NotFound(vm_id)
            resp: Response = await recording.stream(
                self.ctx.pool, n, request.headers.get("range"), owner=owner
            )
        except NotFound:
            return self.page(request, "message.html", sess, status=404, message="no_message")
        except recording.Unsatisfiable as e:
            resp = Response(status_code=416, headers={"Content-Range": e.content_range})
        resp.headers["Cache-Control"] = "no-store"
        resp.headers["X-Content-Type-Options"] = "nosniff"
        return resp

    # -- rendering ------------------------------------------------------------------------------

    def page(
        self,
        request: Request,
        template: str,
        sess: SessionInfo | None,
        *,
        status: int = 200,
        **values: Any,
    ) -> HTMLResponse:
        lang = self.language(request)
        t: Callable[..., str] = translator(lang)
        body = self.env.get_template(template).render(
            t=t,
            lang=lang,
            csrf=sess.csrf if sess is not None else "",
            sess=sess,
            path=request.url.path,
            here=quote(request.url.path + (f"?{request.url.query}" if request.url.query else "")),
            query=request.query_params,
            **values,
        )
        resp = HTMLResponse(body, status_code=status)
        new = request.scope.get("mcn_new_token")
        if new:
            self.set_cookie(request, resp, new)
        # pages with personal data are not kept by shared caches or the back button's cache
        resp.headers["Cache-Control"] = "no-store"
        resp.headers["X-Frame-Options"] = "DENY"
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Referrer-Policy"] = "same-origin"
        resp.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'none';"
            " frame-ancestors 'none'; form-action 'self'"
        )
        return resp
