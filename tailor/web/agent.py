"""The support agent's assist panel: a page and its API, behind an agent login.

Agents sign in with a password (``tailor agent add``); the session lives in an HttpOnly,
SameSite=Strict cookie whose token is stored only as a hash and expires. Every
``/api/agent/*`` route except login answers 401 without a valid session; state-changing ones
also need the session's CSRF token in ``X-CSRF-Token`` (see :mod:`tailor.web.security`).
Sign-in attempts are rate limited per IP and, when they fail, per username.

The panel reads a conversation from two places: the Rasa tracker (transcript, current
criteria in the slots, whether the bot is paused) and Tailor's event log (sentiment of each
message, who the customer is, requests for a human). Suggestions come from the same
:class:`~tailor.recommend.service.Recommender` the bot uses, built once per process.

Taking over appends a ``pause`` event to the tracker (Rasa then logs the shopper's messages
without answering them) and a bot message saying a person has joined; the agent's messages
and product cards are bot events tagged ``metadata.tailor_agent``; handing back appends
``resume``. The shopper's page picks agent messages up from ``GET /api/updates``.
"""

# No ``from __future__ import annotations``: FastAPI must resolve the routes' annotations,
# and they name the closure-local ``current_agent`` dependency.
import asyncio
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import tailor.store.agents  # noqa: F401  - registers the agent tables before create_all
from tailor.config import Settings
from tailor.profiles.summary import profile_summary
from tailor.recommend.context import context_view
from tailor.recommend.criteria import Criteria
from tailor.recommend.reasons import money
from tailor.recommend.service import Recommender, get_default_recommender
from tailor.store.agents import (
    Agent,
    AgentAction,
    create_session,
    end_session,
    record_action,
    role_of,
    taken_over,
    verify_login,
)
from tailor.store.catalog import get_product
from tailor.store.models import Customer, Event, as_utc, utcnow
from tailor.web.errors import unprocessable
from tailor.web.rasa_http import RasaHTTP
from tailor.web.security import (
    COOKIE,
    AgentUser,
    Limits,
    PanelAuth,
    SecuritySettings,
    client_ip,
    csrf_token_for,
)

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
__all__ = ["COOKIE", "AgentUser", "agent_router"]
#: Same rule as the shopper API (``tailor.web.app.SENDER_RE``).
SENDER_RE = re.compile(r"^[A-Za-z0-9_.:-]{6,128}$")
#: A conversation is live while its latest message is this recent.
LIVE_MINUTES = 30
#: The list shows conversations with a message in this window.
RECENT_HOURS = 24
MAX_LISTED = 100
MAX_AGENT_MESSAGE = 2000
#: How long suggestions for unchanged criteria are reused between panel refreshes.
SUGGESTION_TTL = 20.0
DEFAULT_SESSION_MINUTES = 480
#: Tag on bot events written for an agent (the value is the agent's username).
AGENT_META = "tailor_agent"

JOINED = (
    "A person has joined the conversation: {name} from our customer service team. How can I help?"
)
HANDED_BACK = "{name} has handed you back to Tailor, the shopping assistant. Ask me anything!"


def session_minutes(settings: Settings) -> int:
    """Agent session lifetime: ``settings.agent_session_minutes`` if that field exists, else
    ``TAILOR_AGENT_SESSION_MINUTES``, else 480 (8 hours)."""
    value = getattr(settings, "agent_session_minutes", None)
    if value is None:
        raw = os.environ.get("TAILOR_AGENT_SESSION_MINUTES", "")
        value = int(raw) if raw.strip() else DEFAULT_SESSION_MINUTES
    minutes = int(value)
    if minutes < 1:
        raise ValueError(f"agent_session_minutes must be at least 1, got {minutes}")
    return minutes


# -- wire shapes --------------------------------------------------------------------------


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class MessageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=MAX_AGENT_MESSAGE)

    @field_validator("text")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("text must not be blank")
        return v


class CardIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: int = Field(gt=0, strict=True)
    note: str | None = Field(default=None, max_length=500)


# -- pure helpers (unit-tested) -------------------------------------------------------


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(float(ts), tz=UTC).isoformat()


