"""Product cards as each messaging platform shows them (pure functions, standard library only).

The actions send one channel-neutral payload, ``{"type": "product_cards", "products": [card,
...]}`` (see :mod:`tailor.recommend.render`). Web clients draw the cards themselves; for the
messaging platforms the Rasa output channels in ``bot/tailor_channels.py`` turn the payload
into the platform's own message with the functions here:

- Telegram: a numbered list with an inline keyboard, one button per product;
- Slack: Block Kit blocks, a section per product and a row of "Details" buttons;
- Facebook Messenger: a generic template (a carousel of at most 10 elements);
- SMS and WhatsApp (Twilio): numbered plain text ending in "Reply 1-N for details".

Every "details" control sends the sentence the bot already understands,
``tell me more about number N`` (:func:`details_request`); :func:`number_choice` turns a bare
"2" typed on SMS or WhatsApp into that sentence.

This module is also imported by the Rasa server (its own Python 3.10 venv, where the
``tailor`` package is not installed), so it imports nothing but the standard library.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "MESSENGER_MAX_ELEMENTS",
    "SMS_MAX_CHARS",
    "details_request",
    "messenger_elements",
    "messenger_message",
    "number_choice",
    "product_cards",
    "slack_blocks",
    "slack_message",
    "sms_text",
    "telegram_message",
]

#: A generic template holds at most 10 elements, each with at most 3 buttons.
MESSENGER_MAX_ELEMENTS = 10
MESSENGER_MAX_BUTTONS = 3
#: Messenger cuts element titles and subtitles at 80 characters, button titles at 20.
MESSENGER_TITLE_CHARS = 80
MESSENGER_BUTTON_CHARS = 20
#: Twilio refuses message bodies longer than 1,600 characters.
SMS_MAX_CHARS = 1600
#: Telegram messages hold at most 4,096 characters; callback data at most 64 bytes.
TELEGRAM_MAX_CHARS = 4096
TELEGRAM_BUTTON_CHARS = 40
#: Slack: at most 50 blocks a message, 25 elements in an actions block, 75-char button text.
SLACK_MAX_BLOCKS = 50
SLACK_MAX_ACTIONS = 25
#: More than this many products are not offered for picking by number.
MAX_CHOICES = 10

_NUMBER_REPLY = re.compile(r"^\s*(?:#|no\.?|number)?\s*(\d{1,2})\s*[.)!]?\s*$", re.IGNORECASE)


def details_request(number: int) -> str:
    """What a shopper 'says' to see product ``number`` (1-based) of the last list."""
    return f"tell me more about number {number}"


def product_cards(payload: Any) -> list[Mapping[str, Any]] | None:
    """The cards of a ``product_cards`` payload (at most :data:`MAX_CHOICES`), else ``None``."""
    if not isinstance(payload, Mapping) or payload.get("type") != "product_cards":
        return None
    products = payload.get("products")
    if not isinstance(products, Sequence) or isinstance(products, str):
        return None
    cards = [p for p in products if isinstance(p, Mapping) and p.get("title")]
    return cards[:MAX_CHOICES]


def number_choice(text: str, shown: int) -> str | None:
    """``tell me more about number N`` when ``text`` is only a number from 1 to ``shown``
    ("2", "#2", "2.", "number 2"), else ``None``."""
    match = _NUMBER_REPLY.match(text or "")
    if match is None:
        return None
    number = int(match.group(1))
    if not 1 <= number <= min(shown, MAX_CHOICES):
        return None
    return details_request(number)


def _cut(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _price(card: Mapping[str, Any]) -> str:
    if card.get("price_text"):
        return str(card["price_text"])
    price = card.get("price")
    return f"{float(price):.2f}" if isinstance(price, int | float) else ""


def _rating(card: Mapping[str, Any]) -> str:
    rating = card.get("rating")
    if not isinstance(rating, int | float):
        return ""
    count = card.get("review_count")
    return f"{rating:.1f}★" + (f" ({count})" if isinstance(count, int) and count else "")


def _facts(card: Mapping[str, Any]) -> str:
    """``$59.99 · 4.5★ (12)`` — price and rating of a card."""
    return " · ".join(part for part in (_price(card), _rating(card)) if part)


def _name(card: Mapping[str, Any]) -> str:
    brand = card.get("brand")
    return f"{card['title']} by {brand}" if brand else str(card["title"])


def _https(url: Any) -> str | None:
    """``url`` if it is an absolute https URL (platforms reject whole messages otherwise)."""
    return url if isinstance(url, str) and url.startswith("https://") else None


def _line(number: int, card: Mapping[str, Any]) -> str:
    reason = card.get("reason")
    tail = f". {reason}" if reason else ""
    facts = _facts(card)
    return f"{number}. {_name(card)}" + (f" — {facts}" if facts else "") + tail


def telegram_message(payload: Mapping[str, Any]) -> dict[str, Any] | None:
    """A Telegram ``sendMessage`` body (without ``chat_id``): the numbered products and an
    inline keyboard with one button per product that asks for its details."""
    cards = product_cards(payload)
    if not cards:
        return None
    lines = [_line(i, card) for i, card in enumerate(cards, 1)]
    text = _cut_lines(lines, TELEGRAM_MAX_CHARS)
    keyboard = [
        [
            {
                "text": _cut(f"{i}. {card['title']} — {_price(card)}", TELEGRAM_BUTTON_CHARS),
                "callback_data": details_request(i),
            }
        ]
        for i, card in enumerate(cards, 1)
    ]
    return {"text": text, "reply_markup": {"inline_keyboard": keyboard}}


def _cut_lines(lines: Sequence[str], limit: int, footer: str = "") -> str:
    """``lines`` joined by newlines, each line shortened so that the whole fits ``limit``."""
    text = "\n".join([*lines, footer] if footer else lines)
    if len(text) <= limit:
        return text
    budget = max(20, (limit - len(footer) - len(lines)) // max(1, len(lines)))
    short = [_cut(line, budget) for line in lines]
    return "\n".join([*short, footer] if footer else short)[:limit]


def slack_blocks(payload: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """Slack Block Kit blocks: a section per product (with its picture when it has an https
    one) and an actions block of "Details" buttons, whose values ask for the details."""
    cards = product_cards(payload)
    if not cards:
        return None
    blocks: list[dict[str, Any]] = []
    for i, card in enumerate(cards, 1):
        text = f"*{i}. {_escape_mrkdwn(_name(card))}*"
        facts = _facts(card)
        if facts:
            text += f"\n{facts}"
        if card.get("reason"):
            text += f"\n_{_escape_mrkdwn(str(card['reason']))}_"
        section: dict[str, Any] = {"type": "section", "text": {"type": "mrkdwn", "text": text}}
        image = _https(card.get("image_url"))
        if image:
            section["accessory"] = {"type": "image", "image_url": image, "alt_text": card["title"]}
        blocks.append(section)
    blocks = blocks[: SLACK_MAX_BLOCKS - 1]
    blocks.append(
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "action_id": f"tailor_details_{i}",
                    "text": {"type": "plain_text", "text": f"Details #{i}"},
                    "value": details_request(i),
                }
                for i in range(1, min(len(cards), SLACK_MAX_ACTIONS) + 1)
            ],
        }
    )
    return blocks


def _escape_mrkdwn(text: str) -> str:
    """Slack's three escapes for text in mrkdwn."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_message(payload: Mapping[str, Any]) -> dict[str, Any] | None:
    """``chat.postMessage`` arguments (without ``channel``): blocks and the notification text."""
    blocks = slack_blocks(payload)
    if blocks is None:
        return None
    cards = product_cards(payload) or []
    fallback = "; ".join(f"{i}. {card['title']}" for i, card in enumerate(cards, 1))
    return {"text": _cut(fallback, 3000), "blocks": blocks}


