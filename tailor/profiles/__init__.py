"""Who the shopper is: identity (signed tokens); profiles and segments grow here."""

from tailor.profiles.identity import (
    Identity,
    InvalidToken,
    TokenClaims,
    identify,
    sign_customer_token,
    verify_customer_token,
)

__all__ = [
    "Identity",
    "InvalidToken",
    "TokenClaims",
    "identify",
    "sign_customer_token",
    "verify_customer_token",
]