def transcript_from_tracker(tracker: dict[str, Any]) -> list[dict[str, Any]]:
    """The conversation as the panel shows it: user, bot, agent and system lines."""
    out: list[dict[str, Any]] = []
    for ev in tracker.get("events") or []:
        kind = ev.get("event")
        at = _iso(ev.get("timestamp"))
        if kind == "user":
            text = ev.get("text") or ""
            intent = ((ev.get("parse_data") or {}).get("intent") or {}).get("name")
            out.append({"from": "user", "text": text, "intent": intent, "at": at})
        elif kind == "bot":
            meta = ev.get("metadata") or {}
            data = ev.get("data") or {}
            msg: dict[str, Any] = {"from": "bot", "at": at}
            if isinstance(meta.get(AGENT_META), str):
                msg["from"] = "agent"
                msg["agent"] = meta[AGENT_META]
            if ev.get("text"):
                msg["text"] = ev["text"]
            custom = data.get("custom")
            if isinstance(custom, dict) and custom.get("type") == "product_cards":
                msg["products"] = [
                    {"id": p.get("id"), "title": p.get("title"), "price_text": p.get("price_text")}
                    for p in custom.get("products") or []
                    if isinstance(p, dict)
                ]
            prev = out[-1] if out else None
            if (  # Rasa sends a reply's text and its cards as two events: show them as one
                "text" not in msg
                and "products" in msg
                and prev is not None
                and prev["from"] == msg["from"]
                and prev.get("agent") == msg.get("agent")
                and "products" not in prev
            ):
                prev["products"] = msg["products"]
            elif "text" in msg or "products" in msg:
                out.append(msg)
        elif kind == "pause":
            out.append(
                {"from": "system", "text": "The bot is paused (an agent took over).", "at": at}
            )
        elif kind == "resume":
            out.append({"from": "system", "text": "The bot answers again.", "at": at})
    return out


def agent_messages(events: list[dict[str, Any]], after: int) -> list[dict[str, Any]]:
    """Agent-written bot events at index >= ``after``, shaped like ``/api/history`` messages."""
    out: list[dict[str, Any]] = []
    for ev in events[max(after, 0) :]:
        meta = ev.get("metadata") or {}
        if ev.get("event") != "bot" or not isinstance(meta.get(AGENT_META), str):
            continue
        msg: dict[str, Any] = {"from": "bot", "agent": True}
        if ev.get("text"):
            msg["text"] = ev["text"]
        custom = (ev.get("data") or {}).get("custom")
        if custom:
            msg["custom"] = custom
        out.append(msg)
    return out


def product_card(product: Any, reason: str) -> dict[str, Any]:
    """A product as the widget's card (the shape of ``Suggestion.to_card``)."""
    return {
        "id": product.id,
        "sku": product.sku,
        "title": product.title,
        "brand": product.brand,
        "category": product.category,
        "price": float(product.price),
        "currency": product.currency,
        "price_text": money(float(product.price), product.currency),
        "rating": product.rating,
        "review_count": product.review_count,
        "colour": product.colour,
        "material": product.material,
        "image_url": product.image_url,
        "in_stock": bool(product.in_stock),
        "reason": reason,
        "score": 0.0,
        "signals": {},
    }


def criteria_view(slots: dict[str, Any]) -> tuple[Criteria, dict[str, Any]]:
    """The criteria in the tracker's slots, and their JSON view for the panel."""
    crit = Criteria.from_slots(slots or {})
    fields = {k: v for k, v in crit.to_slots().items() if v not in (None, [], "")}
    return crit, {"describe": "" if crit.is_empty() else crit.describe(), "fields": fields}


# -- the lazily built recommender -------------------------------------------------------


class _RecommenderHolder:
    """The process-wide recommender, built in a background thread on first request so the
    panel stays responsive while the model and index load."""

    def __init__(self, settings: Settings, build: Callable[[], Recommender] | None) -> None:
        self._build = build or (lambda: get_default_recommender(settings))
        self._value: Recommender | None = None
        self._error: str | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _run(self) -> None:
        try:
            value = self._build()
        except Exception as exc:  # reported to the agent, logged with its traceback
            log.exception("could not build the recommender for the agent panel")
            with self._lock:
                self._error = f"{type(exc).__name__}: {exc}"
            return
        with self._lock:
            self._value = value

    def get(self) -> tuple[Recommender | None, str | None]:
        """``(recommender, None)`` when ready, ``(None, error)`` if building failed, else
        ``(None, None)`` while it loads."""
        with self._lock:
            if self._value is not None or self._error is not None:
                return self._value, self._error
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="agent-recommender")
                self._thread.daemon = True
                self._thread.start()
            return None, None