def messenger_elements(payload: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    """Elements of a Messenger generic template: at most 10, each with one postback button
    (of the 3 allowed) asking for the product's details."""
    cards = product_cards(payload)
    if not cards:
        return None
    elements = []
    for i, card in enumerate(cards[:MESSENGER_MAX_ELEMENTS], 1):
        subtitle = " — ".join(p for p in (_facts(card), str(card.get("reason") or "")) if p)
        element: dict[str, Any] = {
            "title": _cut(f"{i}. {card['title']}", MESSENGER_TITLE_CHARS),
            "subtitle": _cut(subtitle, MESSENGER_TITLE_CHARS),
            "buttons": [
                {
                    "type": "postback",
                    "title": _cut("Tell me more", MESSENGER_BUTTON_CHARS),
                    "payload": details_request(i),
                }
            ][:MESSENGER_MAX_BUTTONS],
        }
        image = _https(card.get("image_url"))
        if image:
            element["image_url"] = image
        elements.append(element)
    return elements


def messenger_message(payload: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``message`` of a Send API call: a generic template of the products."""
    elements = messenger_elements(payload)
    if elements is None:
        return None
    return {
        "attachment": {
            "type": "template",
            "payload": {"template_type": "generic", "elements": elements},
        }
    }


def sms_text(payload: Mapping[str, Any]) -> str | None:
    """Numbered plain text for SMS and WhatsApp, ending in "Reply 1-N for details."
    (at most :data:`SMS_MAX_CHARS`, so it is one Twilio message)."""
    cards = product_cards(payload)
    if not cards:
        return None
    lines = [_line(i, card) for i, card in enumerate(cards, 1)]
    footer = "Reply 1 for details." if len(cards) == 1 else f"Reply 1-{len(cards)} for details."
    return _cut_lines(lines, SMS_MAX_CHARS, footer)
