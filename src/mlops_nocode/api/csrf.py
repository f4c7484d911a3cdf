"""Cross-site request forgery: what a request authenticated by the browser's session cookie must show.

A browser sends its cookies with requests that other pages make it send, so a cookie alone proves
nothing about who wrote a request. Four layers, each enough against the classic attack, together covering
the cases one alone misses (OWASP's CSRF cheat sheet: a synchronizer token, plus origin verification and
fetch metadata as defence in depth):

1. The cookie is `SameSite=Strict`: current browsers do not send it on requests from other sites. That
   leaves same-site origins (another port of localhost, a sibling subdomain) and old browsers.
2. Fetch metadata (`Sec-Fetch-Site`, sent by every current browser, unforgeable by page script): a write
   must come from this origin; a read must not come from another origin, unless it is a top-level
   navigation (a link followed: it shows the answer to the user, never to the page that linked).
3. `Origin`, when the browser sends it with a write, must be this gateway's own origin (as the browser
   reached it: scheme and Host) or one of CSRF_TRUSTED_ORIGINS; `null` is refused.
4. The synchronizer token: every write (any method but GET) carries `X-CSRF-Token` equal to the
   session's own random token. Only a page of this origin can read it (`GET /api/v1/session`; no CORS is
   configured), and it is stored server-side with the session, so it dies with it.

Requests with `Authorization: Bearer` are not concerned: a page of another origin cannot set that header
(without a CORS pre-flight, which this gateway never grants), and the cookie is then ignored.
"""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request, status

CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FROM_ANYWHERE_SAFE = frozenset({"same-origin", "none"})  # `none`: typed, bookmarked, opened from outside


def own_origin(request: Request) -> str:
    """This gateway's origin as the browser reached it (`http://127.0.0.1:8000`)."""
    return f"{request.url.scheme}://{request.url.netloc}".lower()


def _refuse(message: str) -> HTTPException:
    return HTTPException(status.HTTP_403_FORBIDDEN, message)


def check_cookie_request(request: Request, csrf_token: str, trusted: list[str]) -> None:
    """Refuse (403) a cookie-authenticated request that another origin may have made the browser send."""
    site = request.headers.get("sec-fetch-site")
    if request.method in SAFE_METHODS:
        navigation = request.headers.get("sec-fetch-mode") == "navigate"
        if site is not None and site not in FROM_ANYWHERE_SAFE and not navigation:
            raise _refuse(f"a {site} request may not use the browser session: send it from this origin")
        return
    if site is not None and site != "same-origin":
        raise _refuse(
            f"cross-origin write refused ({site} request with the browser session): write from a page of "
            "this gateway, or use Authorization: Bearer <API key or token>"
        )
    origin = request.headers.get("origin")
    if origin is not None and origin.lower().rstrip("/") not in (own_origin(request), *trusted):
        raise _refuse(
            f"cross-origin write refused (Origin {origin[:100]!r} is not this gateway): add it to "
            "CSRF_TRUSTED_ORIGINS if it is yours, or use Authorization: Bearer <API key or token>"
        )
    sent = request.headers.get(CSRF_HEADER, "")
    if not sent:
        raise _refuse(
            f"missing {CSRF_HEADER} header: a write with the browser session must send the session's CSRF "
            "token (GET /api/v1/session answers it)"
        )
    if not hmac.compare_digest(sent.encode(), csrf_token.encode()):
        raise _refuse(f"wrong {CSRF_HEADER}: get the session's token again from GET /api/v1/session")
