"""Web security: rate limits, CSRF protection and the panel's sign-in check with roles.

**Rate limits** are token buckets (capacity ``N``, refilled at ``N`` per period) kept in
memory per web-app process — the embedded profile's single process. Every ``/api/*`` request
is charged to its client IP; the chat is also charged per conversation (sender), the agent
login per IP and, for failed attempts, per username. A request over a limit gets HTTP 429
with ``Retry-After`` (whole seconds) and a JSON body saying which limit and why. Limits are
read from ``TAILOR_RATE_*`` variables (see :class:`SecuritySettings`); ``TAILOR_RATE_LIMITS=
false`` turns them off. Rasa's own webhook (another port) is not limited by this app.

**CSRF**: the panel's session is an HttpOnly, SameSite=Strict cookie, so a cross-site page
cannot make the browser send it at all. On top of that every state-changing request
authenticated by the cookie must carry ``X-CSRF-Token``: a value derived from the session
token (``sha256("tailor-csrf:" + token)``) that the login and ``/api/agent/me`` answers
return to the panel's script; a page on another origin cannot read it. When the browser
sends ``Origin`` (or only ``Referer``), it must be this app's own origin or one listed in
``TAILOR_PANEL_ORIGINS``; the login (no session yet) is checked this way too.

**Roles**: ``agent`` (assist panel) and ``admin`` (also the catalog API); no session is
401, a session without the role is 403.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from fastapi import HTTPException, Request
from sqlalchemy.orm import Session, sessionmaker
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from tailor.store.agents import agent_for_token, has_role, role_of

__all__ = [
    "COOKIE",
    "CSRF_HEADER",
    "AgentUser",
    "PanelAuth",
    "RateLimitMiddleware",
    "RateLimited",
    "RateLimiter",
    "RateSpec",
    "SecuritySettings",
    "csrf_token_for",
    "rate_limited_response",
]

COOKIE = "tailor_agent"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_PERIODS = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0}
_PERIODS |= {"h": 3600.0, "hour": 3600.0}
_SPEC_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([a-z]+)\s*$")


# -- rate limits --------------------------------------------------------------------------


@dataclass(frozen=True)
class RateSpec:
    """``count`` requests per ``seconds``, with bursts of up to ``count``."""

    count: int
    seconds: float

    @classmethod
    def parse(cls, text: str) -> RateSpec:
        """``"60/minute"``, ``"10/min"``, ``"5/10s"``, ``"1000/hour"``."""
        m = _SPEC_RE.match(text.lower())
        if not m or m.group(3) not in _PERIODS or int(m.group(1)) < 1:
            raise ValueError(
                f"a rate limit looks like 60/minute, 10/10s or 1000/hour "
                f"(units {sorted(_PERIODS)}), got {text!r}"
            )
        seconds = _PERIODS[m.group(3)] * (int(m.group(2)) if m.group(2) else 1)
        if seconds <= 0:
            raise ValueError(f"a rate limit's period must be positive, got {text!r}")
        return cls(int(m.group(1)), seconds)

    @property
    def rate(self) -> float:
        """Tokens added per second."""
        return self.count / self.seconds

    def __str__(self) -> str:
        return f"{self.count} per {self.seconds:g} s"


class RateLimiter:
    """In-memory token buckets by key, thread-safe; ``clock`` is injectable for tests."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000):
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def _level(self, key: str, spec: RateSpec, now: float) -> float:
        tokens, last = self._buckets.get(key, (float(spec.count), now))
        return min(float(spec.count), tokens + (now - last) * spec.rate)

    def wait(self, key: str, spec: RateSpec, cost: float = 1.0) -> float:
        """Seconds until ``cost`` tokens are available (0 = now), without taking any."""
        with self._lock:
            level = self._level(key, spec, self._clock())
        return 0.0 if level >= cost else (cost - level) / spec.rate

    def hit(self, key: str, spec: RateSpec, cost: float = 1.0) -> float:
        """Take ``cost`` tokens if available and return 0, else return seconds to wait."""
        with self._lock:
            now = self._clock()
            level = self._level(key, spec, now)
            if level < cost:
                self._buckets[key] = (level, now)
                return (cost - level) / spec.rate
            if len(self._buckets) >= self._max_keys and key not in self._buckets:
                self._prune(now)
            self._buckets[key] = (level - cost, now)
            return 0.0

    def _prune(self, now: float) -> None:
        """Forget buckets untouched for an hour (refilled: they hold no information), then,
        if still too many, the least recently used half."""
        for k in [k for k, (_t, last) in self._buckets.items() if now - last > 3600.0]:
            del self._buckets[k]
        if len(self._buckets) >= self._max_keys:
            oldest = sorted(self._buckets, key=lambda k: self._buckets[k][1])
            for k in oldest[: len(oldest) // 2]:
                del self._buckets[k]

    def __len__(self) -> int:
        return len(self._buckets)


class RateLimited(Exception):
    """A request over a limit; rendered by :func:`rate_limited_response`."""

    def __init__(self, scope: str, spec: RateSpec, retry_after: float, message: str) -> None:
        super().__init__(message)
        self.scope = scope
        self.spec = spec
        self.retry_after = retry_after
        self.message = message


def rate_limited_response(exc: RateLimited) -> JSONResponse:
    """HTTP 429 with ``Retry-After`` (whole seconds, at least 1) and the reason as JSON."""
    wait = max(1, math.ceil(exc.retry_after))
    return JSONResponse(
        {
            "detail": exc.message,
            "reason": "rate_limited",
            "limit": exc.scope,
            "allowed": str(exc.spec),
            "retry_after": wait,
        },
        status_code=429,
        headers={"Retry-After": str(wait)},
    )


def _env_flag(raw: str, name: str) -> bool:
    flag = raw.strip().lower()
    if flag in {"1", "true", "yes", "on"}:
        return True
    if flag in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"{name} must be true or false, got {raw!r}")


