"""Outbound messages on messaging platforms: a trigger's text and product cards sent to a
customer who opted in on that channel, through the platform's own API.

The cards are drawn by the same functions the bot's output channels use
(:mod:`tailor.recommend.channels`), and the credentials are the ``TAILOR_*`` variables that
enable the platform for the bot (``tailor.runtime.rasa.PLATFORMS``), API base URLs included,
so a store configures a platform once. Supported: Telegram, Slack and Twilio (SMS and
WhatsApp). Facebook Messenger is not: its policy forbids promotional messages outside the
24 hours after the customer last wrote, which is exactly when a reminder would go out.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from tailor.recommend.channels import slack_message, sms_text, telegram_message

__all__ = [
    "OUTBOUND_CHANNELS",
    "OutboundError",
    "Sender",
    "SlackSender",
    "TelegramSender",
    "TwilioSender",
    "senders_from_env",
]

#: Channels a trigger can send to without the customer writing first.
OUTBOUND_CHANNELS: tuple[str, ...] = ("telegram", "slack", "twilio")
TIMEOUT = 15.0


class OutboundError(RuntimeError):
    """A platform refused or could not be reached; the message names the platform."""


class Sender(Protocol):
    """Sends one message (text, then the cards of a ``product_cards`` payload) to a user."""

    channel: str

    def send(self, user_id: str, text: str, payload: Mapping[str, Any] | None) -> None:
        """Deliver, or raise :class:`OutboundError`."""


def _check(resp: httpx.Response, platform: str) -> None:
    if resp.status_code >= 400:
        raise OutboundError(f"{platform} answered HTTP {resp.status_code}: {resp.text[:200]}")


@dataclass
class TelegramSender:
    """Bot API ``sendMessage``: the text, then the cards as a numbered list with buttons."""

    token: str
    api_url: str = "https://api.telegram.org"
    channel: str = "telegram"

    def send(self, user_id: str, text: str, payload: Mapping[str, Any] | None) -> None:
        """Send to the chat ``user_id``."""
        url = f"{self.api_url.rstrip('/')}/bot{self.token}/sendMessage"
        bodies: list[dict[str, Any]] = [{"chat_id": user_id, "text": text}]
        cards = telegram_message(payload) if payload else None
        if cards:
            bodies.append({"chat_id": user_id, **cards})
        try:
            for body in bodies:
                resp = httpx.post(url, json=body, timeout=TIMEOUT)
                _check(resp, "Telegram")
                if resp.json().get("ok") is False:
                    raise OutboundError(f"Telegram refused the message: {resp.text[:200]}")
        except httpx.HTTPError as exc:
            raise OutboundError(f"Telegram is not reachable: {exc}") from exc


@dataclass
class SlackSender:
    """``chat.postMessage`` to the user's id (Slack opens the direct message)."""

    token: str
    api_url: str = "https://slack.com/api/"
    channel: str = "slack"

    def send(self, user_id: str, text: str, payload: Mapping[str, Any] | None) -> None:
        """Send to the Slack user ``user_id``."""
        body: dict[str, Any] = {"channel": user_id, "text": text}
        cards = slack_message(payload) if payload else None
        if cards:
            body["blocks"] = [
                {"type": "section", "text": {"type": "mrkdwn", "text": text}},
                *cards["blocks"],
            ]
        try:
            resp = httpx.post(
                f"{self.api_url.rstrip('/')}/chat.postMessage",
                json=body,
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=TIMEOUT,
            )
        except httpx.HTTPError as exc:
            raise OutboundError(f"Slack is not reachable: {exc}") from exc
        _check(resp, "Slack")
        if resp.json().get("ok") is False:
            raise OutboundError(f"Slack refused the message: {resp.text[:200]}")


@dataclass
class TwilioSender:
    """Twilio's Messages API: one SMS or WhatsApp message (``whatsapp:`` recipients)."""

    account_sid: str
    auth_token: str
    number: str | None = None
    whatsapp_number: str | None = None
    api_url: str = "https://api.twilio.com"
    channel: str = "twilio"

    def _from(self, user_id: str) -> str:
        if user_id.startswith("whatsapp:"):
            if self.whatsapp_number:
                return self.whatsapp_number
            if self.number:
                return f"whatsapp:{self.number}"
        elif self.number:
            return self.number
        raise OutboundError(f"Twilio: no number configured to send to {user_id[:9]}…")

    def send(self, user_id: str, text: str, payload: Mapping[str, Any] | None) -> None:
        """Send to the phone number (or ``whatsapp:`` number) ``user_id``."""
        cards = sms_text(payload) if payload else None
        body = f"{text}\n{cards}" if cards else text
        url = f"{self.api_url.rstrip('/')}/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        try:
            resp = httpx.post(
                url,
                data={"To": user_id, "From": self._from(user_id), "Body": body[:1600]},
                auth=(self.account_sid, self.auth_token),
                timeout=TIMEOUT,
            )
        except httpx.HTTPError as exc:
            raise OutboundError(f"Twilio is not reachable: {exc}") from exc
        _check(resp, "Twilio")


def senders_from_env(env: Mapping[str, str] | None = None) -> dict[str, Sender]:
    """The platforms configured by ``TAILOR_*`` variables (as for the bot), by channel name."""
    env = os.environ if env is None else env

    def get(name: str) -> str:
        return env.get(name, "").strip()

    out: dict[str, Sender] = {}
    if get("TAILOR_TELEGRAM_TOKEN"):
        out["telegram"] = TelegramSender(
            get("TAILOR_TELEGRAM_TOKEN"), get("TAILOR_TELEGRAM_API_URL") or TelegramSender.api_url
        )
    if get("TAILOR_SLACK_TOKEN"):
        out["slack"] = SlackSender(
            get("TAILOR_SLACK_TOKEN"), get("TAILOR_SLACK_API_URL") or SlackSender.api_url
        )
    if get("TAILOR_TWILIO_ACCOUNT_SID") and get("TAILOR_TWILIO_AUTH_TOKEN"):
        out["twilio"] = TwilioSender(
            get("TAILOR_TWILIO_ACCOUNT_SID"),
            get("TAILOR_TWILIO_AUTH_TOKEN"),
            get("TAILOR_TWILIO_NUMBER") or None,
            get("TAILOR_TWILIO_WHATSAPP_NUMBER") or None,
            get("TAILOR_TWILIO_API_URL") or TwilioSender.api_url,
        )
    return out
