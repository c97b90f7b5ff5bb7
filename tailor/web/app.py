"""The shopper's web page and its small API.

The page talks to this app, not to Rasa directly: one origin, input validated here, the
Rasa API token kept server-side. Besides the chat proxy and history it records what the
shopper does with the cards (``/api/events``), keeps their personalisation choice
(``/api/profile/consent``) and, in the demo, signs them in as a demo customer
(``/api/demo/*``, playing the store's site).

Identity: the page sends the store's signed ``customer_token`` with every message; this app
passes it to Rasa as message metadata untouched (the action server verifies it) and verifies
it itself where it writes on a customer's behalf (events, consent).

Isolation: a conversation id (``sender``, a random UUID the page keeps) is the capability
for an anonymous conversation. Once a verified customer has spoken in it, it is theirs:
every request naming it (chat, history, updates, events, consent) must carry that
customer's valid token (body ``customer_token`` or header ``X-Customer-Token``), else 403.
Rate limits, CSRF and roles: :mod:`tailor.web.security`; the catalog API: :mod:`.admin`.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import threading
import zoneinfo
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import httpx
from fastapi import FastAPI, Header, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tailor.config import Settings
from tailor.privacy.consent import apply_consent
from tailor.profiles.identity import MIN_SECRET_BYTES, identify, sign_customer_token
from tailor.profiles.segments import refresh_customer
from tailor.store import make_session_factory
from tailor.store.catalog import get_product
from tailor.store.events import record_events
from tailor.store.models import Customer, Event, Profile
from tailor.store.profiles import customer_by_external_id, profile_for
from tailor.web.admin import IndexSync, admin_router
from tailor.web.agent import agent_router
from tailor.web.dashboard import dashboard_router
from tailor.web.demo import DEMO_TOKEN_TTL, demo_customer_list
from tailor.web.errors import unprocessable
from tailor.web.privacy import privacy_router
from tailor.web.rasa_http import RasaHTTP
from tailor.web.security import (
    Limits,
    PanelAuth,
    RateLimited,
    RateLimitMiddleware,
    SecuritySettings,
    client_ip,
    rate_limited_response,
)

STATIC_DIR = Path(__file__).resolve().parent / "static"
SENDER_RE = re.compile(r"^[A-Za-z0-9_.:-]{6,128}$")
SENDER_RULE = "sender must be 6-128 characters of letters, digits, _ . : -"
MAX_MESSAGE_CHARS = 2000
#: Longest customer token accepted (the same bound the verifier applies).
MAX_TOKEN_CHARS = 4096
TOKEN_RE = re.compile(r"^[A-Za-z0-9_.=-]*$")
TZ_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}$")
#: Event kinds the page (and a store's backend) may post; ``purchase`` needs a valid token.
PageEventKind = Literal["click", "view", "cart", "purchase"]


@lru_cache(maxsize=1)
def _known_time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _check_sender(v: str) -> str:
    if not SENDER_RE.match(v):
        raise ValueError(SENDER_RULE)
    return v


def _check_token(v: str | None) -> str | None:
    if v is None or v == "":
        return None
    if not TOKEN_RE.match(v):
        raise ValueError("customer_token must be a signed token (letters, digits, _ - . =)")
    return v


class ChatContext(BaseModel):
    """What the page knows about the shopper's situation; each field optional."""

    model_config = ConfigDict(extra="forbid")

    device: Literal["mobile", "desktop", "tablet"] | None = None
    local_hour: int | None = Field(default=None, ge=0, le=23, strict=True)
    tz: str | None = Field(default=None, max_length=64, description="IANA time zone name")

    @field_validator("tz")
    @classmethod
    def _tz_ok(cls, v: str | None) -> str | None:
        if v is None:
            return None
        known = _known_time_zones()
        if not TZ_RE.match(v) or (known and v not in known):
            raise ValueError("tz must be an IANA time zone name such as Europe/Berlin")
        return v


