"""Rules that keep a web page on another site from driving the service through a visitor's browser.

A key sent in a header (Authorization, X-API-Key) cannot come from another site: a browser adds such
headers only after a CORS preflight, which this service refuses unless GSV_CORS_ORIGINS allows the
site. Everything else (the page's cookie, or no key at all while no key exists) must show it comes
from this origin: an Origin header, when the browser sends one, naming this host, and no
Sec-Fetch-Site saying cross-site. Clients that are not browsers send neither header and pass.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import Headers

STATE_CHANGING = frozenset(("POST", "PUT", "PATCH", "DELETE"))
BODY_TYPES = ("application/json", "multipart/form-data")


def media_type(headers: Headers) -> str:
    return headers.get("content-type", "").split(";", 1)[0].strip().lower()


def has_body(headers: Headers) -> bool:
    return headers.get("content-length", "0").strip() not in ("", "0") or "transfer-encoding" in headers


def content_type_problem(method: str, headers: Headers, need_type: bool) -> str | None:
    """A state-changing request's body must be JSON or multipart: a cross-site form can send
    neither JSON nor custom headers without a preflight (multipart it can: the origin check covers
    that). need_type: also without a body (requests authenticated by the cookie)."""
    if method not in STATE_CHANGING or not (need_type or has_body(headers)):
        return None
    ctype = media_type(headers)
    if ctype in BODY_TYPES or (ctype.startswith("application/") and ctype.endswith("+json")):
        return None
    shown = ctype or "none"
    return (f"content type {shown[:60]!r} is not accepted for {method}: send the body as JSON with "
            "Content-Type: application/json (multipart/form-data for uploads)"
            + ("; a request authenticated by the gsv_key cookie needs that header even without a body"
               if need_type and not has_body(headers) else ""))


def cross_site_problem(headers: Headers, allowed_origins: list[str]) -> str | None:
    """Why the request looks like it comes from another site, or None."""
    origin = headers.get("origin")
    if origin is not None:
        if origin.rstrip("/") in allowed_origins:
            return None
        netloc = urlsplit(origin).netloc.lower() if origin != "null" else ""
        if not netloc or netloc != headers.get("host", "").lower():
            return (f"cross-site request refused (Origin {origin[:80]!r} is not this service); send the "
                    "API key in the Authorization or X-API-Key header, or allow the site with GSV_CORS_ORIGINS")
        return None
    if headers.get("sec-fetch-site", "").lower() in ("cross-site", "same-site"):
        return ("cross-site request refused (Sec-Fetch-Site); send the API key in the Authorization or "
                "X-API-Key header")
    return None
