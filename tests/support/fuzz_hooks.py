"""schemathesis hooks for tests/test_fuzz.py (loaded through SCHEMATHESIS_HOOKS): the VRE's
own check that every error is an RFC 9457 problem document."""

from __future__ import annotations

from typing import Any

import schemathesis


@schemathesis.check
def problem_on_error(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every 4xx/5xx is ``application/problem+json`` with a matching ``status``, a ``title``
    and a ``type`` (HEAD answers have no body to check)."""
    if response.status_code < 400 or case.method.upper() == "HEAD":
        return None
    content_type = response.headers.get("content-type", [""])
    if isinstance(content_type, list):
        content_type = content_type[0] if content_type else ""
    media = content_type.split(";")[0].strip()
    if media != "application/problem+json":
        raise AssertionError(f"{response.status_code} answered as {content_type!r}, not a problem")
    body = response.json()
    if not isinstance(body, dict) or body.get("status") != response.status_code:
        raise AssertionError(f"problem document without the matching status: {body!r:.300}")
    if not isinstance(body.get("title"), str) or not isinstance(body.get("type"), str):
        raise AssertionError(f"problem document without title or type: {body!r:.300}")
    return True
