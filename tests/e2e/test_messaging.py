"""Telegram, Slack, Facebook Messenger and Twilio (SMS, WhatsApp) through the real Rasa server.

One Rasa server and one action server (the e2e deployment's catalog, index and trained model)
are started with every platform enabled by ``TAILOR_*`` variables, as ``tailor run`` would
enable them, and with each platform's API URL pointing at :class:`PlatformAPI`, a local HTTP
server that stands in for the four platform APIs and records every call. The tests post each
platform's own webhook payloads (signed as the platform signs them) to Rasa's webhooks and
check the API calls the bot makes in answer: product cards in the platform's own format,
picking a product by number, a linked platform user greeted by name, and unsigned or wrongly
signed webhooks rejected.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest
from sqlalchemy import select

from tailor.config import Settings
from tailor.runtime import processes as P
from tailor.runtime.rasa import model_path
from tailor.store import make_session_factory
from tailor.store.models import Customer
from tailor.store.profiles import link_channel_user
from tests.e2e.conftest import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.rasa, pytest.mark.slow]

TELEGRAM_TOKEN = "123456:tailor-test-token"
TELEGRAM_SECRET = "telegram-secret-token_0123456789"
SLACK_TOKEN = "xoxb-tailor-test"
SLACK_SIGNING_SECRET = "slack-signing-secret-0123456789"
FB_APP_SECRET = "facebook-app-secret-0123456789"
FB_VERIFY = "facebook-verify-token"
FB_PAGE_TOKEN = "facebook-page-token"
TWILIO_SID = "AC" + "0" * 32
TWILIO_TOKEN = "twilio-auth-token-0123456789"
TWILIO_NUMBER = "+15005550006"
TWILIO_WHATSAPP = "whatsapp:+14155238886"
SHOES = "I need running shoes under $80"


# The stand-in for the platforms' APIs ---------------------------------------------------------


@dataclass
class Call:
    """One request the bot made to a platform API."""

    platform: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    @property
    def fields(self) -> dict[str, Any]:
        """The body as a dict: JSON, or form fields (JSON-decoded where they hold JSON)."""
        if self.headers.get("content-type", "").startswith("application/json"):
            return dict(json.loads(self.body or b"{}"))
        out: dict[str, Any] = {}
        for key, value in parse_qsl(self.body.decode(), keep_blank_values=True):
            try:
                out[key] = json.loads(value) if value[:1] in "{[" else value
            except ValueError:
                out[key] = value
        return out


@dataclass
class PlatformAPI:
    """A local HTTP server answering as the Telegram, Slack, Graph and Twilio APIs do (under
    ``/telegram``, ``/slack/api``, ``/facebook``, ``/twilio``) and recording every call."""

    server: ThreadingHTTPServer
    calls: list[Call] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def record(self, call: Call) -> None:
        with self.changed:
            self.calls.append(call)
            self.changed.notify_all()

    def wait_for(
        self, match: Callable[[Call], bool], count: int = 1, timeout: float = 90
    ) -> list[Call]:
        """The first ``count`` recorded calls that ``match``, waiting up to ``timeout`` s."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                found = [c for c in self.calls if match(c)]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [(c.platform, c.path, c.fields) for c in self.calls[-10:]]
                    raise AssertionError(f"no {count} matching API call(s); last calls: {seen}")
                self.changed.wait(left)

    def matching(self, match: Callable[[Call], bool]) -> list[Call]:
        with self.changed:
            return [c for c in self.calls if match(c)]


