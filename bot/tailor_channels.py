"""Tailor's input channels for the Rasa server (imported by Rasa, Python 3.10 venv).

``credentials.yml`` names ``tailor_channels.TailorRestInput``; ``tailor run`` puts this
folder on the Rasa server's ``PYTHONPATH`` (and Rasa adds its working directory, ``bot/``).

Rasa 3.6.21's REST channel already copies the request's ``metadata`` into the message, but it
also takes whatever else the caller sends: metadata of any JSON type and size, and an
``input_channel`` label of the caller's choosing — so a caller of the webhook could claim to
speak from another channel (Telegram, Slack …), whose user ids a store may have linked to
customers. This channel keeps the REST webhook (same name, same URL
``/webhooks/rest/webhook``) and narrows that down: the label is always ``rest``, and metadata
reaches the actions only as a JSON object of bounded size. Identity is still decided by the
action server, which verifies the signed ``customer_token`` in the metadata.

Rasa 3.6.21's socket.io channel does forward metadata (from the key ``metadata_key`` names;
``customData`` in our credentials, as the Rasa web chat widget sends it), but with
python-socketio >= 5.10 (``enter_room`` became a coroutine, which Rasa calls without
``await``) a client never joins its session's room when ``session_persistence`` is on, so it
never receives a reply. Its output also spreads a custom JSON message into ``emit()``'s
keyword arguments, so a payload such as ``{"type": "product_cards", ...}`` raises instead of
reaching the widget. :class:`TailorSocketIOInput` repairs both — custom payloads arrive as
``bot_uttered`` ``{"custom": {...}}``, the shape the REST channel returns them in — and
applies the same metadata rules as the REST channel.
"""

from __future__ import annotations

import inspect
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.rest import RestInput
from rasa.core.channels.socketio import SocketIOInput, SocketIOOutput
from sanic import Blueprint
from sanic.request import Request

logger = logging.getLogger(__name__)

#: Metadata whose JSON is longer than this is dropped (the tracker store keeps it per message).
MAX_METADATA_CHARS = 16_384


def clean_metadata(metadata: Any, parse_text: bool = False) -> dict[str, Any] | None:
    """``metadata`` if it is a JSON object of bounded size (or, with ``parse_text``, the JSON
    text of one), else ``None``."""
    if metadata is None:
        return None
    if parse_text and isinstance(metadata, str):
        try:
            metadata = json.loads(metadata)
        except ValueError:
            logger.warning("Ignoring metadata that is not valid JSON")
            return None
    if not isinstance(metadata, dict):
        logger.warning("Ignoring metadata that is not a JSON object (%s)", type(metadata))
        return None
    try:
        size = len(json.dumps(metadata))
    except (TypeError, ValueError):
        return None
    if size > MAX_METADATA_CHARS:
        logger.warning("Ignoring metadata of %d characters (limit %d)", size, MAX_METADATA_CHARS)
        return None
    return metadata


def metadata_from_body(body: Any) -> dict[str, Any] | None:
    """The ``metadata`` object of a webhook request body, or ``None`` if absent or unusable."""
    return clean_metadata(body.get("metadata")) if isinstance(body, dict) else None


class TailorRestInput(RestInput):
    """The REST webhook, with metadata as a bounded object and the channel label pinned."""

    @classmethod
    def name(cls) -> str:
        """Same name as Rasa's REST channel: same URL, same ``input_channel`` for the actions."""
        return "rest"

    def get_metadata(self, request: Request) -> dict[str, Any] | None:
        """The request's ``metadata`` if it is a JSON object of bounded size."""
        return metadata_from_body(request.json)

    def _extract_input_channel(self, req: Request) -> str:
        """Always ``rest``: a caller must not choose the channel its message is recorded under."""
        return self.name()


class TailorSocketIOOutput(SocketIOOutput):
    """Rasa's socket.io output, sending custom JSON as ``{"custom": ...}`` like REST does."""

    @classmethod
    def name(cls) -> str:
        """Same name as Rasa's socket.io output."""
        return "socketio"

    async def send_custom_json(
        self, recipient_id: str, json_message: dict[str, Any], **kwargs: Any
    ) -> None:
        """Emit the payload under ``custom`` to the conversation's room."""
        await self._send_message(recipient_id, {"custom": json_message})


class TailorSocketIOInput(SocketIOInput):
    """Rasa's socket.io channel, with session rooms that work on python-socketio >= 5.10,
    custom payloads that reach the client, and metadata (``metadata_key``) handed on only as
    a JSON object of bounded size."""

    @classmethod
    def name(cls) -> str:
        """Same name as Rasa's socket.io channel (same path, same ``input_channel``)."""
        return "socketio"

    def get_output_channel(self) -> SocketIOOutput | None:
        """The output for messages not caused by a user message (e.g. external events)."""
        if self.sio is None:
            return super().get_output_channel()
        return TailorSocketIOOutput(self.sio, self.bot_message_evt)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """Rasa's blueprint with the session and message handlers replaced."""
        webhook = super().blueprint(on_new_message)
        sio = self.sio
        if sio is None:  # pragma: no cover - set by the parent's blueprint()
            raise RuntimeError("socket.io server missing after blueprint()")

        @sio.on("session_request", namespace=self.namespace)
        async def session_request(sid: str, data: Any) -> None:
            asked = data.get("session_id") if isinstance(data, dict) else None
            session_id = str(asked) if asked else uuid.uuid4().hex
            if self.session_persistence:
                entered = sio.enter_room(sid, session_id)
                if inspect.isawaitable(entered):  # a coroutine since python-socketio 5.10
                    await entered
            await sio.emit("session_confirm", session_id, room=sid)

        @sio.on(self.user_message_evt, namespace=self.namespace)
        async def handle_message(sid: str, data: Any) -> None:
            if not isinstance(data, dict):
                return
            if self.session_persistence:
                if not data.get("session_id"):
                    logger.warning("Ignoring a socket.io message without a session_id")
                    return
                sender_id = str(data["session_id"])
            else:
                sender_id = sid
            metadata = clean_metadata(data.get(self.metadata_key or "metadata"), parse_text=True)
            await on_new_message(
                UserMessage(
                    str(data.get("message") or ""),
                    TailorSocketIOOutput(sio, self.bot_message_evt),
                    sender_id,
                    input_channel=self.name(),
                    metadata=metadata,
                )
            )

        return webhook
