"""Access to the plan routes: credentials when the settings ask for them, and the headers that
keep a hostile value in a record from running as script even if it slipped past escaping."""

from __future__ import annotations

import base64
import binascii
from hmac import compare_digest
from typing import Final

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from worker.web.settings import WebSettings

# Scripts, styles and connections only from the worker itself; no inline script, no framing.
SECURITY_HEADERS: Final = {
    "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}
REALM: Final = "order status"


class PlanAccess:
    """ASGI middleware wrapped around each plan route."""

    def __init__(self, app: ASGIApp, settings: WebSettings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
            await send(message)

        if self.authorized(Headers(scope=scope).get("authorization")):
            await self.app(scope, receive, send_secured)
        else:
            await self.challenge()(scope, receive, send_secured)

    def authorized(self, authorization: str | None) -> bool:
        settings = self.settings
        if not settings.protected:
            return True
        scheme, _, credentials = (authorization or "").partition(" ")
        scheme, credentials = scheme.lower(), credentials.strip()
        if scheme == "bearer" and settings.bearer_token is not None:
            return _same(credentials, settings.bearer_token.get_secret_value())
        if scheme == "basic" and settings.basic_username and settings.basic_password:
            try:
                decoded = base64.b64decode(credentials, validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return False
            username, _, password = decoded.partition(":")
            # Both compared, whatever the first says: the time taken tells nothing about either.
            right_user = _same(username, settings.basic_username)
            right_password = _same(password, settings.basic_password.get_secret_value())
            return right_user & right_password
        return False

    def challenge(self) -> PlainTextResponse:
        challenges = []
        if self.settings.basic_username is not None:
            challenges.append(f'Basic realm="{REALM}", charset="UTF-8"')
        if self.settings.bearer_token is not None:
            challenges.append(f'Bearer realm="{REALM}"')
        response = PlainTextResponse("Authentication required.\n", status_code=401)
        for challenge in challenges:
            response.headers.append("www-authenticate", challenge)
        return response


def _same(given: str, expected: str) -> bool:
    """Constant-time for equal lengths (compare_digest); only the length can be learnt."""
    return compare_digest(given.encode(), expected.encode())
