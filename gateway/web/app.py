"""The web page's routes (Starlette): every page checks the session and the role, every
form its CSRF token; every change goes through the same ledger code as the CLI."""

from __future__ import annotations

import io
import secrets
from collections.abc import Awaitable, Callable
from contextlib import closing
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from gateway.clock import now_ms
from gateway.config import ShopConfig
from gateway.engine.localtime import (
    local_date,
    local_time,
    next_period,
    period_start,
    wall_to_utc_ms,
)
from gateway.errors import ShopwattError
from gateway.export import build_table, write_csv
from gateway.export.prepaid import credits, statement_table, write_view_file
from gateway.export.to_bill import bill_text
from gateway.inputs.jobsend import start_job, stop_job
from gateway.ledger.assignments import Assignment
from gateway.ledger.members import cents, exact
from gateway.ledger.membership import EXPIRY_SOON_DAYS, MemberLedger, default_until
from gateway.ledger.periods import parse_month
from gateway.ledger.schema import connect
from gateway.ledger.users import ROLES, Role, User, check_role, get_user, list_users, put_user
from gateway.web import views
from gateway.web.auth import Limiter, Session, Sessions, hash_password, same, verify_password
from gateway.web.render import TEMPLATES, compile_templates, month_pictures, render

COOKIE = "shopwatt_session"
LOGIN_COOKIE = "shopwatt_login"  # the login form's CSRF token (double submit: no session yet)
# Which roles open which page (docs/web.md); owner opens everything.
PAGES: dict[str, frozenset[Role]] = {
    "floor": frozenset({"operator", "owner"}),
    "jobs": frozenset({"accountant", "owner"}),
    "members": frozenset({"accountant", "owner"}),
    "month": frozenset({"accountant", "owner"}),
    "health": frozenset({"owner"}),
    "users": frozenset({"owner"}),
}
HOME: dict[Role, str] = {"operator": "/floor", "accountant": "/month", "owner": "/floor"}
_HEADERS = {
    # No script, no frames, no other origin: the page is plain HTML and inline SVG.
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SRC = "web"  # the job event's `src`: the page, with the user's name after it


@dataclass
class WebState:
    """What the app shares between requests."""

    cfg: ShopConfig
    https: bool
    sessions: Sessions = field(default_factory=Sessions)
    limiter: Limiter = field(default_factory=Limiter)
    newest: views.Newest = field(default_factory=dict)  # the floor's decoded newest readings
    clock: Callable[[], int] = now_ms

    def ledger(self, user: str | None = None) -> MemberLedger:
        """The shop's ledger (with its members); a change names `user` in its audit trail."""
        return MemberLedger(self.cfg, who=_who(user) if user else None)


def _who(user: str) -> str:
    """Who the audit trail names for a change made on the page."""
    return f"{user} (web)"


def _see_other(path: str) -> RedirectResponse:
    """Where the browser goes next, with a GET (after a login, a logout, to the login)."""
    return RedirectResponse(path, 303, headers=_HEADERS)


def _render(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(render(name, **context), status, headers=_HEADERS)


def _typed(form: FormData | None, name: str) -> str:
    """A form's field as typed (a password: its spaces count)."""
    return "" if form is None else str(form.get(name, ""))


def _field(form: FormData, name: str) -> str:
    return _typed(form, name).strip()


@dataclass(frozen=True)
class Ask:
    """A request past the guard, as a page's code sees it: who asks and what they sent; and
    after a form, what to tell them on the page shown next."""

    request: Request
    session: Session
    form: FormData | None = None  # a POST's; None on a GET
    message: str = ""
    status: int = 200

    def param(self, name: str) -> str:
        """What was sent as `name`, stripped: a POST's form field, else the path's or the
        query's; so a refused form's page shows what the form named."""
        if self.form is not None:
            return _field(self.form, name)
        sent = self.request.path_params.get(name) or self.request.query_params.get(name, "")
        return str(sent).strip()

    def count(self, name: str) -> int:
        """A part count: empty is 0, anything but a whole number is refused."""
        text = self.param(name)
        if not text.isdigit():
            if text:
                raise ShopwattError(f"{name} = {text!r}: a whole number of parts")
            return 0
        return int(text)

    def told(self, message: str, status: int = 200) -> Ask:
        """The same request, with a message for the page shown next."""
        return replace(self, message=message, status=status)

    def or_told(self, message: str, status: int) -> Ask:
        """Told `message`, unless a refused form already says why (its reason stays)."""
        return self if self.message else self.told(message, status)


def _page(state: WebState, ask: Ask, template: str, **context: Any) -> HTMLResponse:
    """A page of the app: the navigation shows what the user's role may open."""
    nav = [p for p, roles in PAGES.items() if ask.session.role in roles]
    return _render(
        template,
        ask.status,
        site=state.cfg.site.id,
        currency=state.cfg.site.currency,
        session=ask.session,
        nav=nav,
        here=ask.request.url.path,
        message=ask.message,
        **context,
    )


# A page's work: blocking (SQLite, argon2, the broker), so it runs in a worker thread and
# the server keeps answering the other tablets meanwhile.
Page = Callable[[Ask], Response]


def _guarded(state: WebState, page: str, handler: Page) -> Callable[[Request], Awaitable[Response]]:
    """Log in first, the right role, and on a POST the session's CSRF token."""

    async def endpoint(request: Request) -> Response:
        session = state.sessions.get(request.cookies.get(COOKIE))
        if session is None:
            return _see_other("/login")
        refused = Ask(request, session, status=403)
        if session.role not in PAGES[page]:
            why = f"The {page} page is not open to the role {session.role}."
            return _page(state, refused, "refused.html", why=why)
        form = await request.form() if request.method == "POST" else None
        if form is not None and not same(_typed(form, "csrf"), session.csrf):
            why = (
                "This form is stale or did not come from this page (no valid CSRF token). "
                "Reload the page and try again."
            )
            return _page(state, refused, "refused.html", why=why)
        return await run_in_threadpool(handler, Ask(request, session, form))

    return endpoint


def _change(refusal: str, change: Callable[[Ask], str], done: Page, refused: Page) -> Page:
    """A form that changes the ledger: `change` does it and says what it did, shown on the
    page `done`; a ShopwattError is shown in red on the page `refused` as `refusal: why`."""

    def handler(ask: Ask) -> Response:
        try:
            message = change(ask)
        except ShopwattError as err:
            return refused(ask.told(f"{refusal}: {err}", 400))
        return done(ask.told(message))

    return handler


def _download(make: Page) -> Page:
    """A file to download; a refused one answers its one-line reason as text, status 400."""

    def handler(ask: Ask) -> Response:
        try:
            return make(ask)
        except ShopwattError as err:
            return Response(str(err), 400, headers=_HEADERS)

    return handler


def _attachment(body: str | bytes, name: str, media_type: str) -> Response:
    """A file the browser saves rather than shows (text: UTF-8)."""
    headers = _HEADERS | {"Content-Disposition": f'attachment; filename="{name}"'}
    kind = f"{media_type}; charset=utf-8" if isinstance(body, str) else media_type
    return Response(body, media_type=kind, headers=headers)


def _day(text: str) -> date | None:
    """A day as a page's query names it (YYYY-MM-DD); anything else: None."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _pending(adjustments: int) -> str:
    """What an assign or split left for closed months (as the CLI says it)."""
    return f"; {adjustments} adjustment rows pending for closed months" if adjustments else "."


def _nothing() -> None:
    pass


def _warm(state: WebState) -> None:
    """Do now what the first request would otherwise wait for: 40-260 ms here, where the
    floor then takes 3 ms (docs/web.md): compiling the templates, importing the thread
    pool's event loop backend (anyio's, on the first run_in_threadpool), and for a
    replayed ledger the floor's newest readings, decoded from each machine's newest day."""
    compile_templates()
    anyio.run(anyio.to_thread.run_sync, _nothing)
    if state.ledger().path.exists():
        views.floor(state.cfg, state.ledger(), state.clock(), state.newest)


def build_app(state: WebState) -> Starlette:
    """The ASGI app of one shop.toml."""
    cfg = state.cfg
    path = state.ledger().path
    if path.exists():
        # The pages read the ledger read-only, which never upgrades its schema: upgrade an
        # older ledger once, now, and keep the quarter hours its month pages sum.
        with closing(connect(path)):
            pass
        state.ledger().keep_quarters()
    _warm(state)

    def set_cookie(
        response: Response, name: str, value: str, path: str, max_age: int | None = None
    ) -> None:
        """A cookie no script reads, never sent along from another site, and under HTTPS
        only over HTTPS."""
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            httponly=True,
            samesite="strict",
            secure=state.https,
            path=path,
        )

    async def login_form(request: Request, error: str = "", status: int = 200) -> Response:
        token = secrets.token_urlsafe(32)
        response = _render("login.html", status, site=cfg.site.id, csrf=token, error=error)
        set_cookie(response, LOGIN_COOKIE, token, "/login", max_age=900)
        return response

    async def login(request: Request) -> Response:
        if request.method == "GET":
            return await login_form(request)
        form = await request.form()
        if not same(_typed(form, "csrf"), request.cookies.get(LOGIN_COOKIE, "-")):
            return await login_form(request, "The login form had expired: please try again.", 403)
        name, password = _field(form, "name"), _typed(form, "password")
        keys = (f"user:{name.lower()}", f"addr:{request.client.host if request.client else ''}")
        wait = state.limiter.wait_s(*keys)
        if wait > 0:
            return await login_form(
                request, f"Too many failed logins: try again in {wait:.0f} s.", 429
            )
        user = await run_in_threadpool(get_user, state.ledger().path, name) if name else None
        # An unknown name is verified against a dummy hash: it takes as long as a wrong password.
        stored = user.password_hash if user else None
        if not await run_in_threadpool(verify_password, stored, password) or user is None:
            state.limiter.failed(*keys)
            return await login_form(request, "Wrong user name or password.", 401)
        state.limiter.succeeded(*keys)
        response = _see_other(HOME[user.role])
        set_cookie(response, COOKIE, state.sessions.open(user.name, user.role), "/")
        response.delete_cookie(LOGIN_COOKIE, path="/login")
        return response

    async def logout(request: Request) -> Response:
        session = state.sessions.get(request.cookies.get(COOKIE))
        form = await request.form()
        if session is not None and same(_typed(form, "csrf"), session.csrf):
            state.sessions.close(request.cookies.get(COOKIE))
        response = _see_other("/login")
        response.delete_cookie(COOKIE, path="/")
        return response

    async def home(request: Request) -> Response:
        session = state.sessions.get(request.cookies.get(COOKIE))
        target = HOME[session.role] if session else "/login"
        return _see_other(target)

    css = (TEMPLATES / "style.css").read_text()  # read once per server, not per request

    async def style(_request: Request) -> Response:
        return Response(
            css, media_type="text/css", headers=_HEADERS | {"Cache-Control": "max-age=3600"}
        )

    # -- floor ------------------------------------------------------------------------
    def floor(ask: Ask) -> Response:
        return _page(
            state,
            ask,
            "floor.html",
            machines=views.floor(cfg, state.ledger(), state.clock(), state.newest),
            can_send=cfg.mqtt is not None,
            now=f"{local_time(state.clock(), cfg.site.tz):%H:%M:%S}",
        )

    def machine_form(ask: Ask) -> Response:
        """A machine's start or stop form on a page of its own, which never refreshes: the
        floor's refresh would wipe what the operator is typing."""
        machine, event = ask.param("machine"), ask.param("event")
        ledger = state.ledger()
        tiles = [
            m for m in views.floor(cfg, ledger, state.clock(), state.newest) if m.id == machine
        ]
        if not tiles or event not in ("start", "stop"):
            why = f"Not found: /floor/{machine}/{event} (machine {machine!r}, start or stop)"
            return floor(ask.or_told(why, 404))
        # The customer field offers the known ones as the operator types (no script: a
        # datalist), so a tablet user picks a name instead of guessing its spelling.
        known = ledger.customer_list() if event == "start" and ledger.path.exists() else []
        return _page(
            state,
            ask,
            "floor_job.html",
            m=tiles[0],
            event=event,
            values=ask.form or {},  # a refused form: what was typed, to correct, not retype
            customers=[c for c in known if not c.merged_into],
        )

    def send_job(ask: Ask) -> str:
        event, machine, job = ask.param("event"), ask.param("machine"), ask.param("job")
        user = ask.session.user
        ledger, src, t = state.ledger(user), f"{SRC}:{user}", state.clock()
        if event == "start":
            customer, order = ask.param("customer"), ask.param("order")
            job = start_job(ledger, machine, job or None, customer, order, src, t)[0]
        elif event == "stop":
            parts, scrap = ask.count("parts"), ask.count("scrap")
            job = stop_job(ledger, machine, job or None, parts, scrap, src, t)
        else:
            raise ShopwattError(f"event = {event!r}: expected start or stop")
        # The gateway takes the event a moment later: say so, or a second press follows.
        return f"Job {job} {event} sent for {machine}; its tile follows once the gateway has it."

    # -- jobs -------------------------------------------------------------------------
    def jobs(ask: Ask) -> Response:
        # The filters' form is a GET; the page an assign or split shows is unfiltered.
        q = ask.request.query_params
        ledger = state.ledger()
        period = views.latest_period(ledger, state.clock(), cfg.site.tz)
        day = _day(q.get("day", ""))
        first = day or period_start(period)
        end = first + timedelta(days=1) if day else period_start(next_period(period))
        machine, customer = q.get("machine", ""), q.get("customer", "")
        rows = views.jobs(ledger, first, end, machine, customer) if ledger.path.exists() else []
        audit = ledger.status(15).audit if ledger.path.exists() else []
        return _page(
            state,
            ask,
            "jobs.html",
            rows=rows,
            day=q.get("day", ""),
            machine=machine,
            customer=customer,
            machines=list(cfg.machines),
            first=first,
            last=end - timedelta(days=1),  # the heading names the days shown, not the end
            tz=cfg.site.tz,
            local_time=local_time,
            audit=audit,
        )

    def job_page(ask: Ask) -> Response:
        """One job with its assign and split forms (the unassigned queue links here)."""
        try:
            found = state.ledger().job(ask.param("job"), ask.param("machine") or None)
        except ShopwattError as err:
            return jobs(ask.or_told(f"Not found: {err}", 404))
        middle = local_time((found.start_ms + found.end_ms) // 2, cfg.site.tz)
        return _page(
            state,
            ask,
            "job.html",
            job=found,
            tz=cfg.site.tz,
            local_time=local_time,
            middle=f"{middle:%Y-%m-%dT%H:%M:%S}",
        )

    def assign(ask: Ask) -> str:
        job, machine = ask.param("job"), ask.param("machine") or None
        customer, order = ask.param("customer"), ask.param("order")
        said = Assignment("", 0, job, customer, order, ask.count("parts"), ask.count("scrap"))
        now, pending = state.ledger(ask.session.user).assign(job, machine, said)
        return f"Assigned {now.job_id} on {now.machine} to {now.customer}" + _pending(pending)

    def split(ask: Ask) -> str:
        job, machine, at = ask.param("job"), ask.param("machine") or None, ask.param("at")
        try:  # the form's datetime-local: the site's wall clock, no offset
            at_ms = wall_to_utc_ms(datetime.fromisoformat(at), cfg.site.tz)
        except ValueError:
            raise ShopwattError(f"at = {at!r}: a local date and time") from None
        second, pending = state.ledger(ask.session.user).split(job, machine, at_ms)
        return f"Split {job}: the part from {at} on is {second.job_id}" + _pending(pending)

    # -- month ------------------------------------------------------------------------
    def month(ask: Ask) -> Response:
        ledger = state.ledger()
        try:
            period = parse_month(ask.param("period"))
        except ShopwattError:  # none or a typo: the newest month with data
            period = views.latest_period(ledger, state.clock(), cfg.site.tz)
        if not ledger.path.exists():
            return _page(state, ask, "month.html", period=period, m=None)
        m = views.month(cfg, ledger, period)
        # A day of the month to show by quarter hour; anything else: the whole month.
        shown = _day(ask.param("day"))
        link = f"/month?period={period}"
        return _page(
            state,
            ask,
            "month.html",
            period=period,
            m=m,
            pictures=month_pictures(
                m, cfg, shown if shown and m.first <= shown < m.end else None, link
            ),
            month_link=link,
        )

    def close(ask: Ask) -> str:
        closed = state.ledger(ask.session.user).close(parse_month(ask.param("period")))
        return (
            f"Closed {closed.period}: {closed.rows} rows and {closed.adjustments} adjustment rows "
            f"frozen, {closed.energy_kwh} kWh, "
            f"{closed.total_cents / 100:,.2f} {cfg.site.currency}."
        )

    def month_export(ask: Ask) -> Response:
        period = parse_month(ask.param("period"))
        by = ask.param("by")
        by = by if by in ("job", "customer", "machine") else "job"
        first, end = period_start(period), period_start(next_period(period))
        ledger = state.ledger()
        selection, charges = ledger.select(first, end), ledger.charges(first, end)
        out = io.StringIO(newline="")
        table = build_table(selection, cfg.site.tz, cfg.site.currency, by, charges)  # type: ignore[arg-type]
        write_csv(table, out)
        name = f"shopwatt-{cfg.site.id}-{period}-{by}.csv"
        return _attachment(out.getvalue(), name, "text/csv")

    def month_bill(ask: Ask) -> Response:
        period = parse_month(ask.param("period"))
        text = bill_text(state.ledger().bill(period), cfg.site.tz)  # as `shopwatt bill` prints
        name = f"shopwatt-{cfg.site.id}-{period}-bill.txt"
        return _attachment(text + "\n", name, "text/plain")

    # -- members ----------------------------------------------------------------------
    def members(ask: Ask) -> Response:
        """Every member's balance per block, flagged as `status` flags it (the same code)."""
        ledger, today = state.ledger(), local_date(state.clock(), cfg.site.tz)
        found = ledger.member_list() if ledger.path.exists() else []
        return _page(
            state,
            ask,
            "members.html",
            members=found,
            balances={b.member: b for b in ledger.balances(today)} if found else {},
            credits=credits,
            today=today,
            until=default_until(today),
            soon=EXPIRY_SOON_DAYS,
            period=f"{today:%Y-%m}",
        )

    def topup(ask: Ask) -> str:
        """A block of hours bought today: `shopwatt member topup`'s ledger call."""
        member, hours, price = ask.param("member"), ask.param("hours"), ask.param("price")
        until, today = ask.param("valid_until"), local_date(state.clock(), cfg.site.tz)
        try:
            last = date.fromisoformat(until) if until else default_until(today)
        except ValueError:
            raise ShopwattError(f"valid_until = {until!r}: a date YYYY-MM-DD") from None
        h, paid = exact(hours, "hours"), cents(price, "price")
        block = state.ledger(ask.session.user).topup(member, h, paid, today, last)
        return f"Block b{block}: {h} hours for {member} at {price}, {today} .. {last}."

    def members_statement(ask: Ask) -> Response:
        """A member's month as `shopwatt member statement --output` writes it, byte for byte."""
        xlsx = ask.param("format") == "xlsx"
        period = parse_month(ask.param("month"))
        shown = state.ledger().statement(ask.param("member"), period)
        title, table = statement_table(shown, cfg.site.currency)
        out = io.BytesIO()
        write_view_file(table, title, out, xlsx=xlsx)
        name = f"shopwatt-{cfg.site.id}-{shown.member.id}-{period}.{'xlsx' if xlsx else 'csv'}"
        return _attachment(out.getvalue(), name, XLSX if xlsx else "text/csv")

    # -- health and users -------------------------------------------------------------
    def health(ask: Ask) -> Response:
        return _page(state, ask, "health.html", h=views.health(cfg, state.ledger(), state.clock()))

    def users(ask: Ask) -> Response:
        found = list_users(state.ledger().path)
        return _page(state, ask, "users.html", users=found, roles=ROLES)

    def add_user(ask: Ask) -> str:
        name, role = ask.param("name"), check_role(ask.param("role"))
        try:
            pw_hash = hash_password(_typed(ask.form, "password"))
        except ValueError as err:  # too short: argon2 is never asked
            raise ShopwattError(str(err)) from None
        when = datetime.now(UTC).isoformat(timespec="seconds")
        new = put_user(state.ledger().path, User(name, role, pw_hash), when, _who(ask.session.user))
        return f"{'Added' if new else 'Changed'} {name} ({role})."

    def page(path: str, handler: Page, method: str = "GET") -> Route:
        """A page of the app, open to the roles of the page its path is under."""
        return Route(path, _guarded(state, path.split("/")[1], handler), methods=[method])

    routes = [
        Route("/", home),
        Route("/style.css", style),
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
        page("/floor", floor),
        page("/floor/job", _change("Not sent", send_job, floor, machine_form), "POST"),
        page("/floor/{machine}/{event}", machine_form),
        page("/jobs", jobs),
        page("/jobs/job", job_page),
        page("/jobs/assign", _change("Not assigned", assign, jobs, job_page), "POST"),
        page("/jobs/split", _change("Not split", split, jobs, job_page), "POST"),
        page("/month", month),
        page("/month/close", _change("Not closed", close, month, month), "POST"),
        page("/month/export.csv", _download(month_export)),
        page("/month/bill.txt", _download(month_bill)),
        page("/members", members),
        page("/members", _change("Not topped up", topup, members, members), "POST"),
        page("/members/statement", _download(members_statement)),
        page("/health", health),
        page("/users", users),
        page("/users", _change("Not saved", add_user, users, users), "POST"),
    ]
    return Starlette(routes=routes)
