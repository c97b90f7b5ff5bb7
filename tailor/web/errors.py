"""The web API's own "unprocessable" answers, in the shape its OpenAPI description promises.

FastAPI documents every 422 as ``{"detail": [{"loc": [...], "msg": ..., "type": ...}]}``;
an ``HTTPException(422, "some text")`` answers ``{"detail": "some text"}`` instead, which a
client generated from the schema cannot read. Every 422 the app raises itself goes through
:func:`unprocessable`.
"""

from __future__ import annotations

from fastapi import HTTPException

__all__ = ["unprocessable"]


def unprocessable(msg: str, *loc: str | int, kind: str = "value_error") -> HTTPException:
    """A 422 saying what is wrong (``msg``) and where (``loc``, e.g. ``"body", "sender"``)."""
    return HTTPException(422, [{"type": kind, "loc": list(loc), "msg": msg}])
