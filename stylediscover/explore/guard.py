"""The explorer's front door, an ASGI middleware that answers before any route runs:

  Host     must name the bound address, localhost or a name given with --allow-host (421 otherwise), so a page on
           another site cannot reach the server through DNS rebinding;
  Origin   a POST that carries one must come from a page of this server (403), so other sites' pages cannot drive it;
  bodies   a POST's Content-Type must be application/json (the upload route: application/octet-stream or image/*),
           415 otherwise: an HTML form can send neither, so a cross-site form cannot post;
  token    when the server has one (required when it listens beyond loopback): every request presents it, as the
           `token` query parameter (the page's URL; answered with a cookie), the cookie or an
           `Authorization: Bearer` header (401 otherwise).
Every refusal is JSON {"error": one line}.
"""

import hmac
import ipaddress
import socket
from collections.abc import Iterable
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qs, urlsplit

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE = "stylediscover_explorer"
RAW_BODY_ROUTES = ("/api/upload",)
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def is_loopback(host: str) -> bool:
    """Whether `host` (an address or 'localhost') only listens on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def allowed_hosts(bound: str, extra: Iterable[str] = ()) -> frozenset[str]:
    """Host names the server answers to: the bound address, localhost and `extra`; for a wildcard bind (0.0.0.0,
    ::) also this machine's name."""
    names = {bound.lower(), *LOOPBACK_NAMES, *(name.lower() for name in extra)}
    if bound in ("0.0.0.0", "::"):
        names |= {socket.gethostname().lower(), socket.getfqdn().lower()}
    return frozenset(names)


def _hostname(value: str) -> str | None:
    """The host name of a Host header value ('name', 'name:port', '[v6]:port'); None when malformed."""
    try:
        return urlsplit(f"//{value}").hostname
    except ValueError:
        return None


class Guard:
    """ASGI middleware enforcing the module's rules in front of `app`."""

    def __init__(self, app: ASGIApp, hosts: frozenset[str], port: int | None, token: str | None):
        self.app, self.hosts, self.port, self.token = app, hosts, port, token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        refusal = self.refusal(scope, headers)
        if refusal is not None:
            status, message = refusal
            await JSONResponse({"error": message}, status_code=status)(scope, receive, send)
            return
        if self.token is None or not self._query_token(scope):
            await self.app(scope, receive, send)
            return

        async def with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                cookie = SimpleCookie()
                cookie[COOKIE] = self.token
                cookie[COOKIE].update({"httponly": True, "samesite": "Strict", "path": "/"})
                MutableHeaders(scope=message).append("set-cookie", cookie.output(header="").strip())
            await send(message)

        await self.app(scope, receive, with_cookie)

    def refusal(self, scope: Scope, headers: Headers) -> tuple[int, str] | None:
        """(status, message) for a request the rules refuse, else None."""
        host = _hostname(headers.get("host", ""))
        if host is None or host.lower() not in self.hosts:
            return 421, (f"Host {headers.get('host', '')[:100]!r} is not served here (allowed: "
                         f"{', '.join(sorted(self.hosts))}; add a name with --allow-host)")
        if self.token is not None and not self._presents_token(scope, headers):
            return 401, "this explorer needs its token: open the URL it printed (with ?token=...)"
        if scope["method"] not in ("GET", "HEAD"):
            origin = headers.get("origin")
            if origin is not None and not self._same_origin(origin):
                return 403, f"requests from pages of {origin[:100]!r} are refused"
            media = headers.get("content-type", "").split(";")[0].strip().lower()
            raw = scope["path"] in RAW_BODY_ROUTES
            if raw and not (media == "application/octet-stream" or media.startswith("image/")):
                return 415, f"expected the image's bytes as application/octet-stream, not {media or 'no type'!r}"
            if not raw and media != "application/json":
                return 415, f"expected a JSON body (Content-Type: application/json), not {media or 'no type'!r}"
        return None

    def _same_origin(self, origin: str) -> bool:
        try:
            parts = urlsplit(origin)
            port = parts.port
        except ValueError:
            return False
        return (parts.scheme == "http" and (parts.hostname or "").lower() in self.hosts
                and (self.port is None or port == self.port))

    def _query_token(self, scope: Scope) -> bool:
        values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token", [])
        return any(hmac.compare_digest(v.encode(), self.token.encode()) for v in values)

    def _presents_token(self, scope: Scope, headers: Headers) -> bool:
        cookie = SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except CookieError:
            cookie = SimpleCookie()
        candidates = [cookie[COOKIE].value] if COOKIE in cookie else []
        authorization = headers.get("authorization", "")
        if authorization.lower().startswith("bearer "):
            candidates.append(authorization[7:].strip())
        return self._query_token(scope) or any(
            hmac.compare_digest(c.encode(), self.token.encode()) for c in candidates)