def _reply(path: str, fields: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """What the real API answers (as much of it as the clients read)."""
    if path.startswith("/telegram/"):
        method = path.rsplit("/", 1)[-1]
        if method == "sendMessage":
            chat = {"id": int(fields.get("chat_id", 0)), "type": "private"}
            message = {"message_id": 1, "date": 1700000000, "chat": chat, "text": "ok"}
            return 200, {"ok": True, "result": message}
        if method == "getMe":
            user = {"id": 123456, "is_bot": True, "first_name": "Tailor", "username": "tailor_bot"}
            return 200, {"ok": True, "result": user}
        return 200, {"ok": True, "result": True}
    if path.startswith("/slack/api/"):
        return 200, {"ok": True, "channel": fields.get("channel"), "ts": "1700000000.000100"}
    if path.startswith("/facebook/"):
        return 200, {"recipient_id": "x", "message_id": f"mid.{uuid.uuid4().hex}"}
    if path.startswith("/twilio/"):
        sid = "SM" + uuid.uuid4().hex
        date = "Tue, 24 Nov 2026 20:00:00 +0000"
        message = {
            "sid": sid,
            "account_sid": TWILIO_SID,
            "to": fields.get("To"),
            "from": fields.get("From"),
            "body": fields.get("Body"),
            "status": "queued",
            "num_segments": "1",
            "date_created": date,
            "date_updated": date,
            "uri": f"/2010-04-01/Accounts/{TWILIO_SID}/Messages/{sid}.json",
        }
        return 201, message
    return 404, {"error": f"no such API: {path}"}


def start_platform_api() -> PlatformAPI:
    """Serve :class:`PlatformAPI` on a free local port in a daemon thread."""
    api: PlatformAPI

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            url = urlsplit(self.path)
            path = url.path
            call = Call(
                platform=path.strip("/").split("/", 1)[0],
                path=path,
                query=dict(parse_qsl(url.query)),
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
            )
            status, answer = _reply(path, call.fields)
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            api.record(call)

        do_GET = do_POST
        do_DELETE = do_POST

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    api = PlatformAPI(server)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return api


# The deployment -------------------------------------------------------------------------------


@dataclass
class Messaging:
    """The running Rasa server (all platforms on) and the API stand-in."""

    settings: Settings
    api: PlatformAPI
    customer_name: str
    customer_id: int

    def webhook(self, platform: str) -> str:
        return f"{self.settings.rasa_url}/webhooks/{platform}/webhook"


def platform_env(api_url: str, rasa_url: str) -> dict[str, str]:
    """Every platform enabled, each API pointing at the stand-in."""
    return {
        "TAILOR_TELEGRAM_TOKEN": TELEGRAM_TOKEN,
        "TAILOR_TELEGRAM_WEBHOOK_URL": "https://bot.example/webhooks/telegram/webhook",
        "TAILOR_TELEGRAM_SECRET_TOKEN": TELEGRAM_SECRET,
        "TAILOR_TELEGRAM_API_URL": f"{api_url}/telegram",
        "TAILOR_SLACK_TOKEN": SLACK_TOKEN,
        "TAILOR_SLACK_SIGNING_SECRET": SLACK_SIGNING_SECRET,
        "TAILOR_SLACK_API_URL": f"{api_url}/slack/api/",
        "TAILOR_FACEBOOK_VERIFY_TOKEN": FB_VERIFY,
        "TAILOR_FACEBOOK_APP_SECRET": FB_APP_SECRET,
        "TAILOR_FACEBOOK_PAGE_ACCESS_TOKEN": FB_PAGE_TOKEN,
        "TAILOR_FACEBOOK_API_URL": f"{api_url}/facebook",
        "TAILOR_TWILIO_ACCOUNT_SID": TWILIO_SID,
        "TAILOR_TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
        "TAILOR_TWILIO_NUMBER": TWILIO_NUMBER,
        "TAILOR_TWILIO_WHATSAPP_NUMBER": TWILIO_WHATSAPP,
        "TAILOR_TWILIO_WEBHOOK_URL": f"{rasa_url}/webhooks/twilio/webhook",
        "TAILOR_TWILIO_API_URL": f"{api_url}/twilio",
    }


@pytest.fixture(scope="module")
def messaging(
    built_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Messaging]:
    """Action server + Rasa server on their own ports and home, sharing the e2e catalog."""
    built = built_settings
    settings = built.replace(
        home=tmp_path_factory.mktemp("messaging"),
        database_url=built.database_url,
        index_dir=built.index_dir,
        rasa_port=free_port(),
        action_port=free_port(),
        web_port=free_port(),
        rasa_url="",
        action_url="",
    )
    api = start_platform_api()
    factory = make_session_factory(settings.database_url)
    with factory() as session:
        customer = session.scalars(select(Customer).order_by(Customer.id)).first()
        assert customer is not None, "the e2e catalog has demo customers"
        name, customer_id = customer.name, customer.id
    with pytest.MonkeyPatch.context() as mp:
        for key, value in platform_env(api.url, settings.rasa_url).items():
            mp.setenv(key, value)
        actions = P.action_server(settings)
        rasa = P.rasa_server(settings, model_path(built))
    services = [actions, rasa]
    try:
        for svc in services:
            svc.start()
        actions.wait_ready(180)
        rasa.wait_ready(600)
        P.warm_up_actions(settings)
        yield Messaging(settings, api, name, customer_id)
    finally:
        for svc in reversed(services):
            svc.stop()
        api.server.shutdown()


def link(messaging: Messaging, channel: str, user_id: str) -> None:
    """What ``tailor profile link CUSTOMER --channel CHANNEL --user-id ID`` stores."""
    factory = make_session_factory(messaging.settings.database_url)
    with factory.begin() as session:
        link_channel_user(session, channel, user_id, messaging.customer_id)


_ids = itertools.count(1)


# Webhook payloads, as each platform sends them ------------------------------------------------


def telegram_update(chat_id: int, text: str | None = None, button: str | None = None) -> dict:
    """A Telegram ``Update``: a text message, or the press of an inline button."""
    user = {"id": chat_id, "is_bot": False, "first_name": "Ada", "language_code": "en"}
    message = {
        "message_id": next(_ids),
        "date": int(time.time()),
        "chat": {"id": chat_id, "type": "private", "first_name": "Ada"},
        "from": user,
        "text": text or "Here are 4 picks",
    }
    if button is None:
        return {"update_id": next(_ids), "message": message}
    query = {
        "id": str(next(_ids)),
        "from": user,
        "chat_instance": "42",
        "message": message,
        "data": button,
    }
    return {"update_id": next(_ids), "callback_query": query}


def post_telegram(m: Messaging, update: dict, secret: str | None = TELEGRAM_SECRET) -> int:
    headers = {} if secret is None else {"X-Telegram-Bot-Api-Secret-Token": secret}
    resp = httpx.post(m.webhook("telegram"), json=update, headers=headers, timeout=120)
    return resp.status_code


def slack_signed(body: bytes, secret: str = SLACK_SIGNING_SECRET) -> dict[str, str]:
    """Slack's request signing: ``v0=`` HMAC-SHA256 of ``v0:<timestamp>:<body>``."""
    stamp = str(int(time.time()))
    digest = hmac.new(secret.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256)
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": f"v0={digest.hexdigest()}"}


def post_slack_event(m: Messaging, user: str, text: str, secret: str = SLACK_SIGNING_SECRET) -> int:
    """An Events API ``message.im`` event callback."""
    ts = f"{time.time():.6f}"
    event = {
        "token": "verification-token",
        "team_id": "T0TAILOR",
        "api_app_id": "A0TAILOR",
        "event": {
            "type": "message",
            "channel": f"D{user}",
            "channel_type": "im",
            "user": user,
            "text": text,
            "ts": ts,
            "event_ts": ts,
        },
        "type": "event_callback",
        "event_id": f"Ev{next(_ids)}",
        "event_time": int(time.time()),
        "authorizations": [{"user_id": "U0TAILORBOT", "is_bot": True}],
    }
    body = json.dumps(event).encode()
    headers = {"Content-Type": "application/json", **slack_signed(body, secret)}
    return httpx.post(m.webhook("slack"), content=body, headers=headers, timeout=60).status_code


def post_slack_click(m: Messaging, user: str, value: str) -> int:
    """A ``block_actions`` interaction: a click on a Block Kit button."""
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": "ada"},
        "channel": {"id": f"D{user}", "name": "directmessage"},
        "message": {"ts": f"{time.time():.6f}", "type": "message"},
        "actions": [
            {
                "type": "button",
                "action_id": "tailor_details_2",
                "block_id": "b1",
                "value": value,
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    body = urlencode({"payload": json.dumps(payload)}).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded", **slack_signed(body)}
    return httpx.post(m.webhook("slack"), content=body, headers=headers, timeout=60).status_code


def messenger_event(psid: str, text: str | None = None, postback: str | None = None) -> dict:
    """A Messenger webhook event: a text message or a postback (button press)."""
    event: dict[str, Any] = {
        "sender": {"id": psid},
        "recipient": {"id": "PAGE0TAILOR"},
        "timestamp": int(time.time() * 1000),
    }
    if postback is not None:
        event["postback"] = {"title": "Tell me more", "payload": postback, "mid": "m_pb"}
    else:
        event["message"] = {"mid": f"m_{next(_ids)}", "text": text}
    entry = {"id": "PAGE0TAILOR", "time": int(time.time() * 1000), "messaging": [event]}
    return {"object": "page", "entry": [entry]}


def post_messenger(m: Messaging, event: dict, secret: str | None = FB_APP_SECRET) -> int:
    """Signed as Meta signs: ``X-Hub-Signature-256: sha256=<HMAC of the body>``."""
    body = json.dumps(event).encode()
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        headers["X-Hub-Signature-256"] = f"sha256={digest}"
    return httpx.post(m.webhook("facebook"), content=body, headers=headers, timeout=120).status_code


def twilio_signature(token: str, url: str, form: dict[str, str]) -> str:
    """Twilio's request signing: base64 HMAC-SHA1 of the URL followed by each POST field's
    name and value, sorted by name."""
    data = url + "".join(f"{key}{form[key]}" for key in sorted(form))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def post_twilio(m: Messaging, sender: str, text: str, token: str | None = TWILIO_TOKEN) -> int:
    """An incoming-message webhook, signed as Twilio signs (``X-Twilio-Signature``)."""
    to = TWILIO_WHATSAPP if sender.startswith("whatsapp:") else TWILIO_NUMBER
    form = {
        "MessageSid": f"SM{uuid.uuid4().hex}",
        "SmsMessageSid": f"SM{uuid.uuid4().hex}",
        "AccountSid": TWILIO_SID,
        "From": sender,
        "To": to,
        "Body": text,
        "NumMedia": "0",
        "NumSegments": "1",
        "ApiVersion": "2010-04-01",
    }
    headers = {}
    if token is not None:
        headers["X-Twilio-Signature"] = twilio_signature(token, m.webhook("twilio"), form)
    return httpx.post(m.webhook("twilio"), data=form, headers=headers, timeout=120).status_code


# Call filters ----------------------------------------------------------------------------------


def telegram_send(chat_id: int) -> Callable[[Call], bool]:
    return lambda c: c.path.endswith("/sendMessage") and c.fields.get("chat_id") == str(chat_id)


def slack_post(user: str) -> Callable[[Call], bool]:
    return lambda c: c.path.endswith("/chat.postMessage") and c.fields.get("channel") == f"D{user}"


def messenger_send(psid: str) -> Callable[[Call], bool]:
    return lambda c: (
        c.path.endswith("/me/messages")
        and c.fields.get("recipient") == {"id": psid}
        and "message" in c.fields
    )


def twilio_send(to: str) -> Callable[[Call], bool]:
    return lambda c: c.path.endswith("/Messages.json") and c.fields.get("To") == to


def messenger_text(call: Call) -> str:
    """The text of a Send API message: plain, or of a button template."""
    message = call.fields["message"]
    template = message.get("attachment", {}).get("payload", {})
    return str(message.get("text") or template.get("text") or "")


def texts(calls: list[Call], key: str) -> str:
    return "\n".join(str(c.fields.get(key, "")) for c in calls)


# Tests ---------------------------------------------------------------------------------------


def test_telegram_webhook_registered_with_its_secret(messaging: Messaging) -> None:
    (call,) = messaging.api.wait_for(lambda c: c.path.endswith("/setWebhook"))
    assert call.path == f"/telegram/bot{TELEGRAM_TOKEN}/setWebhook"
    assert call.fields["url"] == "https://bot.example/webhooks/telegram/webhook"
    assert call.fields["secret_token"] == TELEGRAM_SECRET


def test_unsigned_or_wrongly_signed_webhooks_are_rejected(messaging: Messaging) -> None:
    m = messaging
    chat = random.randrange(10**9, 2 * 10**9)
    assert post_telegram(m, telegram_update(chat, "hello"), secret=None) == 403
    assert post_telegram(m, telegram_update(chat, "hello"), secret="guess") == 403
    user = f"U{uuid.uuid4().hex[:10].upper()}"
    assert post_slack_event(m, user, "hello", secret="not-the-secret") == 400
    psid = str(random.randrange(10**15, 10**16))
    assert post_messenger(m, messenger_event(psid, "hello"), secret=None) == 403
    assert post_messenger(m, messenger_event(psid, "hello"), secret="not-the-secret") == 403
    phone = f"+1555{random.randrange(10**6, 10**7)}"
    assert post_twilio(m, phone, "hello", token=None) == 403
    assert post_twilio(m, phone, "hello", token="not-the-token") == 403
    # Meta's webhook handshake needs the verify token too.
    url = m.webhook("facebook")
    ok = {"hub.mode": "subscribe", "hub.verify_token": FB_VERIFY, "hub.challenge": "c42"}
    assert httpx.get(url, params=ok).text == "c42"
    assert httpx.get(url, params={**ok, "hub.verify_token": "x"}).status_code == 403
    time.sleep(3)  # Slack's handler answers before the bot does: give a reply time to show
    for match in (telegram_send(chat), slack_post(user), messenger_send(psid), twilio_send(phone)):
        assert m.api.matching(match) == []


def test_telegram_cards_as_inline_keyboard_and_pick_by_button(messaging: Messaging) -> None:
    m, chat = messaging, random.randrange(10**9, 2 * 10**9)
    assert post_telegram(m, telegram_update(chat, SHOES)) == 200
    sent = m.api.wait_for(telegram_send(chat), count=2)
    cards = [c for c in sent if "inline_keyboard" in json.dumps(c.fields.get("reply_markup"))]
    keyboards = [c.fields["reply_markup"]["inline_keyboard"] for c in cards]
    picks = [k for k in keyboards if k[0][0].get("callback_data") == "tell me more about number 1"]
    assert picks, keyboards
    # The quick replies of the lead message: inline buttons, two to a row.
    quick = [
        k for k in keyboards if any(b["callback_data"] == "show me cheaper ones" for b in k[0])
    ]
    assert quick and all(1 <= len(row) <= 2 for row in quick[0]), keyboards
    rows = picks[0]
    assert 1 <= len(rows) <= 10
    listed = next(c for c in cards if c.fields["reply_markup"]["inline_keyboard"] == rows)
    second = listed.fields["text"].splitlines()[1]
    assert second.startswith("2. ")
    title = rows[1][0]["text"].split(". ", 1)[1].rsplit(" — ", 1)[0].rstrip("…")
    before = len(m.api.matching(telegram_send(chat)))
    update = telegram_update(chat, button=rows[1][0]["callback_data"])
    assert post_telegram(m, update) == 200
    answered = m.api.wait_for(lambda c: c.path.endswith("/answerCallbackQuery"))
    assert any(
        c.fields.get("callback_query_id") == update["callback_query"]["id"] for c in answered
    )
    details = m.api.wait_for(telegram_send(chat), count=before + 1)[before:]
    assert title in texts(details, "text")


def test_slack_cards_as_blocks_and_pick_by_button(messaging: Messaging) -> None:
    m, user = messaging, f"U{uuid.uuid4().hex[:10].upper()}"
    assert post_slack_event(m, user, SHOES) == 200
    with_cards = m.api.wait_for(
        lambda c: slack_post(user)(c) and "tell me more about number 1" in json.dumps(c.fields)
    )
    blocks = with_cards[0].fields["blocks"]
    assert with_cards[0].headers["authorization"] == f"Bearer {SLACK_TOKEN}"
    sections = [b for b in blocks if b["type"] == "section"]
    assert sections[0]["text"]["type"] == "mrkdwn"
    assert sections[1]["text"]["text"].startswith("*2. ")
    title = sections[1]["text"]["text"].split("\n")[0][4:-1].split(" by ")[0]
    before = len(m.api.matching(slack_post(user)))
    assert post_slack_click(m, user, "tell me more about number 2") == 200
    details = m.api.wait_for(slack_post(user), count=before + 1)[before:]
    assert title.replace("&amp;", "&") in texts(details, "text")


def test_messenger_cards_as_generic_template_and_pick_by_postback(messaging: Messaging) -> None:
    m, psid = messaging, str(random.randrange(10**15, 10**16))
    assert post_messenger(m, messenger_event(psid, SHOES)) == 200
    sent = m.api.wait_for(messenger_send(psid), count=2)
    templates = [
        c.fields["message"]["attachment"]["payload"]
        for c in sent
        if c.fields["message"].get("attachment", {}).get("payload", {}).get("template_type")
        == "generic"
    ]
    assert templates, [c.fields for c in sent]
    elements = templates[0]["elements"]
    assert 1 <= len(elements) <= 10
    assert all(1 <= len(e["buttons"]) <= 3 for e in elements)
    assert elements[1]["buttons"][0]["payload"] == "tell me more about number 2"
    call = next(c for c in sent if "attachment" in c.fields["message"])
    assert call.query["access_token"] == FB_PAGE_TOKEN
    # More than 3 quick replies (Rasa would drop them) go as Messenger quick replies.
    quick = [r for c in sent for r in c.fields["message"].get("quick_replies", [])]
    assert {"content_type": "text", "title": "Cheaper", "payload": "show me cheaper ones"} in quick
    assert all(len(r["title"]) <= 20 for r in quick)
    title = elements[1]["title"].split(". ", 1)[1].rstrip("…")
    before = len(m.api.matching(messenger_send(psid)))
    assert post_messenger(m, messenger_event(psid, postback="tell me more about number 2")) == 200
    details = m.api.wait_for(messenger_send(psid), count=before + 1)[before:]
    assert title in "\n".join(messenger_text(c) for c in details)


@pytest.mark.parametrize("kind", ["sms", "whatsapp"])
def test_twilio_cards_as_numbered_text_and_pick_by_number(messaging: Messaging, kind: str) -> None:
    m = messaging
    phone = f"+1555{random.randrange(10**6, 10**7)}"
    sender = phone if kind == "sms" else f"whatsapp:{phone}"
    assert post_twilio(m, sender, SHOES) == 204
    sent = m.api.wait_for(twilio_send(sender))
    assert all(
        c.fields["From"] == (TWILIO_NUMBER if kind == "sms" else TWILIO_WHATSAPP) for c in sent
    )
    assert all(c.path == f"/twilio/2010-04-01/Accounts/{TWILIO_SID}/Messages.json" for c in sent)
    assert any("\nOr say: “show me cheaper ones”, " in c.fields["Body"] for c in sent)
    listing = [c.fields["Body"] for c in sent if "for details." in c.fields["Body"]]
    assert listing, [c.fields["Body"] for c in sent]
    lines = listing[0].splitlines()
    assert lines[0].startswith("1. ") and lines[1].startswith("2. ")
    assert lines[-1].startswith("Reply 1-") and lines[-1].endswith(" for details.")
    title = lines[1][3:].split(" — ")[0].split(" by ")[0]
    before = len(m.api.matching(twilio_send(sender)))
    assert post_twilio(m, sender, "2") == 204
    details = m.api.wait_for(twilio_send(sender), count=before + 1)[before:]
    assert title in texts(details, "Body")


def test_linked_platform_users_are_greeted_by_name(messaging: Messaging) -> None:
    """Each connector's ``input_channel`` and sender id match what ``tailor profile link``
    stores, so a linked account is recognised as the customer."""
    m = messaging
    first = m.customer_name.split()[0]
    chat = random.randrange(10**9, 2 * 10**9)
    user = f"U{uuid.uuid4().hex[:10].upper()}"
    psid = str(random.randrange(10**15, 10**16))
    phone = f"+1555{random.randrange(10**6, 10**7)}"
    whatsapp = f"whatsapp:+1555{random.randrange(10**6, 10**7)}"
    link(m, "telegram", str(chat))
    link(m, "slack", user)
    link(m, "facebook", psid)
    link(m, "twilio", phone)
    link(m, "twilio", whatsapp)
    assert post_telegram(m, telegram_update(chat, "hello")) == 200
    assert post_slack_event(m, user, "hello") == 200
    assert post_messenger(m, messenger_event(psid, "hello")) == 200
    assert post_twilio(m, phone, "hello") == 204
    assert post_twilio(m, whatsapp, "hello") == 204
    welcome = f"Welcome back, {first}!"
    has = lambda key: lambda c: welcome in json.dumps(c.fields.get(key, ""), ensure_ascii=False)  # noqa: E731
    m.api.wait_for(lambda c: telegram_send(chat)(c) and has("text")(c))
    m.api.wait_for(lambda c: slack_post(user)(c) and has("text")(c))
    m.api.wait_for(lambda c: messenger_send(psid)(c) and has("message")(c))
    m.api.wait_for(lambda c: twilio_send(phone)(c) and has("Body")(c))
    m.api.wait_for(lambda c: twilio_send(whatsapp)(c) and has("Body")(c))
    # An unlinked account on the same platform stays anonymous.
    other = chat + 1
    assert post_telegram(m, telegram_update(other, "hello")) == 200
    greeting = texts(m.api.wait_for(telegram_send(other)), "text")
    assert welcome not in greeting
