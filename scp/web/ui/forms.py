"""Reading posted forms: bounded text fields, page numbers, the field names a message may name."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import Request

# Field names a message may name (anything else is not echoed back).
FORM_FIELDS = (
    "number",
    "forward_to",
    "notify_mode",
    "language",
    "service",
    "pin",
    "msisdn",
    "name",
    "password",
    "role",
    "text",
    "prefix",
    "op",
    "owner",
    "call_category",
    "per_minute",
    "per_sms",
    "per_use",
    "monthly_fee",
    "valid_from",
    "caller_prefixes",
    "user_groups",
    "code",
    "voicemail_notify",
    "id",
)


def form_str(form: Mapping[str, Any], name: str, limit: int = 200) -> str:
    """A text field of a form, stripped and bounded ("" when absent or a file)."""
    v = form.get(name)
    return v.strip()[:limit] if isinstance(v, str) else ""


def page_number(request: Request, param: str = "page") -> int:
    """The page asked for by the query parameter ``param`` (1 when absent or not a number)."""
    try:
        return max(1, min(100_000, int(request.query_params.get(param, "1"))))
    except ValueError:
        return 1
