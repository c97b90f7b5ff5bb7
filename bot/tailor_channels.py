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

The messaging platforms (Telegram, Slack, Facebook Messenger, Twilio SMS/WhatsApp) are Rasa's
own connectors, subclassed under the same names below: configurable API URLs, every webhook
authenticated, and product cards drawn with each platform's own elements. ``tailor run``
enables a platform only when its ``TAILOR_*`` credentials are set (``tailor/runtime/rasa.py``);
see ``docs/channels.md``.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import importlib.util
import inspect
import json
import logging
import os
import sys
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cache
from http import HTTPStatus
from pathlib import Path
from types import ModuleType
from typing import Any

from aiogram.bot.api import TelegramAPIServer
from aiogram.types import Update
from rasa.core.channels.channel import InputChannel, OutputChannel, UserMessage
from rasa.core.channels.facebook import FacebookInput, Messenger, MessengerBot
from rasa.core.channels.rest import RestInput
from rasa.core.channels.slack import SlackBot, SlackInput
from rasa.core.channels.socketio import SocketIOInput, SocketIOOutput
from rasa.core.channels.telegram import TelegramInput, TelegramOutput
from rasa.core.channels.twilio import TwilioInput, TwilioOutput
from rasa.shared.constants import INTENT_MESSAGE_PREFIX
from rasa.shared.core.constants import USER_INTENT_RESTART
from sanic import Blueprint, response
from sanic.exceptions import InvalidUsage
from sanic.request import Request
from sanic.response import HTTPResponse
from slack_sdk.web.async_client import AsyncWebClient
from twilio.request_validator import RequestValidator

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


# --- Failed turns -----------------------------------------------------------------------------
#
# Rasa 3.6 waits up to ``DEFAULT_REQUEST_TIMEOUT`` (5 minutes) for each custom action call and,
# when the call fails (action server down, slow, answering 500), logs the error, drops the
# action's events and carries on: the turn is saved complete (user message, the action with no
# events, ``action_listen``) but the shopper gets no answer — the REST webhook says ``200 []``.
# Every input channel below hands its messages to Rasa through :func:`guard_turns`, which
#
# - bounds each action call to ``TAILOR_ACTION_TIMEOUT`` seconds (default 10; the web app waits
#   30 s for Rasa), by lowering the timeout Rasa's ``RemoteAction.run`` reads at call time;
# - notes, for the message being handled, which custom actions failed (a context variable set
#   per message; ``ActionExecutionRejection`` is Rasa's normal flow, not a failure);
# - when an action failed or handling the message raised, and the shopper got no message in this
#   turn, sends :data:`FALLBACK_TEXT` on the message's own output channel.
#
# The tracker is left as Rasa saved it: the failed turn is complete, so the next message, once
# the action server is back, is handled normally. The apology is not stored as a bot event (it
# is not a dialogue step). In the normal path the guard costs a context-variable set/reset and a
# counter per message.

#: Sent when the bot could not answer a message (an action failed or timed out).
FALLBACK_TEXT = (
    "Sorry, I'm having trouble finding products right now — please try again in a moment."
)
#: The answer to a message with no words (empty or only whitespace).
BLANK_TEXT = "What are you looking for? Tell me a product, a brand or a price range."
#: Seconds Rasa waits for one custom action call.
ACTION_TIMEOUT_ENV = "TAILOR_ACTION_TIMEOUT"
DEFAULT_ACTION_TIMEOUT = 10.0


@dataclass
class _Turn:
    """What happened while one message was handled."""

    failed: list[str] = field(default_factory=list)
    replies: int = 0


#: The message being handled in this task (``None`` outside :func:`guard_turns`).
_turn: ContextVar[_Turn | None] = ContextVar("tailor_turn", default=None)