@dataclass(frozen=True)
class SecuritySettings:
    """Rate limits and panel origins: argument > ``TAILOR_<FIELD>`` variable > default.

    The defaults leave room for the test suite and a busy shopper (a reply takes a few
    hundred milliseconds) while stopping floods and password guessing.
    """

    #: ``TAILOR_RATE_LIMITS``: false turns every limit off.
    rate_limits: bool = True
    #: Every ``/api/*`` request (except ``/api/health``) per client IP.
    rate_api_per_ip: str = "600/minute"
    #: ``/api/chat`` messages per conversation (sender) and per client IP.
    rate_chat_per_sender: str = "30/minute"
    rate_chat_per_ip: str = "240/minute"
    #: ``/api/agent/login`` attempts per client IP, and failed attempts per username.
    rate_login_per_ip: str = "20/minute"
    rate_login_failures_per_user: str = "10/15min"
    #: Extra origins (comma-separated) the panel may be served from, e.g. behind a proxy
    #: whose public origin differs from the Host the app sees.
    panel_origins: str = ""
    specs: dict[str, RateSpec] = field(default_factory=dict, init=False, compare=False)

    def __post_init__(self) -> None:
        specs = {
            f.name.removeprefix("rate_"): RateSpec.parse(getattr(self, f.name))
            for f in fields(self)
            if f.init and f.name.startswith("rate_") and f.name != "rate_limits"
        }
        object.__setattr__(self, "specs", specs)
        origins = [o.strip().rstrip("/") for o in self.panel_origins.split(",") if o.strip()]
        bad = [o for o in origins if not re.match(r"^https?://[^/\s]+$", o)]
        if bad:
            raise ValueError(f"panel_origins must be origins such as https://shop.example; {bad}")

    @property
    def origins(self) -> frozenset[str]:
        return frozenset(o.strip().rstrip("/") for o in self.panel_origins.split(",") if o.strip())

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> SecuritySettings:
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            if not f.init:
                continue
            if overrides.get(f.name) is not None:
                values[f.name] = overrides.pop(f.name)
                continue
            overrides.pop(f.name, None)
            raw = env.get(f"TAILOR_{f.name.upper()}")
            if raw is None or raw == "":
                continue
            values[f.name] = (
                _env_flag(raw, f"TAILOR_{f.name.upper()}") if f.name == ("rate_limits") else raw
            )
        if overrides:
            valid = sorted(f.name for f in fields(cls) if f.init)
            raise TypeError(f"Unknown setting(s) {sorted(overrides)}; valid settings are {valid}")
        return cls(**values)


