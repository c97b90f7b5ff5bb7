"""Support agents: accounts with salted scrypt password hashes and a role, expiring sessions,
and an audit log of what agents did in conversations (take over, message, card, hand back).

Roles: an ``agent`` reads conversations and answers shoppers in the assist panel; an
``admin`` may do that too and also manages the catalog (``/api/admin``). The ``role`` column
was added after the first release: it is nullable so :func:`tailor.store.db.init_db` can add
it to an existing database, and a NULL role reads as ``agent`` (least privilege).

Only hashes are stored: the password's (scrypt, per-agent salt) and the session token's
(SHA-256 — the token itself is 256 random bits, so a fast hash is enough). Callers own the
session, as everywhere in :mod:`tailor.store`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from tailor.store.models import Base, as_utc, utcnow

__all__ = [
    "AGENT_ACTIONS",
    "ROLES",
    "Agent",
    "AgentAction",
    "AgentSession",
    "agent_by_username",
    "agent_for_token",
    "create_agent",
    "create_session",
    "end_session",
    "has_role",
    "hash_password",
    "record_action",
    "role_of",
    "set_password",
    "set_role",
    "taken_over",
    "verify_login",
    "verify_password",
]

USERNAME_RE = re.compile(r"^[A-Za-z0-9_.@-]{3,64}$")
MIN_PASSWORD_CHARS = 10
MAX_PASSWORD_CHARS = 1024
#: scrypt cost: N=2^14, r=8, p=1 (RFC 7914's interactive-login example; ~16 MB, ~50 ms).
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
SCRYPT_MAXMEM = 64 * 1024 * 1024
#: What an agent can do to a conversation; the latest takeover/handback decides who answers.
AGENT_ACTIONS: frozenset[str] = frozenset({"takeover", "handback", "message", "card"})
#: Roles, least privileged first; each role may do everything the roles before it may.
ROLES: tuple[str, ...] = ("agent", "admin")
DEFAULT_ROLE = "agent"


class Agent(Base):
    """A support agent who may read conversations and answer shoppers."""

    __tablename__ = "agents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: "agent" or "admin"; NULL (rows from before roles existed) reads as "agent".
    role: Mapped[str | None] = mapped_column(String(16), default=DEFAULT_ROLE)


class AgentSession(Base):
    """A signed-in browser: the SHA-256 of its cookie token, until ``expires_at``."""

    __tablename__ = "agent_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AgentAction(Base):
    """Something an agent did in a conversation (audit trail and takeover state)."""

    __tablename__ = "agent_actions"
    __table_args__ = (Index("ix_agent_actions_sender_time", "sender_id", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    agent_id: Mapped[int | None] = mapped_column(
        ForeignKey("agents.id", ondelete="SET NULL"), index=True, default=None
    )
    sender_id: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


# -- passwords --------------------------------------------------------------------------


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_password(password: str, salt: bytes | None = None) -> str:
    """``scrypt$N$r$p$salt$hash`` for ``password`` with a fresh 16-byte salt."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=SCRYPT_N,
        r=SCRYPT_R,
        p=SCRYPT_P,
        maxmem=SCRYPT_MAXMEM,
        dklen=32,
    )
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored`` (constant-time compare; False if malformed)."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = _unb64(digest)
        got = hashlib.scrypt(
            password.encode("utf-8"),
            salt=_unb64(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=SCRYPT_MAXMEM,
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


#: Hash checked when the username is unknown, so both failures take the same time.
_DUMMY_HASH = hash_password("not-a-real-password", salt=b"\0" * 16)


# -- agents and sessions ----------------------------------------------------------------


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise ValueError(f"Unknown role {role!r}; valid roles are {list(ROLES)}")
    return role


def role_of(agent: Agent) -> str:
    """The agent's role; accounts created before roles existed are plain agents."""
    return agent.role if agent.role is not None and agent.role in ROLES else DEFAULT_ROLE


def has_role(agent: Agent, role: str) -> bool:
    """Whether ``agent`` may act as ``role`` (an admin may also act as an agent)."""
    return ROLES.index(role_of(agent)) >= ROLES.index(_check_role(role))


def create_agent(session: Session, username: str, password: str, role: str = DEFAULT_ROLE) -> Agent:
    """Add an agent with ``role`` ("agent" or "admin"); the username must be new and the
    password at least 10 characters."""
    _check_role(role)
    if not USERNAME_RE.match(username):
        raise ValueError("username must be 3-64 characters of letters, digits, _ . @ -")
    if not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
        raise ValueError(
            f"password must be {MIN_PASSWORD_CHARS}-{MAX_PASSWORD_CHARS} characters long"
        )
    if session.scalar(select(Agent).where(Agent.username == username)) is not None:
        raise ValueError(f"an agent named {username!r} already exists")
    agent = Agent(username=username, password_hash=hash_password(password), role=role)
    session.add(agent)
    session.flush()
    return agent


def agent_by_username(session: Session, username: str) -> Agent | None:
    """The agent with this username, or None."""
    return session.scalar(select(Agent).where(Agent.username == username))


def set_password(session: Session, agent: Agent, password: str) -> None:
    """Replace an agent's password and end all of their sessions."""
    if not MIN_PASSWORD_CHARS <= len(password) <= MAX_PASSWORD_CHARS:
        raise ValueError(
            f"password must be {MIN_PASSWORD_CHARS}-{MAX_PASSWORD_CHARS} characters long"
        )
    agent.password_hash = hash_password(password)
    session.execute(delete(AgentSession).where(AgentSession.agent_id == agent.id))


def set_role(session: Session, agent: Agent, role: str) -> None:
    """Change an agent's role and end their sessions, so the new rights apply at next sign-in."""
    agent.role = _check_role(role)
    session.execute(delete(AgentSession).where(AgentSession.agent_id == agent.id))


def verify_login(session: Session, username: str, password: str) -> Agent | None:
    """The agent if ``username`` and ``password`` match, else None (same cost either way)."""
    if len(password) > MAX_PASSWORD_CHARS:
        return None
    agent = session.scalar(select(Agent).where(Agent.username == username))
    ok = verify_password(password, agent.password_hash if agent else _DUMMY_HASH)
    return agent if agent is not None and ok else None


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_session(
    session: Session, agent: Agent, minutes: int, now: datetime | None = None
) -> tuple[str, datetime]:
    """A new random session token for ``agent`` (only its hash is stored) and its expiry.

    Expired sessions of every agent are removed on the way.
    """
    if minutes < 1:
        raise ValueError(f"session minutes must be at least 1, got {minutes}")
    now = now or utcnow()
    session.execute(delete(AgentSession).where(AgentSession.expires_at <= now))
    token = secrets.token_urlsafe(32)
    expires = now + timedelta(minutes=minutes)
    session.add(AgentSession(token_hash=_token_hash(token), agent_id=agent.id, expires_at=expires))
    session.flush()
    return token, expires


def agent_for_token(
    session: Session, token: str | None, now: datetime | None = None
) -> Agent | None:
    """The agent a session token belongs to, if it exists and has not expired."""
    if not token or len(token) > 256:
        return None
    row = session.get(AgentSession, _token_hash(token))
    if row is None or as_utc(row.expires_at) <= (now or utcnow()):
        return None
    return session.get(Agent, row.agent_id)


def end_session(session: Session, token: str | None) -> None:
    """Forget a session token (logout); unknown tokens are ignored."""
    if token:
        session.execute(delete(AgentSession).where(AgentSession.token_hash == _token_hash(token)))


# -- what agents did ------------------------------------------------------------------


def record_action(
    session: Session,
    agent: Agent | None,
    sender_id: str,
    kind: str,
    payload: dict[str, Any] | None = None,
) -> AgentAction:
    """Log an agent's action in a conversation."""
    if kind not in AGENT_ACTIONS:
        raise ValueError(
            f"Unknown agent action {kind!r}; valid actions are {sorted(AGENT_ACTIONS)}"
        )
    action = AgentAction(
        agent_id=agent.id if agent else None,
        sender_id=sender_id,
        kind=kind,
        payload=dict(payload or {}),
    )
    session.add(action)
    return action


@dataclass(frozen=True)
class Control:
    """Who answers a conversation: ``agent`` is the username while one has taken over."""

    sender_id: str
    agent: str | None
    since: datetime


def taken_over(session: Session, sender_ids: list[str] | None = None) -> dict[str, Control]:
    """Conversations whose latest takeover/handback is a takeover, by sender id."""
    stmt = (
        select(AgentAction, Agent.username)
        .outerjoin(Agent, Agent.id == AgentAction.agent_id)
        .where(AgentAction.kind.in_(("takeover", "handback")))
    )
    if sender_ids is not None:
        stmt = stmt.where(AgentAction.sender_id.in_(sender_ids))
    latest: dict[str, tuple[AgentAction, str | None]] = {}
    for action, username in session.execute(stmt.order_by(AgentAction.id)):
        latest[action.sender_id] = (action, username)
    return {
        sid: Control(sid, username, as_utc(action.created_at))
        for sid, (action, username) in latest.items()
        if action.kind == "takeover"
    }