class ChatIn(BaseModel):
    """A shopper's message from the page, with the store's token and the page's context."""

    sender: str = Field(description="Conversation id kept by the page")
    message: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS)
    customer_token: str | None = Field(default=None, max_length=MAX_TOKEN_CHARS)
    context: ChatContext | None = None

    _sender_ok = field_validator("sender")(_check_sender)
    _token_ok = field_validator("customer_token")(_check_token)

    @field_validator("message")
    @classmethod
    def _message_ok(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("message must not be blank")
        try:
            v.encode("utf-8")
        except UnicodeEncodeError:
            # a lone surrogate ("\ud800" in the JSON) is valid JSON but not text
            raise ValueError("message must be valid Unicode text") from None
        return v

    def metadata(self) -> dict[str, Any]:
        """The message metadata for Rasa: token and context keys that are set."""
        out: dict[str, Any] = {}
        if self.customer_token:
            out["customer_token"] = self.customer_token
        if self.context is not None:
            out.update(self.context.model_dump(exclude_none=True))
        return out


class EventIn(BaseModel):
    """Something the shopper did with a product card (or a purchase, from a store)."""

    model_config = ConfigDict(extra="forbid")

    sender: str
    kind: PageEventKind
    product_id: int = Field(gt=0, strict=True)
    customer_token: str | None = Field(default=None, max_length=MAX_TOKEN_CHARS)

    _sender_ok = field_validator("sender")(_check_sender)
    _token_ok = field_validator("customer_token")(_check_token)


class ConsentIn(BaseModel):
    """The shopper's choice about personalised suggestions."""

    model_config = ConfigDict(extra="forbid")

    sender: str
    personalisation: StrictBool
    customer_token: str | None = Field(default=None, max_length=MAX_TOKEN_CHARS)

    _sender_ok = field_validator("sender")(_check_sender)
    _token_ok = field_validator("customer_token")(_check_token)


class DemoTokenIn(BaseModel):
    """Which demo customer to sign in as."""

    model_config = ConfigDict(extra="forbid")

    external_id: str = Field(min_length=1, max_length=128)


def history_from_tracker(tracker: dict[str, Any]) -> list[dict[str, Any]]:
    """User and bot messages of a Rasa tracker, in the shape the page renders."""
    out: list[dict[str, Any]] = []
    for ev in tracker.get("events") or []:
        kind = ev.get("event")
        if kind == "user":
            text = ev.get("text") or ""
            if text.startswith("/"):
                continue
            out.append({"from": "user", "text": text})
        elif kind == "bot":
            data = ev.get("data") or {}
            msg: dict[str, Any] = {"from": "bot"}
            if ev.get("text"):
                msg["text"] = ev["text"]
            if data.get("buttons"):
                msg["buttons"] = data["buttons"]
            if data.get("custom"):
                msg["custom"] = data["custom"]
            if len(msg) > 1:
                out.append(msg)
        elif kind == "session_started":
            continue
    return out


class _LazySessions:
    """A session factory built on first use, so the page and chat work before the DB is
    touched (and a test app without a database never opens one)."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._factory: sessionmaker[Session] | None = None
        self._lock = threading.Lock()

    def __call__(self) -> sessionmaker[Session]:
        with self._lock:
            if self._factory is None:
                self._factory = make_session_factory(self._url)
            return self._factory


def _verified_customer(
    session: Session, sender: str, token: str | None, secret: str
) -> tuple[Customer | None, str | None]:
    """The stored customer a token names if it verifies, else ``(None, why not)``."""
    if not token:
        return None, None
    if not secret:
        return None, "no customer token secret is configured"
    who = identify(sender, {"customer_token": token}, secret)
    if who.kind != "customer" or who.customer_id is None:
        return None, who.error or "invalid token"
    customer = customer_by_external_id(session, who.customer_id)
    if customer is None:
        return None, "unknown customer"
    return customer, None


def conversation_owner(session: Session, sender: str) -> int | None:
    """The customer id a conversation belongs to: the verified customer who spoke in it."""
    return session.scalar(
        select(Event.customer_id)
        .where(Event.sender_id == sender, Event.customer_id.is_not(None))
        .limit(1)
    )


def authorise_sender(session: Session, sender: str, token: str | None, secret: str) -> None:
    """403 unless the request may use conversation ``sender``: anonymous conversations are
    open to whoever holds their id, a customer's only to a valid token of that customer."""
    owner = conversation_owner(session, sender)
    if owner is None:
        return
    customer, why = _verified_customer(session, sender, token, secret)
    if customer is None or customer.id != owner:
        raise HTTPException(
            403,
            "This conversation belongs to a signed-in customer: send their customer token"
            + (f" ({why})." if why else "."),
        )


def widget_origins(settings: Settings) -> list[str]:
    """The origins allowed to call the API from a browser (``settings.widget_origins``)."""
    origins = [o.strip().rstrip("/") for o in settings.widget_origins.split(",") if o.strip()]
    bad = [o for o in origins if o != "*" and not re.match(r"^https?://[^/\s]+$", o)]
    if bad:
        raise ValueError(
            f"widget_origins must be '*' or origins such as https://shop.example; got {bad}"
        )
    return origins


def create_app(
    settings: Settings | None = None,
    security: SecuritySettings | None = None,
    index_sync: IndexSync | None = None,
) -> FastAPI:
    """Build the app; the Rasa URL, database and token secret come from settings / environment,
    rate limits and panel origins from ``security`` (default: ``TAILOR_RATE_*`` variables).

    The database session factory is built lazily on the first request that needs it;
    ``index_sync`` overrides how the admin API keeps the search index in sync (tests).
    """
    settings = settings or Settings.load()
    security = security or SecuritySettings.load()
    secret = settings.customer_token_secret
    if secret and len(secret.encode("utf-8")) < MIN_SECRET_BYTES:
        raise ValueError(
            f"the customer token secret must be at least {MIN_SECRET_BYTES} bytes; "
            "set TAILOR_CUSTOMER_TOKEN_SECRET to a long random value"
        )
    token = os.environ.get("TAILOR_RASA_TOKEN", "")
    client = RasaHTTP(settings.rasa_url, timeout=30.0)
    sessions: Callable[[], sessionmaker[Session]] = _LazySessions(settings.database_url)
    limits = Limits(security)
    auth = PanelAuth(sessions, security)

    def check_sender_access(sender: str, token: str | None) -> None:
        with sessions()() as session:
            authorise_sender(session, sender, token, secret)

    def header_token(value: str | None) -> str | None:
        try:
            return _check_token(value)
        except ValueError as exc:
            raise unprocessable(str(exc), "header", "x-customer-token") from exc

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await client.aclose()

    app = FastAPI(title="Tailor", version="0.1.0", lifespan=lifespan)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> Response:
        """422 with what was wrong and where, never the input itself: FastAPI's default echoes
        it (a 100 kB message back to the caller, or a lone surrogate that cannot be encoded,
        which turned the error page into a 500)."""
        detail = [
            {
                "type": str(err.get("type", "")),
                "loc": [str(part) for part in err.get("loc", ())],
                "msg": str(err.get("msg", "")),
            }
            for err in exc.errors()
        ]
        body = json.dumps({"detail": detail}, ensure_ascii=True)
        return Response(body, status_code=422, media_type="application/json")

    # A flood is refused before validation or the database see it; added first, so it runs
    # inside CORS and a widget on a store's page can read the 429 and its Retry-After.
    app.add_middleware(RateLimitMiddleware, limits=limits)
    # The embeddable widget runs on the store's pages and calls this API cross-origin.
    # No cookies are used (allow_credentials=False), so "*" cannot leak a session.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=widget_origins(settings),
        allow_credentials=False,
        allow_methods=["GET", "POST"],
        allow_headers=["Content-Type", "X-Customer-Token"],
        expose_headers=["Retry-After"],
        max_age=600,
    )

    @app.exception_handler(RateLimited)
    async def _too_many(_request: Request, exc: RateLimited) -> JSONResponse:
        return rate_limited_response(exc)

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    @app.get("/demo-store", include_in_schema=False)
    async def demo_store() -> FileResponse:
        """A plain store product page embedding the widget with one script tag."""
        return FileResponse(STATIC_DIR / "demo-store.html")

    @app.get("/api/health")
    async def health() -> dict[str, Any]:
        try:
            rasa_ok = (await client.get("/", timeout=2.0)).status_code == 200
        except httpx.HTTPError:
            rasa_ok = False
        return {"ok": True, "rasa": rasa_ok}

    @app.post("/api/chat")
    async def chat(body: ChatIn, request: Request) -> JSONResponse:
        """Forward a message to Rasa's REST webhook with the token and context as metadata."""
        limits.check("chat_per_ip", client_ip(request.scope))
        limits.check("chat_per_sender", body.sender)
        await asyncio.to_thread(check_sender_access, body.sender, body.customer_token)
        try:
            resp = await client.post(
                "/webhooks/rest/webhook",
                json={"sender": body.sender, "message": body.message, "metadata": body.metadata()},
            )
        except httpx.HTTPError as exc:
            raise HTTPException(
                503, "The assistant is not reachable right now; try again shortly."
            ) from exc
        if resp.status_code != 200:
            raise HTTPException(502, f"The assistant answered with HTTP {resp.status_code}.")
        return JSONResponse({"messages": resp.json()})

    @app.get("/api/history")
    async def history(
        sender: str = Query(...),
        x_customer_token: str | None = Header(default=None, max_length=MAX_TOKEN_CHARS),
    ) -> dict[str, Any]:
        """The conversation's messages; a customer's conversation needs their token
        (``X-Customer-Token``)."""
        if not SENDER_RE.match(sender):
            raise unprocessable(SENDER_RULE, "query", "sender")
        await asyncio.to_thread(check_sender_access, sender, header_token(x_customer_token))
        try:
            resp = await client.get(
                f"/conversations/{sender}/tracker",
                params={"token": token, "include_events": "ALL"},
            )
        except httpx.HTTPError as exc:
            raise HTTPException(503, "The assistant is not reachable right now.") from exc
        if resp.status_code == 404:
            return {"messages": []}
        if resp.status_code != 200:
            raise HTTPException(502, f"The assistant answered with HTTP {resp.status_code}.")
        return {"messages": history_from_tracker(resp.json())}

    @app.post("/api/events")
    def post_event(body: EventIn) -> dict[str, Any]:
        """Record a click, view or cart event (purchases only for a verified customer).

        The event carries the customer only when the token verifies; otherwise it is the
        anonymous conversation's. After a purchase the customer's segment is refreshed.
        """
        with sessions().begin() as session:
            authorise_sender(session, body.sender, body.customer_token, secret)
            product = get_product(session, body.product_id)
            if product is None:
                raise HTTPException(404, f"No product with id {body.product_id}.")
            customer, why = _verified_customer(session, body.sender, body.customer_token, secret)
            if body.kind == "purchase" and customer is None:
                raise HTTPException(
                    403,
                    "A purchase needs a valid customer token"
                    + (f" ({why})." if why else "; none was sent."),
                )
            record_events(
                session,
                body.kind,
                body.sender,
                [product.id],
                payload={"source": "web"},
                customer_id=customer.id if customer else None,
                value=float(product.price) if body.kind == "purchase" else None,
            )
            if body.kind == "purchase" and customer is not None:
                session.flush()
                refresh_customer(session, customer.id)
        return {"ok": True}

    def _consent(
        session: Session, sender: str, token: str | None, create: bool
    ) -> tuple[Profile | None, dict[str, Any]]:
        """The profile a message from ``sender`` with ``token`` would use, and who it is."""
        customer, why = _verified_customer(session, sender, token, secret)
        prof = profile_for(session, sender, customer.id if customer else None, create=create)
        out: dict[str, Any] = {"identity": "customer" if customer else "anonymous"}
        if why:
            out["token_error"] = why
        return prof, out

    @app.get("/api/profile/consent")
    def get_consent(
        sender: str = Query(...),
        x_customer_token: str | None = Header(default=None, max_length=MAX_TOKEN_CHARS),
    ) -> dict[str, Any]:
        """Whether suggestions may be personalised, for the profile a message would use.

        The token travels in the ``X-Customer-Token`` header, not the URL (logs, history).
        Nothing is stored: a profile that does not exist yet reads as the default (allowed).
        """
        if not SENDER_RE.match(sender):
            raise unprocessable(SENDER_RULE, "query", "sender")
        tok = header_token(x_customer_token)
        with sessions().begin() as session:
            authorise_sender(session, sender, tok, secret)
            prof, out = _consent(session, sender, tok, create=False)
            out["personalisation"] = True if prof is None else bool(prof.personalisation)
        return out

    @app.post("/api/profile/consent")
    def post_consent(body: ConsentIn) -> dict[str, Any]:
        """Store the choice on the customer's profile (valid token) or the visitor's."""
        with sessions().begin() as session:
            authorise_sender(session, body.sender, body.customer_token, secret)
            prof, out = _consent(session, body.sender, body.customer_token, create=True)
            if prof is None:  # pragma: no cover - profile_for creates when asked to
                raise HTTPException(500, "No profile could be created.")
            # withdrawing consent also de-identifies stored events and drops segments, now
            change = apply_consent(session, prof, body.personalisation)
            out["personalisation"] = bool(prof.personalisation)
            if not change.personalisation:
                out["deidentified_events"] = change.events_deidentified
        return out

    if settings.demo_login:

        @app.get("/api/demo/customers")
        def demo_customers() -> dict[str, Any]:
            """A few demo customers spanning the segments, for the page's "Shop as" list."""
            with sessions().begin() as session:
                return {"customers": demo_customer_list(session)}

        @app.post("/api/demo/token")
        def demo_token(body: DemoTokenIn) -> dict[str, Any]:
            """Sign a customer token for a demo customer, as the store's site would."""
            if not secret:
                raise HTTPException(
                    503,
                    "Demo sign-in needs a customer token secret: set "
                    "TAILOR_CUSTOMER_TOKEN_SECRET (`tailor run` generates one).",
                )
            with sessions().begin() as session:
                customer = customer_by_external_id(session, body.external_id)
                if customer is None:
                    raise HTTPException(404, f"No customer with external id {body.external_id!r}.")
                name = customer.name
            signed = sign_customer_token(body.external_id, secret, ttl_seconds=DEMO_TOKEN_TTL)
            return {"token": signed, "name": name, "expires_in": DEMO_TOKEN_TTL}

    app.include_router(
        agent_router(
            settings, client, sessions, limits=limits, auth=auth, sender_check=check_sender_access
        )
    )
    app.include_router(admin_router(settings, sessions, auth, index_sync))
    app.include_router(dashboard_router(settings, sessions, auth, STATIC_DIR))
    app.include_router(privacy_router(settings, sessions))
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