def client_ip(scope: Scope) -> str:
    """The peer address (uvicorn already applied ``X-Forwarded-For`` from trusted proxies)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class Limits:
    """The app's limiter and settings: ``check(name, key)`` raises :class:`RateLimited`."""

    def __init__(self, settings: SecuritySettings, limiter: RateLimiter | None = None) -> None:
        self.settings = settings
        self.limiter = limiter or RateLimiter()

    MESSAGES: ClassVar[dict[str, str]] = {
        "api_per_ip": "Too many requests from your address; slow down and retry shortly.",
        "chat_per_sender": "Too many messages in this conversation; wait a moment and retry.",
        "chat_per_ip": "Too many messages from your address; wait a moment and retry.",
        "login_per_ip": "Too many sign-in attempts from your address; retry later.",
        "login_failures_per_user": "Too many failed sign-ins for this user; retry later.",
    }

    def check(self, name: str, key: str) -> None:
        """Charge one request to ``key`` under limit ``name``."""
        if not self.settings.rate_limits:
            return
        spec = self.settings.specs[name]
        wait = self.limiter.hit(f"{name}:{key}", spec)
        if wait > 0:
            raise RateLimited(name, spec, wait, self.MESSAGES[name])

    def blocked(self, name: str, key: str) -> None:
        """Raise if ``key`` has no token left under ``name``, without charging it."""
        if not self.settings.rate_limits:
            return
        spec = self.settings.specs[name]
        wait = self.limiter.wait(f"{name}:{key}", spec)
        if wait > 0:
            raise RateLimited(name, spec, wait, self.MESSAGES[name])

    def charge(self, name: str, key: str) -> None:
        """Take one token from ``key`` under ``name`` without raising (failed logins)."""
        if self.settings.rate_limits:
            self.limiter.hit(f"{name}:{key}", self.settings.specs[name])


class RateLimitMiddleware:
    """Charges every ``/api/*`` request (but ``/api/health``) to its client IP."""

    def __init__(self, app: ASGIApp, limits: Limits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] == "http"
            and path.startswith("/api/")
            and path != "/api/health"
            and scope.get("method") != "OPTIONS"
        ):
            try:
                self.limits.check("api_per_ip", client_ip(scope))
            except RateLimited as exc:
                await rate_limited_response(exc)(scope, receive, send)
                return
        await self.app(scope, receive, send)


# -- CSRF -----------------------------------------------------------------------------


def csrf_token_for(session_token: str) -> str:
    """The CSRF token of a panel session (derived, so nothing more is stored)."""
    return hashlib.sha256(f"tailor-csrf:{session_token}".encode()).hexdigest()


def own_origin(request: Request) -> str:
    host = request.headers.get("host") or request.url.netloc
    return f"{request.url.scheme}://{host}".lower()


def _origin_of_referer(referer: str) -> str | None:
    m = re.match(r"^(https?://[^/?#]+)", referer.strip(), re.IGNORECASE)
    return m.group(1).lower() if m else None


def check_origin(request: Request, extra: frozenset[str]) -> None:
    """403 when the browser says the request comes from a page of another origin."""
    origin = request.headers.get("origin")
    source = origin.strip().lower() if origin and origin.strip() != "null" else None
    if origin is not None and source is None:  # "null": sandboxed frame, file:, redirects
        raise HTTPException(403, "Cross-site request refused (Origin: null).")
    if source is None:
        referer = request.headers.get("referer")
        source = _origin_of_referer(referer) if referer else None
    if source is None:
        return  # not a browser, or one that sends neither: the CSRF token still applies
    allowed = {own_origin(request), *(o.lower() for o in extra)}
    if source.rstrip("/") not in allowed:
        raise HTTPException(403, f"Cross-site request refused: {source} is not this site.")


# -- the panel's sign-in --------------------------------------------------------------


@dataclass(frozen=True)
class AgentUser:
    """The signed-in agent of a request."""

    id: int
    username: str
    role: str


class PanelAuth:
    """FastAPI dependencies for cookie-authenticated routes: ``require("agent")``,
    ``require("admin")``. State-changing requests also pass the CSRF checks."""

    def __init__(
        self, factory: Callable[[], sessionmaker[Session]], settings: SecuritySettings
    ) -> None:
        self.factory = factory
        self.origins = settings.origins

    def check_login_origin(self, request: Request) -> None:
        check_origin(request, self.origins)

    def require(self, role: str) -> Callable[[Request], AgentUser]:
        def dependency(request: Request) -> AgentUser:
            token = request.cookies.get(COOKIE)
            with self.factory()() as session:
                agent = agent_for_token(session, token)
                if agent is None:
                    raise HTTPException(401, "Sign in as an agent first.")
                user = AgentUser(agent.id, agent.username, role_of(agent))
                allowed = has_role(agent, role)
            if request.method not in SAFE_METHODS:
                check_origin(request, self.origins)
                sent = request.headers.get(CSRF_HEADER, "")
                if not (token and hmac.compare_digest(sent, csrf_token_for(token))):
                    raise HTTPException(
                        403, f"Missing or wrong {CSRF_HEADER} header (cross-site request?)."
                    )
            if not allowed:
                raise HTTPException(403, f"This needs the {role} role; you are an {user.role}.")
            return user

        dependency.__name__ = f"require_{role}"
        return dependency
