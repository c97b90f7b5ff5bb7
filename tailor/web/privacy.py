"""The shopper's own data: ``GET /api/privacy/export`` and ``POST /api/privacy/forget``.

Only the shopper may use them. A signed-in customer proves who they are with the store's
signed ``customer_token`` (the ``X-Customer-Token`` header for the export, the body for
forget), verified as every write on a customer's behalf is; an anonymous visitor with the
conversation id (``sender``) their page keeps — which reaches only what is kept under that
conversation and not linked to a customer. A token that does not verify is refused (403),
never downgraded to an anonymous request. There is no agent or admin path.

Building the router also installs the log redaction of personal data for the web app's
process (:func:`tailor.privacy.install_log_redaction`).
"""

# No ``from __future__ import annotations``: FastAPI resolves the routes' annotations.
import re
from collections.abc import Callable
from typing import Any, Literal

from fastapi import APIRouter, Header, HTTPException, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.orm import Session, sessionmaker

from tailor.config import Settings
from tailor.privacy import (
    ConversationOwned,
    Subject,
    TrackerStore,
    export_data,
    forget,
    install_log_redaction,
)
from tailor.profiles.identity import identify
from tailor.store.profiles import customer_by_external_id
from tailor.web.errors import unprocessable

#: Same rules as the chat API (``tailor.web.app``).
SENDER_RE = re.compile(r"^[A-Za-z0-9_.:-]{6,128}$")
SENDER_RULE = "sender must be 6-128 characters of letters, digits, _ . : -"
TOKEN_RE = re.compile(r"^[A-Za-z0-9_.=-]*$")
MAX_TOKEN_CHARS = 4096


class ForgetIn(BaseModel):
    """A request to delete everything kept about the shopper; ``confirm`` must be true."""

    model_config = ConfigDict(extra="forbid")

    sender: str
    customer_token: str | None = Field(default=None, max_length=MAX_TOKEN_CHARS)
    confirm: Literal[True] = Field(description="must be true: deleting cannot be undone")

    @field_validator("sender")
    @classmethod
    def _sender_ok(cls, v: str) -> str:
        if not SENDER_RE.match(v):
            raise ValueError(SENDER_RULE)
        return v

    @field_validator("customer_token")
    @classmethod
    def _token_ok(cls, v: str | None) -> str | None:
        if v and not TOKEN_RE.match(v):
            raise ValueError("customer_token must be a signed token (letters, digits, _ - . =)")
        return v or None


def privacy_router(
    settings: Settings,
    factory: Callable[[], sessionmaker[Session]],
    tracker: TrackerStore | None = None,
) -> APIRouter:
    """Routes of the shopper's data; ``factory()`` gives the database's session factory,
    ``tracker`` Rasa's tracker store (default: the one these settings run Rasa with)."""
    install_log_redaction()
    secret = settings.customer_token_secret
    store = tracker or TrackerStore.from_settings(settings)
    router = APIRouter()

    def subject(session: Session, sender: str, token: str | None) -> Subject:
        """Who is asking: the customer a valid token names, else the conversation's visitor."""
        if not SENDER_RE.match(sender):
            raise unprocessable(SENDER_RULE, "sender")
        if not token:
            return Subject(sender_id=sender)
        if not TOKEN_RE.match(token):
            raise unprocessable("the customer token must be a signed token", "customer_token")
        if not secret:
            raise HTTPException(403, "Signed-in requests need a customer token secret.")
        who = identify(sender, {"customer_token": token}, secret)
        if who.kind != "customer" or who.customer_id is None:
            raise HTTPException(403, f"The customer token is not valid ({who.error or 'invalid'}).")
        customer = customer_by_external_id(session, who.customer_id)
        if customer is None:
            raise HTTPException(404, "Nothing is kept about this customer.")
        return Subject(sender_id=sender, customer_id=customer.id)

    @router.get("/api/privacy/export")
    def export(
        sender: str = Query(..., description="the conversation id the page keeps"),
        x_customer_token: str | None = Header(default=None, max_length=MAX_TOKEN_CHARS),
    ) -> JSONResponse:
        """Everything kept about the shopper (JSON, as a download)."""
        with factory()() as session:
            who = subject(session, sender, x_customer_token)
            try:
                data = export_data(session, who, store)
            except ConversationOwned as exc:
                raise HTTPException(403, str(exc)) from exc
        return JSONResponse(
            dict(data),
            headers={"Content-Disposition": 'attachment; filename="my-tailor-data.json"'},
        )

    @router.post("/api/privacy/forget")
    def forget_me(body: ForgetIn) -> dict[str, Any]:
        """Delete everything kept about the shopper (all their conversations when signed in)."""
        with factory().begin() as session:
            who = subject(session, body.sender, body.customer_token)
            try:
                report = forget(session, who, store)
            except ConversationOwned as exc:
                raise HTTPException(403, str(exc)) from exc
        return {
            "forgotten": True,
            "identity": "customer" if who.identified else "anonymous",
            "conversations": report.conversations,
            "deleted": report.deleted,
        }

    return router
