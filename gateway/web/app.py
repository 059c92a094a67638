"""The web page's routes (Starlette): every page checks the session and the role, every
form its CSRF token; every change goes through the same ledger code as the CLI."""

from __future__ import annotations

import io
import secrets
from collections.abc import Awaitable, Callable
from contextlib import closing
from dataclasses import dataclass, field
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

    def ledger(self, who: str | None = None) -> MemberLedger:
        """The shop's ledger (with its members); `who` names the user in the audit trail of
        a change."""
        return MemberLedger(self.cfg, who=f"{who} (web)" if who else None)


def _render(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    return HTMLResponse(render(name, **context), status, headers=_HEADERS)


def _page(
    state: WebState,
    request: Request,
    template: str,
    session: Session,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A page of the app: the navigation shows what the user's role may open."""
    nav = [p for p, roles in PAGES.items() if session.role in roles]
    return _render(
        template,
        status,
        site=state.cfg.site.id,
        currency=state.cfg.site.currency,
        session=session,
        nav=nav,
        here=request.url.path,
        **context,
    )


# A page's work: blocking (SQLite, argon2, the broker), so it runs in a worker thread and
# the server keeps answering the other tablets meanwhile. The form is None on a GET.
Handler = Callable[[Request, Session, FormData | None], Response]


def _guarded(
    state: WebState, page: str, handler: Handler
) -> Callable[[Request], Awaitable[Response]]:
    """Log in first, the right role, and on a POST the session's CSRF token."""

    async def endpoint(request: Request) -> Response:
        session = state.sessions.get(request.cookies.get(COOKIE))
        if session is None:
            return RedirectResponse("/login", 303, headers=_HEADERS)
        if session.role not in PAGES[page]:
            return _page(
                state,
                request,
                "refused.html",
                session,
                403,
                why=f"The {page} page is not open to the role {session.role}.",
            )
        form = await request.form() if request.method == "POST" else None
        if form is not None and not same(str(form.get("csrf", "")), session.csrf):
            return _page(
                state,
                request,
                "refused.html",
                session,
                403,
                why="This form is stale or did not come from this page (no valid CSRF "
                "token). Reload the page and try again.",
            )
        return await run_in_threadpool(handler, request, session, form)

    return endpoint


def _download(body: str | bytes, name: str, media_type: str) -> Response:
    """A file the browser saves rather than shows (text: UTF-8)."""
    headers = _HEADERS | {"Content-Disposition": f'attachment; filename="{name}"'}
    kind = f"{media_type}; charset=utf-8" if isinstance(body, str) else media_type
    return Response(body, media_type=kind, headers=headers)


def _field(form: FormData, name: str) -> str:
    return str(form.get(name, "")).strip()


def _count(form: FormData, name: str) -> int:
    """A part count from a form: empty is 0, anything but a whole number is refused."""
    text = _field(form, name)
    if not text.isdigit():
        if text:
            raise ShopwattError(f"{name} = {text!r}: a whole number of parts")
        return 0
    return int(text)


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

    async def login_form(request: Request, error: str = "", status: int = 200) -> Response:
        token = secrets.token_urlsafe(32)
        response = _render("login.html", status, site=cfg.site.id, csrf=token, error=error)
        response.set_cookie(
            LOGIN_COOKIE,
            token,
            max_age=900,
            httponly=True,
            samesite="strict",
            secure=state.https,
            path="/login",
        )
        return response

    async def login(request: Request) -> Response:
        if request.method == "GET":
            return await login_form(request)
        form = await request.form()
        if not same(str(form.get("csrf", "")), request.cookies.get(LOGIN_COOKIE, "-")):
            return await login_form(request, "The login form had expired: please try again.", 403)
        name, password = _field(form, "name"), str(form.get("password", ""))
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
        response = RedirectResponse(HOME[user.role], 303, headers=_HEADERS)
        response.set_cookie(
            COOKIE,
            state.sessions.open(user.name, user.role),
            httponly=True,
            samesite="strict",
            secure=state.https,
            path="/",
        )
        response.delete_cookie(LOGIN_COOKIE, path="/login")
        return response

    async def logout(request: Request) -> Response:
        session = state.sessions.get(request.cookies.get(COOKIE))
        form = await request.form()
        if session is not None and same(str(form.get("csrf", "")), session.csrf):
            state.sessions.close(request.cookies.get(COOKIE))
        response = RedirectResponse("/login", 303, headers=_HEADERS)
        response.delete_cookie(COOKIE, path="/")
        return response

    async def home(request: Request) -> Response:
        session = state.sessions.get(request.cookies.get(COOKIE))
        target = HOME[session.role] if session else "/login"
        return RedirectResponse(target, 303, headers=_HEADERS)

    css = (TEMPLATES / "style.css").read_text()  # read once per server, not per request

    async def style(_request: Request) -> Response:
        return Response(
            css, media_type="text/css", headers=_HEADERS | {"Cache-Control": "max-age=3600"}
        )

    # -- floor ------------------------------------------------------------------------
    def floor(
        request: Request,
        session: Session,
        _form: FormData | None,
        message: str = "",
        status: int = 200,
    ) -> Response:
        machines = views.floor(cfg, state.ledger(), state.clock(), state.newest)
        return _page(
            state,
            request,
            "floor.html",
            session,
            status,
            machines=machines,
            message=message,
            can_send=cfg.mqtt is not None,
            now=f"{local_time(state.clock(), cfg.site.tz):%H:%M:%S}",
        )

    def machine_form(
        request: Request,
        session: Session,
        machine: str,
        event: str,
        values: FormData | None = None,
        message: str = "",
        status: int = 200,
    ) -> Response:
        """A machine's start or stop form on a page of its own, which never refreshes: the
        floor's refresh would wipe what the operator is typing."""
        ledger = state.ledger()
        tiles = [
            m for m in views.floor(cfg, ledger, state.clock(), state.newest) if m.id == machine
        ]
        if not tiles or event not in ("start", "stop"):
            # A refused POST keeps its own message (an unknown machine, a bad event).
            why = f"Not found: /floor/{machine}/{event} (machine {machine!r}, start or stop)"
            return floor(request, session, None, message or why, status if message else 404)
        # The customer field offers the known ones as the operator types (no script: a
        # datalist), so a tablet user picks a name instead of guessing its spelling.
        known = ledger.customer_list() if event == "start" and ledger.path.exists() else []
        return _page(
            state,
            request,
            "floor_job.html",
            session,
            status,
            m=tiles[0],
            event=event,
            values=values or {},
            customers=[c for c in known if not c.merged_into],
            message=message,
        )

    def floor_form(request: Request, session: Session, _form: FormData | None) -> Response:
        params = request.path_params
        return machine_form(request, session, params["machine"], params["event"])

    def floor_job(request: Request, session: Session, form: FormData | None) -> Response:
        assert form is not None
        event, machine, job = _field(form, "event"), _field(form, "machine"), _field(form, "job")
        ledger, src, t = state.ledger(session.user), f"{SRC}:{session.user}", state.clock()
        try:
            if event == "start":
                customer, order = _field(form, "customer"), _field(form, "order")
                job = start_job(ledger, machine, job or None, customer, order, src, t)[0]
            elif event == "stop":
                parts, scrap = _count(form, "parts"), _count(form, "scrap")
                job = stop_job(ledger, machine, job or None, parts, scrap, src, t)
            else:
                raise ShopwattError(f"event = {event!r}: expected start or stop")
        except ShopwattError as err:
            # Back to the same form with what was typed, to correct rather than retype.
            return machine_form(request, session, machine, event, form, f"Not sent: {err}", 400)
        # The gateway takes the event a moment later: say so, or a second press follows.
        said = f"Job {job} {event} sent for {machine}; its tile follows once the gateway has it."
        return floor(request, session, None, said)

    # -- jobs -------------------------------------------------------------------------
    def jobs(
        request: Request,
        session: Session,
        _form: FormData | None,
        message: str = "",
        status: int = 200,
    ) -> Response:
        q = request.query_params
        ledger = state.ledger()
        period = views.latest_period(ledger, state.clock(), cfg.site.tz)
        try:
            day = date.fromisoformat(q["day"]) if q.get("day") else None
        except ValueError:
            day = None
        first = day or period_start(period)
        end = first + timedelta(days=1) if day else period_start(next_period(period))
        machine, customer = q.get("machine", ""), q.get("customer", "")
        rows = views.jobs(ledger, first, end, machine, customer) if ledger.path.exists() else []
        audit = ledger.status(15).audit if ledger.path.exists() else []
        return _page(
            state,
            request,
            "jobs.html",
            session,
            status,
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
            message=message,
        )

    def job_page(
        request: Request,
        session: Session,
        form: FormData | None,
        message: str = "",
        status: int = 200,
    ) -> Response:
        """One job with its assign and split forms (the unassigned queue links here); a
        refused form comes back to it with the job its fields name."""
        fields = request.query_params if form is None else form
        job, machine = str(fields.get("job", "")), str(fields.get("machine", ""))
        try:
            found = state.ledger().job(job, machine or None)
        except ShopwattError as err:
            return jobs(request, session, None, f"Not found: {err}", 404)
        middle = local_time((found.start_ms + found.end_ms) // 2, cfg.site.tz)
        return _page(
            state,
            request,
            "job.html",
            session,
            status,
            job=found,
            tz=cfg.site.tz,
            local_time=local_time,
            middle=f"{middle:%Y-%m-%dT%H:%M:%S}",
            message=message,
        )

    def job_assign(request: Request, session: Session, form: FormData | None) -> Response:
        assert form is not None
        job, machine = _field(form, "job"), _field(form, "machine") or None
        customer, order = _field(form, "customer"), _field(form, "order")
        try:
            parts, scrap = _count(form, "parts"), _count(form, "scrap")
            said = Assignment("", 0, job, customer, order, parts, scrap)
            now, pending = state.ledger(session.user).assign(job, machine, said)
        except ShopwattError as err:
            return job_page(request, session, form, f"Not assigned: {err}", 400)
        done = f"Assigned {now.job_id} on {now.machine} to {now.customer}"
        return jobs(request, session, None, done + _pending(pending))

    def job_split(request: Request, session: Session, form: FormData | None) -> Response:
        assert form is not None
        job, machine, at = _field(form, "job"), _field(form, "machine") or None, _field(form, "at")
        try:
            try:  # the form's datetime-local: the site's wall clock, no offset
                at_ms = wall_to_utc_ms(datetime.fromisoformat(at), cfg.site.tz)
            except ValueError:
                raise ShopwattError(f"at = {at!r}: a local date and time") from None
            second, pending = state.ledger(session.user).split(job, machine, at_ms)
        except ShopwattError as err:
            return job_page(request, session, form, f"Not split: {err}", 400)
        done = f"Split {job}: the part from {at} on is {second.job_id}"
        return jobs(request, session, None, done + _pending(pending))

    # -- month ------------------------------------------------------------------------
    def month(request: Request, session: Session, _form: FormData | None) -> Response:
        q = request.query_params
        return month_page(request, session, q.get("period", ""), day=q.get("day", ""))

    def month_page(
        request: Request,
        session: Session,
        asked: str,
        message: str = "",
        status: int = 200,
        day: str = "",
    ) -> Response:
        ledger = state.ledger()
        try:
            period = parse_month(asked)
        except ShopwattError:  # none or a typo: the newest month with data
            period = views.latest_period(ledger, state.clock(), cfg.site.tz)
        if not ledger.path.exists():
            return _page(
                state,
                request,
                "month.html",
                session,
                status,
                period=period,
                m=None,
                message=message,
            )
        m = views.month(cfg, ledger, period)
        try:  # a day of the month to show by quarter hour; anything else: the whole month
            shown: date | None = date.fromisoformat(day)
        except ValueError:
            shown = None
        link = f"/month?period={period}"
        return _page(
            state,
            request,
            "month.html",
            session,
            status,
            period=period,
            m=m,
            message=message,
            pictures=month_pictures(
                m, cfg, shown if shown and m.first <= shown < m.end else None, link
            ),
            month_link=link,
        )

    def month_close(request: Request, session: Session, form: FormData | None) -> Response:
        assert form is not None
        period = _field(form, "period")
        try:
            closed = state.ledger(session.user).close(parse_month(period))
        except ShopwattError as err:
            return month_page(request, session, period, f"Not closed: {err}", 400)
        return month_page(
            request,
            session,
            period,
            f"Closed {closed.period}: {closed.rows} rows and {closed.adjustments} adjustment rows "
            f"frozen, {closed.energy_kwh} kWh, "
            f"{closed.total_cents / 100:,.2f} {cfg.site.currency}.",
        )

    def month_export(request: Request, session: Session, _form: FormData | None) -> Response:
        try:
            period = parse_month(request.query_params.get("period", ""))
        except ShopwattError as err:
            return Response(str(err), 400, headers=_HEADERS)
        by = request.query_params.get("by", "job")
        by = by if by in ("job", "customer", "machine") else "job"
        first, end = period_start(period), period_start(next_period(period))
        ledger = state.ledger()
        selection, charges = ledger.select(first, end), ledger.charges(first, end)
        out = io.StringIO(newline="")
        table = build_table(selection, cfg.site.tz, cfg.site.currency, by, charges)  # type: ignore[arg-type]
        write_csv(table, out)
        return _download(out.getvalue(), f"shopwatt-{cfg.site.id}-{period}-{by}.csv", "text/csv")

    def month_bill(request: Request, session: Session, _form: FormData | None) -> Response:
        try:
            period = parse_month(request.query_params.get("period", ""))
        except ShopwattError as err:
            return Response(str(err), 400, headers=_HEADERS)
        text = bill_text(state.ledger().bill(period), cfg.site.tz)  # as `shopwatt bill` prints
        return _download(text + "\n", f"shopwatt-{cfg.site.id}-{period}-bill.txt", "text/plain")

    # -- members ----------------------------------------------------------------------
    def members(
        request: Request,
        session: Session,
        _form: FormData | None,
        message: str = "",
        status: int = 200,
    ) -> Response:
        """Every member's balance per block, flagged as `status` flags it (the same code)."""
        ledger, today = state.ledger(), local_date(state.clock(), cfg.site.tz)
        found = ledger.member_list() if ledger.path.exists() else []
        balances = {b.member: b for b in ledger.balances(today)} if found else {}
        return _page(
            state,
            request,
            "members.html",
            session,
            status,
            members=found,
            balances=balances,
            credits=credits,
            today=today,
            until=default_until(today),
            soon=EXPIRY_SOON_DAYS,
            period=f"{today:%Y-%m}",
            message=message,
        )

    def members_topup(request: Request, session: Session, form: FormData | None) -> Response:
        """A block of hours bought today: `shopwatt member topup`'s ledger call."""
        assert form is not None
        member, hours, price = _field(form, "member"), _field(form, "hours"), _field(form, "price")
        until, today = _field(form, "valid_until"), local_date(state.clock(), cfg.site.tz)
        try:
            try:
                last = date.fromisoformat(until) if until else default_until(today)
            except ValueError:
                raise ShopwattError(f"valid_until = {until!r}: a date YYYY-MM-DD") from None
            h, paid = exact(hours, "hours"), cents(price, "price")
            block = state.ledger(session.user).topup(member, h, paid, today, last)
        except ShopwattError as err:
            return members(request, session, None, f"Not topped up: {err}", 400)
        done = f"Block b{block}: {h} hours for {member} at {price}, {today} .. {last}."
        return members(request, session, None, done)

    def members_statement(request: Request, session: Session, _form: FormData | None) -> Response:
        """A member's month as `shopwatt member statement --output` writes it, byte for byte."""
        q = request.query_params
        xlsx = q.get("format") == "xlsx"
        try:
            period = parse_month(q.get("month", ""))
            shown = state.ledger().statement(q.get("member", ""), period)
        except ShopwattError as err:
            return Response(str(err), 400, headers=_HEADERS)
        title, table = statement_table(shown, cfg.site.currency)
        out = io.BytesIO()
        write_view_file(table, title, out, xlsx=xlsx)
        name = f"shopwatt-{cfg.site.id}-{shown.member.id}-{period}.{'xlsx' if xlsx else 'csv'}"
        media = XLSX if xlsx else "text/csv"
        return _download(out.getvalue(), name, media)

    # -- health and users -------------------------------------------------------------
    def health(request: Request, session: Session, _form: FormData | None) -> Response:
        h = views.health(cfg, state.ledger(), state.clock())
        return _page(state, request, "health.html", session, h=h)

    def users(
        request: Request,
        session: Session,
        _form: FormData | None,
        message: str = "",
        status: int = 200,
    ) -> Response:
        found = list_users(state.ledger().path)
        return _page(
            state, request, "users.html", session, status, users=found, roles=ROLES, message=message
        )

    def users_add(request: Request, session: Session, form: FormData | None) -> Response:
        assert form is not None
        name, password = _field(form, "name"), str(form.get("password", ""))
        try:
            role = check_role(_field(form, "role"))
            pw_hash = hash_password(password)
        except (ShopwattError, ValueError) as err:
            return users(request, session, None, f"Not saved: {err}", 400)
        when = datetime.now(UTC).isoformat(timespec="seconds")
        try:
            new = put_user(
                state.ledger().path, User(name, role, pw_hash), when, f"{session.user} (web)"
            )
        except ShopwattError as err:
            return users(request, session, None, f"Not saved: {err}", 400)
        return users(request, session, None, f"{'Added' if new else 'Changed'} {name} ({role}).")

    def guard(page: str, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        return _guarded(state, page, handler)

    routes = [
        Route("/", home),
        Route("/style.css", style),
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/floor", guard("floor", floor)),
        Route("/floor/job", guard("floor", floor_job), methods=["POST"]),
        Route("/floor/{machine}/{event}", guard("floor", floor_form)),
        Route("/jobs", guard("jobs", jobs)),
        Route("/jobs/job", guard("jobs", job_page)),
        Route("/jobs/assign", guard("jobs", job_assign), methods=["POST"]),
        Route("/jobs/split", guard("jobs", job_split), methods=["POST"]),
        Route("/month", guard("month", month)),
        Route("/month/close", guard("month", month_close), methods=["POST"]),
        Route("/month/export.csv", guard("month", month_export)),
        Route("/month/bill.txt", guard("month", month_bill)),
        Route("/members", guard("members", members)),
        Route("/members", guard("members", members_topup), methods=["POST"]),
        Route("/members/statement", guard("members", members_statement)),
        Route("/health", guard("health", health)),
        Route("/users", guard("users", users)),
        Route("/users", guard("users", users_add), methods=["POST"]),
    ]
    return Starlette(routes=routes)