# -- the router ---------------------------------------------------------------------------


def agent_router(
    settings: Settings,
    client: RasaHTTP,
    factory: Callable[[], sessionmaker[Session]],
    recommender: Callable[[], Recommender] | None = None,
    limits: Limits | None = None,
    auth: PanelAuth | None = None,
    sender_check: Callable[[str, str | None], None] | None = None,
) -> APIRouter:
    """Routes of the assist panel; ``client`` talks to Rasa, ``factory()`` gives the
    database's session factory; ``recommender`` overrides the process-wide one (tests);
    ``limits`` and ``auth`` are the app's rate limits and sign-in check (built from the
    environment when not given); ``sender_check(sender, customer_token)`` raises when the
    shopper's page may not read that conversation (``/api/updates``)."""
    minutes = session_minutes(settings)
    if limits is None or auth is None:
        security = SecuritySettings.load()
        limits = limits or Limits(security)
        auth = auth or PanelAuth(factory, security)
    current_agent = auth.require("agent")
    holder = _RecommenderHolder(settings, recommender)
    suggestion_cache: dict[str, tuple[float, tuple[Any, ...], dict[str, Any]]] = {}
    router = APIRouter()

    def rasa_token() -> str:
        return os.environ.get("TAILOR_RASA_TOKEN", "")

    def check_sender(sender: str) -> str:
        if not SENDER_RE.match(sender):
            raise unprocessable(
                "sender must be 6-128 characters of letters, digits, _ . : -", "path", "sender"
            )
        return sender

    async def tracker(sender: str) -> dict[str, Any] | None:
        try:
            resp = await client.get(
                f"/conversations/{sender}/tracker",
                params={"token": rasa_token(), "include_events": "ALL"},
            )
        except httpx.HTTPError as exc:
            raise HTTPException(503, "The assistant is not reachable right now.") from exc
        if resp.status_code == 404:
            return None
        if resp.status_code != 200:
            raise HTTPException(502, f"The assistant answered with HTTP {resp.status_code}.")
        data = resp.json()
        return data if isinstance(data, dict) else None

    async def append(sender: str, events: list[dict[str, Any]]) -> None:
        try:
            resp = await client.post(
                f"/conversations/{sender}/tracker/events",
                params={"token": rasa_token(), "include_events": "NONE"},
                json=events,
            )
        except httpx.HTTPError as exc:
            raise HTTPException(503, "The assistant is not reachable right now.") from exc
        if resp.status_code != 200:
            raise HTTPException(502, f"The assistant answered with HTTP {resp.status_code}.")

    def log_action(agent: AgentUser, sender: str, kind: str, payload: dict[str, Any]) -> None:
        with factory().begin() as session:
            record_action(session, session.get(Agent, agent.id), sender, kind, payload)

    async def require_control(sender: str, agent: AgentUser) -> dict[str, Any]:
        state = await tracker(sender)
        if state is None:
            raise HTTPException(404, f"No conversation {sender!r}.")
        if not state.get("paused"):
            raise HTTPException(409, "Take the conversation over first.")
        return state

    # -- page and session -----------------------------------------------------------------

    @router.get("/agent", include_in_schema=False)
    async def panel() -> FileResponse:
        return FileResponse(STATIC_DIR / "agent" / "index.html")

    @router.post("/api/agent/login")
    def login(body: LoginIn, request: Request, response: Response) -> dict[str, Any]:
        auth.check_login_origin(request)
        limits.check("login_per_ip", client_ip(request.scope))
        user_key = body.username.lower()
        limits.blocked("login_failures_per_user", user_key)
        with factory().begin() as session:
            agent = verify_login(session, body.username, body.password)
            if agent is None:
                limits.charge("login_failures_per_user", user_key)
                raise HTTPException(401, "Wrong username or password.")
            token, expires = create_session(session, agent, minutes)
            username, role = agent.username, role_of(agent)
        response.set_cookie(
            COOKIE,
            token,
            max_age=minutes * 60,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
        return {
            "username": username,
            "role": role,
            "expires_at": expires.isoformat(),
            "csrf_token": csrf_token_for(token),
        }

    @router.post("/api/agent/logout")
    def logout(
        request: Request, response: Response, agent: Annotated[AgentUser, Depends(current_agent)]
    ) -> dict[str, Any]:
        with factory().begin() as session:
            end_session(session, request.cookies.get(COOKIE))
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return {"ok": True}

    @router.get("/api/agent/me")
    def me(request: Request, agent: Annotated[AgentUser, Depends(current_agent)]) -> dict[str, Any]:
        """Who is signed in, with the CSRF token the panel sends on state-changing calls."""
        token = str(request.cookies.get(COOKIE))
        return {"username": agent.username, "role": agent.role, "csrf_token": csrf_token_for(token)}

    # -- conversations ----------------------------------------------------------------------

    @router.get("/api/agent/conversations")
    def conversations(agent: Annotated[AgentUser, Depends(current_agent)]) -> dict[str, Any]:
        now = utcnow()
        since = now - timedelta(hours=RECENT_HOURS)
        with factory()() as session:
            rows = session.scalars(
                select(Event)
                .where(
                    Event.kind.in_(("message", "handoff")),
                    Event.sender_id.is_not(None),
                    Event.created_at >= since,
                )
                .order_by(Event.created_at.desc(), Event.id.desc())
                .limit(5000)
            ).all()
            convos: dict[str, dict[str, Any]] = {}
            handoff_at: dict[str, datetime] = {}
            for ev in rows:
                sid = str(ev.sender_id)
                c = convos.setdefault(
                    sid,
                    {"sender": sid, "customer_id": None, "last_at": None, "messages": 0},
                )
                at = as_utc(ev.created_at)
                if ev.customer_id is not None and c["customer_id"] is None:
                    c["customer_id"] = ev.customer_id
                if ev.kind == "handoff":
                    handoff_at.setdefault(sid, at)
                    continue
                c["messages"] += 1
                if c["last_at"] is None:
                    payload = ev.payload or {}
                    c["last_at"] = at
                    c["last_message"] = str(payload.get("text") or "")[:200]
                    c["sentiment"] = payload.get("sentiment")
                    c["sentiment_value"] = ev.value
            convos = {k: v for k, v in convos.items() if v["last_at"] is not None}
            control = taken_over(session, list(convos))
            last_control = _last_control_times(session, list(convos))
            ids = {c["customer_id"] for c in convos.values() if c["customer_id"] is not None}
            names: dict[int, str] = {}
            if ids:
                stmt = select(Customer.id, Customer.name).where(Customer.id.in_(ids))
                names = {int(cid): str(name) for cid, name in session.execute(stmt)}
        out = []
        for sid, c in convos.items():
            asked = handoff_at.get(sid)
            handled = last_control.get(sid)
            ctl = control.get(sid)
            out.append(
                {
                    "sender": sid,
                    "customer": names.get(c["customer_id"]) if c["customer_id"] else None,
                    "last_at": c["last_at"].isoformat(),
                    "last_message": c.get("last_message", ""),
                    "sentiment": c.get("sentiment"),
                    "sentiment_value": c.get("sentiment_value"),
                    "messages": c["messages"],
                    "live": c["last_at"] >= now - timedelta(minutes=LIVE_MINUTES),
                    "flagged": asked is not None and (handled is None or handled < asked),
                    "taken_over": ctl is not None,
                    "agent": ctl.agent if ctl else None,
                }
            )
        out.sort(key=lambda c: (not c["flagged"], not c["live"], _neg_time(c["last_at"])))
        return {"conversations": out[:MAX_LISTED], "now": now.isoformat()}

    async def suggestions_for(
        sender: str,
        crit: Criteria,
        customer_id: int | None,
        metadata: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        rec, error = holder.get()
        if error:
            return {"status": "error", "error": error, "products": []}
        if rec is None:
            return {"status": "loading", "products": []}
        key = (crit, customer_id, tuple(sorted((metadata or {}).items())))
        hit = suggestion_cache.get(sender)
        if hit is not None and hit[1] == key and time.monotonic() - hit[0] < SUGGESTION_TTL:
            return hit[2]

        def compute() -> dict[str, Any]:
            shopper = rec.shopper(sender, customer_id, metadata)
            result = rec.recommend(crit, shopper=shopper)
            return {
                "status": "ok",
                "basis": result.basis,
                "total_matches": result.total_matches,
                "products": [s.to_card() for s in result.suggestions],
                "context": context_view(shopper.context, rec.weights.context_rules),
            }

        try:
            value = await asyncio.to_thread(compute)
        except Exception as exc:  # the rest of the panel must still work
            log.exception("suggestions for %s failed", sender)
            return {"status": "error", "error": f"{type(exc).__name__}: {exc}", "products": []}
        if len(suggestion_cache) > 500:
            suggestion_cache.clear()
        suggestion_cache[sender] = (time.monotonic(), key, value)
        return value

    @router.get("/api/agent/conversations/{sender}")
    async def conversation(
        sender: str, agent: Annotated[AgentUser, Depends(current_agent)]
    ) -> dict[str, Any]:
        check_sender(sender)
        state = await tracker(sender)

        def from_db() -> dict[str, Any]:
            with factory()() as session:
                events = session.scalars(
                    select(Event)
                    .where(Event.sender_id == sender, Event.kind.in_(("message", "handoff")))
                    .order_by(Event.created_at, Event.id)
                ).all()
                customer_id = next(
                    (e.customer_id for e in reversed(events) if e.customer_id is not None), None
                )
                profile = None
                if customer_id is not None:
                    customer = session.get(Customer, customer_id)
                    summary = profile_summary(session, customer.external_id) if customer else None
                    profile = summary.to_json() if summary else None
                ctl = taken_over(session, [sender]).get(sender)
                handled = _last_control_times(session, [sender]).get(sender)
            trend = [
                {
                    "at": as_utc(e.created_at).isoformat(),
                    "label": (e.payload or {}).get("sentiment"),
                    "value": e.value,
                    "text": str((e.payload or {}).get("text") or "")[:120],
                }
                for e in events
                if e.kind == "message"
            ]
            asked = [as_utc(e.created_at) for e in events if e.kind == "handoff"]
            # The page's context (device, local hour, time zone) of the latest message.
            situation = next(
                (
                    {k: e.payload[k] for k in ("device", "local_hour", "tz") if k in e.payload}
                    for e in reversed(events)
                    if e.kind == "message" and e.payload and "device" in e.payload
                ),
                {},
            )
            return {
                "customer_id": customer_id,
                "situation": situation,
                "profile": profile,
                "sentiment": trend,
                "flagged": bool(asked) and (handled is None or handled < asked[-1]),
                "agent": ctl.agent if ctl else None,
            }

        db = await asyncio.to_thread(from_db)
        if state is None and not db["sentiment"]:
            raise HTTPException(404, f"No conversation {sender!r}.")
        crit, crit_view = criteria_view((state or {}).get("slots") or {})
        suggestions = await suggestions_for(
            sender, crit, db.pop("customer_id"), db.pop("situation")
        )
        return {
            "sender": sender,
            "transcript": transcript_from_tracker(state or {}),
            "paused": bool((state or {}).get("paused")),
            "criteria": crit_view,
            "suggestions": suggestions,
            **db,
        }

    @router.post("/api/agent/conversations/{sender}/takeover")
    async def takeover(
        sender: str, agent: Annotated[AgentUser, Depends(current_agent)]
    ) -> dict[str, Any]:
        check_sender(sender)
        state = await tracker(sender)
        if state is None:
            raise HTTPException(404, f"No conversation {sender!r}.")
        if state.get("paused"):
            with factory()() as session:
                ctl = taken_over(session, [sender]).get(sender)
            if ctl is not None and ctl.agent not in (None, agent.username):
                raise HTTPException(409, f"{ctl.agent} has already taken this conversation over.")
            return {"ok": True, "paused": True}
        await append(
            sender,
            [
                {"event": "pause"},
                {
                    "event": "bot",
                    "text": JOINED.format(name=agent.username),
                    "metadata": {AGENT_META: agent.username},
                },
            ],
        )
        log_action(agent, sender, "takeover", {})
        return {"ok": True, "paused": True}

    @router.post("/api/agent/conversations/{sender}/message")
    async def message(
        sender: str, body: MessageIn, agent: Annotated[AgentUser, Depends(current_agent)]
    ) -> dict[str, Any]:
        check_sender(sender)
        await require_control(sender, agent)
        await append(
            sender, [{"event": "bot", "text": body.text, "metadata": {AGENT_META: agent.username}}]
        )
        log_action(agent, sender, "message", {"text": body.text[:200]})
        return {"ok": True}

    @router.post("/api/agent/conversations/{sender}/card")
    async def card(
        sender: str, body: CardIn, agent: Annotated[AgentUser, Depends(current_agent)]
    ) -> dict[str, Any]:
        check_sender(sender)
        await require_control(sender, agent)
        with factory()() as session:
            product = get_product(session, body.product_id)
            if product is None:
                raise HTTPException(404, f"No product with id {body.product_id}.")
            cached = suggestion_cache.get(sender)
            reason = next(
                (
                    p["reason"]
                    for p in (cached[2]["products"] if cached else [])
                    if p.get("id") == product.id and p.get("reason")
                ),
                f"Picked for you by {agent.username}",
            )
            product_json = product_card(product, body.note or reason)
        payload = {
            "type": "product_cards",
            "criteria": "",
            "total_matches": 1,
            "products": [product_json],
        }
        await append(
            sender,
            [
                {
                    "event": "bot",
                    "text": f"{agent.username} sent you a product:",
                    "data": {"custom": payload},
                    "metadata": {AGENT_META: agent.username},
                }
            ],
        )
        log_action(agent, sender, "card", {"product_id": product.id})
        return {"ok": True, "card": product_json}

    @router.post("/api/agent/conversations/{sender}/handback")
    async def handback(
        sender: str, agent: Annotated[AgentUser, Depends(current_agent)]
    ) -> dict[str, Any]:
        check_sender(sender)
        state = await tracker(sender)
        if state is None:
            raise HTTPException(404, f"No conversation {sender!r}.")
        if state.get("paused"):
            await append(
                sender,
                [
                    {
                        "event": "bot",
                        "text": HANDED_BACK.format(name=agent.username),
                        "metadata": {AGENT_META: agent.username},
                    },
                    {"event": "resume"},
                ],
            )
        log_action(agent, sender, "handback", {})
        return {"ok": True, "paused": False}

    # -- the shopper's side: agent messages since a cursor -------------------------------

    @router.get("/api/updates")
    async def updates(
        sender: str = Query(...),
        after: int | None = Query(None, ge=0),
        x_customer_token: str | None = Header(default=None, max_length=4096),
    ) -> dict[str, Any]:
        """Agent messages for the shopper's page. Without ``after`` only the cursor comes
        back (the page already shows the history); then poll with ``after=next``. A
        customer's conversation needs their token in ``X-Customer-Token``."""
        check_sender(sender)
        if sender_check is not None:
            await asyncio.to_thread(sender_check, sender, x_customer_token or None)
        state = await tracker(sender)
        events = list((state or {}).get("events") or [])
        msgs = [] if after is None else agent_messages(events, after)
        return {"messages": msgs, "next": len(events), "paused": bool((state or {}).get("paused"))}

    return router


def _neg_time(iso: str) -> float:
    return -datetime.fromisoformat(iso).timestamp()


def _last_control_times(session: Session, sender_ids: list[str]) -> dict[str, datetime]:
    """When an agent last took over or handed back each conversation (clears a flag)."""
    out: dict[str, datetime] = {}
    if not sender_ids:
        return out
    for sid, at in session.execute(
        select(AgentAction.sender_id, AgentAction.created_at).where(
            AgentAction.sender_id.in_(sender_ids), AgentAction.kind.in_(("takeover", "handback"))
        )
    ):
        t = as_utc(at)
        if sid not in out or t > out[sid]:
            out[sid] = t
    return out