def action_timeout(env: Mapping[str, str] = os.environ) -> float:
    """Seconds to wait for one custom action call, from ``TAILOR_ACTION_TIMEOUT``."""
    raw = env.get(ACTION_TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_ACTION_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not 0 < value <= 3600:
        raise ValueError(
            f"{ACTION_TIMEOUT_ENV} must be a number of seconds in (0, 3600], got {raw!r}"
        )
    return value


def install_action_guard(timeout: float) -> None:
    """Bound Rasa's custom action calls to ``timeout`` seconds, record their failures and
    count the bot's messages per handled message (idempotent; see the section comment)."""
    import rasa.core.actions.action as rasa_action

    rasa_action.DEFAULT_REQUEST_TIMEOUT = timeout  # type: ignore[attr-defined]
    remote = rasa_action.RemoteAction
    if getattr(remote.run, "_tailor_guard", False):
        return
    run_action = remote.run
    send_response = OutputChannel.send_response

    @functools.wraps(run_action)
    async def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await run_action(self, *args, **kwargs)
        except rasa_action.ActionExecutionRejection:
            raise  # the action declined to run: Rasa predicts another one
        except Exception:
            turn = _turn.get()
            if turn is not None:
                turn.failed.append(self.name())
            raise

    @functools.wraps(send_response)
    async def counted(self: Any, recipient_id: str, message: dict[str, Any]) -> None:
        turn = _turn.get()
        if turn is not None:
            turn.replies += 1
        await send_response(self, recipient_id, message)

    run._tailor_guard = True  # type: ignore[attr-defined]
    remote.run = run  # type: ignore[method-assign]
    # Rasa sends every bot message of a turn through OutputChannel.send_response.
    OutputChannel.send_response = counted  # type: ignore[method-assign]


def guard_turns(
    on_new_message: Callable[[UserMessage], Awaitable[Any]],
) -> Callable[[UserMessage], Awaitable[Any]]:
    """``on_new_message`` that answers :data:`FALLBACK_TEXT` when the bot could not answer
    (see the section comment). Installs the action guard on first use by a channel."""
    install_action_guard(action_timeout())

    async def handle(message: UserMessage) -> Any:
        if not (message.text or "").strip():
            # Nothing to understand (Rasa's featurizers even fail on it): ask, don't guess.
            # Nothing is lost - the message carried no words - and no turn is stored.
            await message.output_channel.send_text_message(message.sender_id, BLANK_TEXT)
            return None
        turn = _Turn()
        token = _turn.set(turn)
        try:
            return await on_new_message(message)
        except Exception:
            turn.failed.append("handling the message")
            raise
        finally:
            _turn.reset(token)
            if turn.failed and not turn.replies:
                logger.warning(
                    "No answer to %s (%s failed): sending the fallback message",
                    message.sender_id,
                    ", ".join(turn.failed),
                )
                await message.output_channel.send_text_message(message.sender_id, FALLBACK_TEXT)

    return handle


#: Longest ``sender`` the REST webhook takes (the SQL tracker store's ``sender_id`` column).
MAX_SENDER_ID = 255
#: Longest ``message`` it takes, as the web app's chat API (tailor/web/app.py): a 100,000
#: character message kept the action server busy for over a minute.
MAX_MESSAGE_CHARS = 2000


class TailorRestInput(RestInput):
    """The REST webhook, with metadata as a bounded object and the channel label pinned."""

    @classmethod
    def name(cls) -> str:
        """Same name as Rasa's REST channel: same URL, same ``input_channel`` for the actions."""
        return "rest"

    def get_metadata(self, request: Request) -> dict[str, Any] | None:
        """The request's ``metadata`` if it is a JSON object of bounded size."""
        return metadata_from_body(request.json)

    async def _extract_sender(self, req: Request) -> str | None:
        """The ``sender``, once the body is checked (Rasa reads it first): a JSON object with a
        non-empty string ``sender`` and a string ``message`` of at most
        :data:`MAX_MESSAGE_CHARS`, else 400 with the reason.

        Rasa's own would answer a body that is not an object (empty, ``null``, a list) with a
        500, and file a message without a sender under the shared conversation ``default``.
        """
        body = req.json
        if not isinstance(body, dict):
            raise InvalidUsage("the body must be a JSON object with 'sender' and 'message'")
        sender = body.get("sender")
        if not isinstance(sender, str) or not sender.strip() or len(sender) > MAX_SENDER_ID:
            raise InvalidUsage(
                f"'sender' must be a non-empty string of at most {MAX_SENDER_ID} characters"
            )
        message = body.get("message")
        if not isinstance(message, str):
            raise InvalidUsage("'message' must be a string")
        if len(message) > MAX_MESSAGE_CHARS:
            raise InvalidUsage(f"'message' is longer than {MAX_MESSAGE_CHARS} characters")
        return sender

    def _extract_input_channel(self, req: Request) -> str:
        """Always ``rest``: a caller must not choose the channel its message is recorded under."""
        return self.name()

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """Rasa's REST webhook, answering politely when the bot could not (:func:`guard_turns`)."""
        return super().blueprint(guard_turns(on_new_message))


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
        on_new_message = guard_turns(on_new_message)
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


# --- Messaging platforms -------------------------------------------------------------------
#
# Rasa's own Telegram, Slack, Facebook Messenger and Twilio connectors, subclassed under the
# same names (so ``input_channel`` stays "telegram", "slack", "facebook", "twilio" and the URLs
# stay ``/webhooks/<name>/webhook``) to add what Tailor needs:
#
# - the platform's API base URL is configurable (``api_url`` in the credentials, written from
#   ``TAILOR_<PLATFORM>_API_URL``; default the real one);
# - every webhook is authenticated: Telegram by the secret token registered with the webhook
#   (``X-Telegram-Bot-Api-Secret-Token``; Rasa only compares the bot's user name, which anyone
#   can send), Slack by ``X-Slack-Signature`` (Rasa's check), Messenger by
#   ``X-Hub-Signature-256`` (Rasa accepts only the SHA-1 ``X-Hub-Signature`` and answers 200
#   to a bad one), Twilio by ``X-Twilio-Signature`` (Rasa checks nothing). Bad ones get 403.
#   A linked platform user id identifies a customer, so an unsigned message must not get in;
# - Tailor's ``product_cards`` payload is drawn with the platform's own elements by
#   ``tailor/recommend/channels.py`` (Telegram inline keyboard, Slack blocks, Messenger generic
#   template, numbered SMS/WhatsApp text); Tailor's other payloads (product details, comparison)
#   repeat the text already sent, so they are not sent again; other custom JSON goes to Rasa.


TELEGRAM_API_URL = "https://api.telegram.org"
SLACK_API_URL = "https://slack.com/api/"
FACEBOOK_API_URL = "https://graph.facebook.com"
TWILIO_API_URL = "https://api.twilio.com"
TELEGRAM_SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
#: Tailor's own payload types; the output channels below render or skip them.
TAILOR_PAYLOADS = frozenset({"product_cards", "product_details", "comparison"})
#: Variable naming tailor/recommend/channels.py (set by ``tailor run``, see tailor/runtime/rasa.py).
RENDERING_ENV = "TAILOR_CHANNEL_RENDERING"


@cache
def rendering() -> ModuleType:
    """``tailor/recommend/channels.py``, loaded by path: the Rasa venv does not have the
    ``tailor`` package, and that module needs only the standard library."""
    candidates = [os.environ.get(RENDERING_ENV)]
    candidates += [str(p / "tailor" / "recommend" / "channels.py") for p in Path(__file__).parents]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            spec = importlib.util.spec_from_file_location("tailor_channel_rendering", candidate)
            if spec is None or spec.loader is None:  # pragma: no cover - a .py file always loads
                continue
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            spec.loader.exec_module(module)
            return module
    raise RuntimeError(
        f"tailor/recommend/channels.py not found: set {RENDERING_ENV} to its path "
        "(`tailor run` does)."
    )


def is_tailor_payload(message: Any) -> bool:
    """True for Tailor's own custom payloads (``{"type": "product_cards", ...}`` etc.)."""
    return isinstance(message, dict) and message.get("type") in TAILOR_PAYLOADS


def signature_matches(secret: str, body: bytes, header: str, algorithm: str) -> bool:
    """``header`` is ``<algorithm>=<hex HMAC of body>`` under ``secret`` (constant time)."""
    prefix = f"{algorithm}="
    if not secret or not header.startswith(prefix):
        return False
    digest = hmac.new(secret.encode("utf-8"), body, getattr(hashlib, algorithm)).hexdigest()
    return hmac.compare_digest(digest, header[len(prefix) :])


def forbidden(reason: str) -> HTTPResponse:
    """403 for a webhook call that is not from the platform."""
    logger.warning("Rejected a webhook call: %s", reason)
    return response.text(reason, status=HTTPStatus.FORBIDDEN)


# Telegram ------------------------------------------------------------------------------------


def telegram_secret(access_token: str) -> str:
    """The webhook secret derived from the bot token when none is configured (64 hex digits,
    within Telegram's 1-256 characters of ``A-Za-z0-9_-``)."""
    return hmac.new(access_token.encode(), b"tailor-telegram-webhook", hashlib.sha256).hexdigest()


class TailorTelegramOutput(TelegramOutput):
    """Rasa's Telegram output, on a configurable Bot API server, drawing product cards as a
    numbered list with an inline keyboard."""

    @classmethod
    def name(cls) -> str:
        """Same name as Rasa's Telegram output."""
        return "telegram"

    def __init__(self, access_token: str | None, api_url: str = TELEGRAM_API_URL) -> None:
        super().__init__(access_token)
        self.server = TelegramAPIServer.from_base(api_url)

    async def send_text_with_buttons(
        self,
        recipient_id: str,
        text: str,
        buttons: list[dict[str, Any]],
        button_type: str | None = "inline",
        **kwargs: Any,
    ) -> None:
        """Inline buttons two to a row (Rasa puts them all in one row, too narrow on a phone
        for four quick replies); Rasa's other button types as Rasa sends them."""
        if button_type != "inline":
            await super().send_text_with_buttons(
                recipient_id, text, buttons, button_type=button_type, **kwargs
            )
            return
        rows = [
            [{"text": b["title"], "callback_data": b["payload"]} for b in buttons[i : i + 2]]
            for i in range(0, len(buttons), 2)
        ]
        await self.send_message(recipient_id, text, reply_markup={"inline_keyboard": rows})

    async def send_custom_json(
        self, recipient_id: str, json_message: dict[str, Any], **kwargs: Any
    ) -> None:
        """Product cards as an inline keyboard; Tailor's other payloads are not resent."""
        message = rendering().telegram_message(json_message)
        if message is not None:
            await self.send_message(
                recipient_id, message["text"], reply_markup=message["reply_markup"]
            )
        elif not is_tailor_payload(json_message):
            await super().send_custom_json(recipient_id, json_message, **kwargs)


class TailorTelegramInput(TelegramInput):
    """Rasa's Telegram channel, accepting only updates that carry the webhook's secret token
    (registered with ``setWebhook`` at start), on a configurable Bot API server."""

    @classmethod
    def name(cls) -> str:
        """Same name as Rasa's Telegram channel."""
        return "telegram"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> InputChannel:
        """``access_token``, ``webhook_url``; optional ``secret_token``, ``verify``, ``api_url``."""
        if not credentials or not credentials.get("access_token"):
            cls.raise_missing_credentials_exception()
        channel = cls(
            credentials["access_token"],
            credentials.get("verify"),
            credentials.get("webhook_url"),
        )
        channel.api_url = str(credentials.get("api_url") or TELEGRAM_API_URL)
        channel.secret_token = str(
            credentials.get("secret_token") or telegram_secret(credentials["access_token"])
        )
        return channel

    api_url: str = TELEGRAM_API_URL
    secret_token: str = ""

    def get_output_channel(self) -> TailorTelegramOutput:
        """An output on the configured server (Rasa's also re-registers the webhook here)."""
        return TailorTelegramOutput(self.access_token, self.api_url)

    async def register_webhook(self) -> None:
        """``setWebhook`` with the URL and the secret token Telegram will send back."""
        bot = self.get_output_channel()
        try:
            await bot.request(
                "setWebhook", {"url": self.webhook_url, "secret_token": self.secret_token}
            )
        finally:
            await bot.close()

    def _register_at_start(self) -> None:
        if not self.webhook_url:
            logger.warning("Telegram: no webhook_url, so the webhook is not registered")
            return
        try:
            asyncio.get_running_loop()
        except RuntimeError:  # the usual case: Rasa builds blueprints before its loop runs
            try:
                asyncio.run(self.register_webhook())
                logger.info("Telegram webhook registered: %s", self.webhook_url)
            except Exception as error:  # any failure: log it and keep serving
                logger.error("Telegram setWebhook failed (%s); updates will not arrive", error)
        else:
            asyncio.get_running_loop().create_task(self.register_webhook())

    @staticmethod
    async def _answer(bot: TailorTelegramOutput, query_id: str) -> None:
        """Tell Telegram a button press arrived (its client shows a spinner until then)."""
        try:
            await bot.answer_callback_query(query_id)
        except Exception as error:  # the answer is cosmetic: log it, handle the message
            logger.warning("Telegram answerCallbackQuery failed: %s", error)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """``GET /`` (health) and ``POST /webhook`` (updates with the right secret token)."""
        on_new_message = guard_turns(on_new_message)
        self._register_at_start()
        telegram_webhook = Blueprint("telegram_webhook", __name__)
        out_channel: list[TailorTelegramOutput] = []  # made in the server's loop, then reused

        @telegram_webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @telegram_webhook.route("/webhook", methods=["POST"])
        async def message(request: Request) -> HTTPResponse:
            sent = request.headers.get(TELEGRAM_SECRET_HEADER, "")
            if not hmac.compare_digest(sent.encode(), self.secret_token.encode()):
                return forbidden(f"missing or wrong {TELEGRAM_SECRET_HEADER}")
            body = request.json
            if not isinstance(body, dict):
                return response.text("not an update", status=HTTPStatus.BAD_REQUEST)
            update = Update(**body)
            if update.callback_query is not None:
                msg, text = update.callback_query.message, update.callback_query.data
            elif update.edited_message is not None:
                msg, text = update.edited_message, update.edited_message.text
            elif update.message is not None and update.message.text is not None:
                msg, text = update.message, update.message.text.replace("/bot", "")
            else:
                return response.text("success")  # other update kinds are not for the bot
            if msg is None or text is None:
                return response.text("success")
            if not out_channel:
                out_channel.append(self.get_output_channel())
            if update.callback_query is not None:
                await self._answer(out_channel[0], update.callback_query.id)
            texts = [text]
            if text == INTENT_MESSAGE_PREFIX + USER_INTENT_RESTART:
                texts.append("/start")
            for each in texts:
                await on_new_message(
                    UserMessage(
                        each,
                        out_channel[0],
                        str(msg.chat.id),
                        input_channel=self.name(),
                        metadata=self.get_metadata(request),
                    )
                )
            return response.text("success")

        return telegram_webhook


# Slack ---------------------------------------------------------------------------------------


class TailorSlackBot(SlackBot):
    """Rasa's Slack output, on a configurable Web API URL, drawing product cards as blocks."""

    @classmethod
    def name(cls) -> str:
        """Same name as Rasa's Slack output."""
        return "slack"

    def __init__(
        self,
        token: str,
        slack_channel: str | None = None,
        thread_id: str | None = None,
        proxy: str | None = None,
        api_url: str = SLACK_API_URL,
    ) -> None:
        super().__init__(token, slack_channel, thread_id, proxy)
        self.client = AsyncWebClient(token, proxy=proxy, base_url=api_url)

    async def send_custom_json(
        self, recipient_id: str, json_message: dict[str, Any], **kwargs: Any
    ) -> None:
        """Product cards as Block Kit blocks; Tailor's other payloads are not resent."""
        message = rendering().slack_message(json_message)
        if message is not None:
            channel = self.slack_channel or recipient_id
            await self._post_message(channel=channel, as_user=True, **message)
        elif not is_tailor_payload(json_message):
            await super().send_custom_json(recipient_id, json_message, **kwargs)


class TailorSlackInput(SlackInput):
    """Rasa's Slack channel (signed requests only, as Rasa checks) with a configurable API URL."""

    api_url: str = SLACK_API_URL

    @classmethod
    def name(cls) -> str:
        """Same name as Rasa's Slack channel."""
        return "slack"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> InputChannel:
        """Rasa's Slack credentials plus ``api_url``."""
        channel = super().from_credentials(credentials)
        if credentials and credentials.get("api_url"):
            channel.api_url = str(credentials["api_url"])  # type: ignore[attr-defined]
        return channel

    def get_output_channel(
        self, channel: str | None = None, thread_id: str | None = None
    ) -> OutputChannel:
        """The output for a channel (and thread) on the configured API URL."""
        return TailorSlackBot(
            self.slack_token, channel or self.slack_channel, thread_id, self.proxy, self.api_url
        )

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """Rasa's Slack webhook, answering politely when the bot could not
        (:func:`guard_turns`)."""
        return super().blueprint(guard_turns(on_new_message))


# Facebook Messenger --------------------------------------------------------------------------


class TailorMessengerBot(MessengerBot):
    """Rasa's Messenger output drawing product cards as a generic template, and more than
    three buttons as quick replies (Rasa drops them)."""

    @classmethod
    def name(cls) -> str:
        """Same name as Rasa's Messenger output."""
        return "facebook"

    async def send_custom_json(self, recipient_id: str, json_message: Any, **kwargs: Any) -> None:
        """Product cards as a generic template; Tailor's other payloads are not resent."""
        message = rendering().messenger_message(json_message)
        if message is not None:
            self.messenger_client.send(message, recipient_id, "RESPONSE")
        elif not is_tailor_payload(json_message):
            await super().send_custom_json(recipient_id, json_message, **kwargs)

    async def send_text_with_buttons(
        self, recipient_id: str, text: str, buttons: list[dict[str, Any]], **kwargs: Any
    ) -> None:
        """Up to 3 buttons as a button template (as Rasa), more as quick replies (at most
        13); titles cut to Messenger's 20 characters."""
        short = [{**b, "title": str(b["title"])[:20]} for b in buttons]
        if len(short) <= 3:
            await super().send_text_with_buttons(recipient_id, text, short, **kwargs)
            return
        replies = [{"title": b["title"], "payload": b["payload"]} for b in short[:13]]
        await self.send_quick_replies(recipient_id, text, replies)


class TailorMessenger(Messenger):
    """Rasa's Messenger webhook handler, answering through :class:`TailorMessengerBot`."""

    def __init__(
        self,
        page_access_token: str,
        on_new_message: Callable[[UserMessage], Awaitable[Any]],
        api_url: str = FACEBOOK_API_URL,
    ) -> None:
        super().__init__(page_access_token, on_new_message)
        self.client.graph_url = f"{api_url.rstrip('/')}/v{self.client.api_version}"

    async def _handle_user_message(
        self, text: str, sender_id: str, metadata: dict[str, Any] | None
    ) -> None:
        out_channel = TailorMessengerBot(self.client)
        await out_channel.send_action(sender_id, sender_action="mark_seen")
        user_msg = UserMessage(
            text, out_channel, sender_id, input_channel=self.name(), metadata=metadata
        )
        await out_channel.send_action(sender_id, sender_action="typing_on")
        try:
            await self.on_new_message(user_msg)
        except Exception:  # as Rasa's handler: log, and still switch typing off
            logger.exception("Exception when trying to handle webhook for facebook message.")
        finally:
            await out_channel.send_action(sender_id, sender_action="typing_off")


class TailorFacebookInput(FacebookInput):
    """Rasa's Messenger channel, accepting only POSTs signed with ``X-Hub-Signature-256``
    (the SHA-1 ``X-Hub-Signature`` only when that is absent), on a configurable Graph URL."""

    api_url: str = FACEBOOK_API_URL

    @classmethod
    def name(cls) -> str:
        """Same name as Rasa's Messenger channel."""
        return "facebook"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> InputChannel:
        """Rasa's Messenger credentials (``verify``, ``secret``, ``page-access-token``) plus
        ``api_url``."""
        channel = super().from_credentials(credentials)
        if credentials and credentials.get("api_url"):
            channel.api_url = str(credentials["api_url"])  # type: ignore[attr-defined]
        return channel

    def is_signed(self, request: Request) -> bool:
        """The body carries the app secret's HMAC (SHA-256, else SHA-1 if that is all)."""
        sha256 = request.headers.get("X-Hub-Signature-256")
        if sha256 is not None:
            return signature_matches(self.fb_secret, request.body, sha256, "sha256")
        sha1 = request.headers.get("X-Hub-Signature", "")
        return signature_matches(self.fb_secret, request.body, sha1, "sha1")

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """Rasa's routes: health, the verify-token handshake, and signed message POSTs."""
        on_new_message = guard_turns(on_new_message)
        fb_webhook = Blueprint("fb_webhook", __name__)

        @fb_webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @fb_webhook.route("/webhook", methods=["GET"])
        async def token_verification(request: Request) -> HTTPResponse:
            sent = request.args.get("hub.verify_token") or ""
            if self.fb_verify and hmac.compare_digest(sent.encode(), self.fb_verify.encode()):
                return response.text(request.args.get("hub.challenge") or "")
            return forbidden("wrong hub.verify_token")

        @fb_webhook.route("/webhook", methods=["POST"])
        async def webhook(request: Request) -> HTTPResponse:
            if not self.is_signed(request):
                return forbidden("missing or wrong X-Hub-Signature-256")
            body = request.json
            if not isinstance(body, dict) or not isinstance(body.get("entry"), list):
                return response.text("not a Messenger event", status=HTTPStatus.BAD_REQUEST)
            messenger = TailorMessenger(self.fb_access_token, on_new_message, self.api_url)
            await messenger.handle(body, self.get_metadata(request))
            return response.text("success")

        return fb_webhook

    def get_output_channel(self) -> OutputChannel:
        """An output on the configured Graph URL."""
        return TailorMessengerBot(
            TailorMessenger(self.fb_access_token, _ignore, self.api_url).client
        )


async def _ignore(_: UserMessage) -> None:
    """A message handler for outputs that never receive messages."""


# Twilio (SMS and WhatsApp) -------------------------------------------------------------------


class RecentLists:
    """How many products were last listed to each recipient (bounded, in memory), so that a
    bare "2" can be read as "tell me more about number 2"."""

    def __init__(self, limit: int = 10_000) -> None:
        self.limit = limit
        self._counts: OrderedDict[str, int] = OrderedDict()

    def remember(self, recipient: str, count: int) -> None:
        """Note that ``count`` products were just listed to ``recipient``."""
        self._counts[recipient] = count
        self._counts.move_to_end(recipient)
        while len(self._counts) > self.limit:
            self._counts.popitem(last=False)

    def shown(self, recipient: str) -> int:
        """How many products the last list to ``recipient`` had (0 if none)."""
        return self._counts.get(recipient, 0)


class TailorTwilioOutput(TwilioOutput):
    """Rasa's Twilio output on a configurable API URL: replies to WhatsApp senders come from
    the WhatsApp number; product cards are numbered text; buttons become one "Or say: …" line."""

    @classmethod
    def name(cls) -> str:
        """Same name as Rasa's Twilio output."""
        return "twilio"

    def __init__(
        self,
        account_sid: str | None,
        auth_token: str | None,
        twilio_number: str | None,
        whatsapp_number: str | None = None,
        api_url: str = TWILIO_API_URL,
        lists: RecentLists | None = None,
    ) -> None:
        super().__init__(account_sid, auth_token, twilio_number)
        self.whatsapp_number = whatsapp_number
        self.api.base_url = api_url.rstrip("/")
        self.lists = lists if lists is not None else RecentLists()

    def sender_for(self, recipient_id: str) -> str | None:
        """The number to send from: the WhatsApp one for ``whatsapp:`` recipients."""
        if recipient_id.startswith("whatsapp:"):
            if self.whatsapp_number:
                return self.whatsapp_number
            return f"whatsapp:{self.twilio_number}" if self.twilio_number else None
        return self.twilio_number

    async def send_text_message(self, recipient_id: str, text: str, **kwargs: Any) -> None:
        """Each paragraph as a message, from the number that suits the recipient."""
        for part in text.strip().split("\n\n"):
            await self._send_message(
                {"to": recipient_id, "from_": self.sender_for(recipient_id), "body": part}
            )

    async def send_text_with_buttons(
        self, recipient_id: str, text: str, buttons: list[dict[str, Any]], **kwargs: Any
    ) -> None:
        """The text and, on its last line, what the buttons would have said (not numbered:
        numbers pick products)."""
        said = [str(b.get("payload") or b.get("title") or "") for b in buttons]
        options = [f"“{s}”" for s in said if s and not s.startswith("/")]
        if options:
            text = f"{text.rstrip()}\nOr say: {', '.join(options)}."
        await self.send_text_message(recipient_id, text)

    async def send_custom_json(
        self, recipient_id: str, json_message: dict[str, Any], **kwargs: Any
    ) -> None:
        """Product cards as numbered text; Tailor's other payloads are not resent."""
        render = rendering()
        text = render.sms_text(json_message)
        if text is not None:
            await self._send_message(
                {"to": recipient_id, "from_": self.sender_for(recipient_id), "body": text}
            )
            self.lists.remember(recipient_id, len(render.product_cards(json_message) or []))
        elif not is_tailor_payload(json_message):
            if not json_message.get("messaging_service_sid"):
                json_message.setdefault("from_", self.sender_for(recipient_id))
            await super().send_custom_json(recipient_id, json_message, **kwargs)


class TailorTwilioInput(TwilioInput):
    """Rasa's Twilio channel (SMS and WhatsApp), accepting only requests with a valid
    ``X-Twilio-Signature`` (computed over ``webhook_url``, the URL set in Twilio's console,
    else the URL the request arrived at); a bare number picks from the last product list."""

    @classmethod
    def name(cls) -> str:
        """Same name as Rasa's Twilio channel."""
        return "twilio"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any] | None) -> InputChannel:
        """Rasa's Twilio credentials plus ``whatsapp_number``, ``webhook_url``, ``api_url``."""
        if not credentials:
            cls.raise_missing_credentials_exception()
        channel = cls(
            credentials.get("account_sid"),
            credentials.get("auth_token"),
            credentials.get("twilio_number"),
        )
        channel.whatsapp_number = credentials.get("whatsapp_number")
        channel.webhook_url = credentials.get("webhook_url")
        channel.api_url = str(credentials.get("api_url") or TWILIO_API_URL)
        return channel

    whatsapp_number: str | None = None
    webhook_url: str | None = None
    api_url: str = TWILIO_API_URL

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lists = RecentLists()

    def is_signed(self, request: Request) -> bool:
        """``X-Twilio-Signature`` matches the URL and the form fields under the auth token."""
        signature = request.headers.get("X-Twilio-Signature")
        if not signature or not self.auth_token:
            return False
        url = self.webhook_url or request.url
        return bool(RequestValidator(self.auth_token).validate(url, request.form, signature))

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """``GET /`` (health) and ``POST /webhook`` (signed messages)."""
        on_new_message = guard_turns(on_new_message)
        twilio_webhook = Blueprint("twilio_webhook", __name__)

        @twilio_webhook.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @twilio_webhook.route("/webhook", methods=["POST"])
        async def message(request: Request) -> HTTPResponse:
            if not self.is_signed(request):
                return forbidden("missing or wrong X-Twilio-Signature")
            sender = request.form.get("From")
            text = request.form.get("Body")
            if self._is_location_message(request):
                text = "/locationData{{'Latitude': {},'Longitude': {}}}".format(
                    request.form.get("Latitude"), request.form.get("Longitude")
                )
            if not sender or text is None:
                return response.text("", status=HTTPStatus.NO_CONTENT)
            text = text.replace("¡", "@")  # as Rasa: "@" gets corrupted by some carriers
            choice = rendering().number_choice(text, self.lists.shown(sender))
            await on_new_message(
                UserMessage(
                    choice or text,
                    self.get_output_channel(),
                    sender,
                    input_channel=self.name(),
                    metadata=self.get_metadata(request),
                )
            )
            return response.text("", status=HTTPStatus.NO_CONTENT)

        return twilio_webhook

    def get_output_channel(self) -> OutputChannel:
        """An output on the configured API URL that shares this channel's product lists."""
        return TailorTwilioOutput(
            self.account_sid,
            self.auth_token,
            self.twilio_number,
            self.whatsapp_number,
            self.api_url,
            self.lists,
        )
