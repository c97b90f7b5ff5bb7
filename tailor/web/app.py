"""The shopper's web page and its small API.

The page talks to this app, not to Rasa directly: one origin, input validated here, the
Rasa API token kept server-side, and a place for identity and event capture to grow.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field, field_validator

from tailor.config import Settings

STATIC_DIR = Path(__file__).resolve().parent / "static"
SENDER_RE = re.compile(r"^[A-Za-z0-9_.:-]{6,128}$")
MAX_MESSAGE_CHARS = 2000


class ChatIn(BaseModel):
    """A shopper's message from the page."""

    sender: str = Field(description="Conversation id kept by the page")
    message: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS)

    @field_validator("sender")
    @classmethod
    def _sender_ok(cls, v: str) -> str:
        if not SENDER_RE.match(v):
            raise ValueError("sender must be 6-128 characters of letters, digits, _ . : -")
        return v

    @field_validator("message")
    @classmethod
    def _message_ok(cls, v: str) -> str:
        v = v.strip()
        if not v:
            raise ValueError("message must not be blank")
        return v


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


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the app; the Rasa URL and API token come from settings / environment."""
    settings = settings or Settings.load()
    token = os.environ.get("TAILOR_RASA_TOKEN", "")
    client = httpx.AsyncClient(base_url=settings.rasa_url, timeout=30.0)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await client.aclose()

    app = FastAPI(title="Tailor", version="0.1.0", lifespan=lifespan)

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html")

    @app.get("/api/health")
    async def health() -> dict[str, Any]:
        try:
            rasa_ok = (await client.get("/", timeout=2.0)).status_code == 200
        except httpx.HTTPError:
            rasa_ok = False
        return {"ok": True, "rasa": rasa_ok}

    @app.post("/api/chat")
    async def chat(body: ChatIn) -> JSONResponse:
        try:
            resp = await client.post(
                "/webhooks/rest/webhook",
                json={"sender": body.sender, "message": body.message},
            )
        except httpx.HTTPError as exc:
            raise HTTPException(
                503, "The assistant is not reachable right now; try again shortly."
            ) from exc
        if resp.status_code != 200:
            raise HTTPException(502, f"The assistant answered with HTTP {resp.status_code}.")
        return JSONResponse({"messages": resp.json()})

    @app.get("/api/history")
    async def history(sender: str = Query(...)) -> dict[str, Any]:
        if not SENDER_RE.match(sender):
            raise HTTPException(422, "sender must be 6-128 characters of letters, digits, _ . : -")
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

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
