"""Personal data out of what Tailor writes down: e-mail addresses, phone numbers, card numbers.

:func:`redact` replaces each with a placeholder (``[email]``, ``[phone]``, ``[card]``). It is
applied where shoppers' words are stored (the ``message`` events of ``tailor.profiles``) and,
through :func:`install_log_redaction`, to every log record of the process (action server, web
app), exception tracebacks included.

Card numbers are 13-19 digits, optionally grouped by spaces or dashes, that pass the Luhn
check; other long digit runs (order numbers, EANs that fail Luhn) are left alone. Phone numbers
are matched by shape: international (``+`` and 8-15 digits), North American ``(555)
123-4567`` / ``555-123-4567``, or a national number with a leading 0 (10-11 digits). Prices,
sizes, years, dates and model numbers ("WH-1000XM4") are not touched.
"""

from __future__ import annotations

import logging
import re
from typing import Any

EMAIL = "[email]"
PHONE = "[phone]"
CARD = "[card]"

_EMAIL_RE = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-])"
)
_CARD_RE = re.compile(r"(?<![\w+-])\d(?:[ -]?\d){12,18}(?![\w-])")
_PHONE_RES = (
    # international: "+44 20 7946 0958", "+1 (555) 123-4567", "+4915112345678"
    re.compile(r"(?<![\w+])\+\d(?:[\s().-]{0,2}\d){7,14}(?!\w)"),
    # North American: "(555) 123-4567", "555-123-4567", "555.123.4567", "555 123 4567"
    re.compile(r"(?<![\w(+-])(?:\(\d{3}\)\s?|\d{3}[\s.-])\d{3}[\s.-]\d{4}(?![\w-])"),
    # national with a trunk 0: "07700 900123", "030 1234 5678", "0612345678"
    re.compile(r"(?<![\w+-])0\d{2,4}(?:[\s.-]?\d{2,4}){1,3}(?![\w-])"),
)


def luhn_valid(digits: str) -> bool:
    """Whether a string of digits passes the Luhn checksum (card numbers do)."""
    if not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    return CARD if 13 <= len(digits) <= 19 and luhn_valid(digits) else match.group(0)


def _phone(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group(0))
    text = match.group(0)
    if text.startswith("+"):
        ok = 8 <= len(digits) <= 15
    elif text.startswith("0"):
        ok = 10 <= len(digits) <= 11
    else:
        ok = len(digits) == 10
    return PHONE if ok else text


def redact(text: str) -> str:
    """``text`` with e-mail addresses, card numbers and phone numbers replaced."""
    if not text:
        return text
    out = _EMAIL_RE.sub(EMAIL, text)
    out = _CARD_RE.sub(_card, out)
    for pattern in _PHONE_RES:
        out = pattern.sub(_phone, out)
    return out


def redact_value(value: Any) -> Any:
    """:func:`redact` applied to every string inside a JSON-like value."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(v) for v in value]
    return value


class RedactingFilter(logging.Filter):
    """Rewrites a record's message (and traceback text) with personal data redacted.

    Attach it to handlers; :func:`install_log_redaction` applies the same rewrite to every
    record the process creates.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """Format the record's message now, redacted (its ``args`` are consumed)."""
    if getattr(record, "_tailor_redacted", False):
        return record
    try:
        message = record.getMessage()
    except Exception:  # a broken format string: keep the record as logging would show it
        message = str(record.msg)
    record.msg = redact(message)
    record.args = None
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    setattr(record, "_tailor_redacted", True)  # noqa: B010 - LogRecord takes extra attributes
    return record


_installed = False


def install_log_redaction() -> None:
    """Redact every log record this process creates, whatever logger or handler it goes to
    (a wrapped log record factory; idempotent). Loggers and handlers configured later by a
    framework (Sanic, uvicorn, the Rasa SDK) are covered too."""
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return redact_record(previous(*args, **kwargs))

    logging.setLogRecordFactory(factory)
    _installed = True
