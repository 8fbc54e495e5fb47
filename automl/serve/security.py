"""Access control and request limits of the service.

- `api_key_dependency(key)`: every endpoint but /health requires the key, as `X-API-Key: KEY` or
  `Authorization: Bearer KEY` (FastAPI's own security schemes, so /docs shows an Authorize button); compared
  in constant time; a missing or wrong key is a 401 that never echoes what was sent. The key is read from an
  environment variable by the command and is never logged or written.
- `BodyLimit`: an ASGI middleware that refuses a body over `max_bytes` with 413, by its Content-Length before
  reading it, or while reading a chunked one.
"""

from __future__ import annotations

import secrets
from typing import Any, Callable, Optional

from fastapi import HTTPException, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_KEY_HEADER = "X-API-Key"
#: Default body limit: about 5,000 rows of 20 columns as JSON.
MAX_BODY_BYTES = 4 * 1024 * 1024


def api_key_dependency(key: Optional[str]) -> Callable[..., None]:
    """A FastAPI dependency that lets a request through only with `key` (any request when `key` is None)."""
    header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="the service's API key")
    bearer = HTTPBearer(auto_error=False, description="the service's API key as a bearer token")
    expected = key.encode() if key else None

    # async: a plain def would cost every request a hop through the thread pool for a string comparison
    async def require_key(api_key: Optional[str] = Security(header),
                          credentials: Optional[HTTPAuthorizationCredentials] = Security(bearer)) -> None:
        if expected is None:
            return
        supplied = api_key or (credentials.credentials if credentials else None)
        if not supplied or not secrets.compare_digest(supplied.encode(), expected):
            raise HTTPException(status_code=401, headers={"WWW-Authenticate": "Bearer"},
                                detail=f"missing or wrong API key: send it as {API_KEY_HEADER}: KEY or "
                                       "Authorization: Bearer KEY")

    return require_key


class BodyLimit:
    """Refuse request bodies over `max_bytes` (413) before they reach the application."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._refuse(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:  # a chunked body, or one longer than it said
                    raise HTTPException(status_code=413, detail=self._detail())
            return message

        await self.app(scope, limited, send)

    def _detail(self) -> str:
        return f"request body over {self.max_bytes} bytes: send fewer rows per request (or raise --max-body-bytes)"

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response: Any = JSONResponse({"detail": self._detail()}, status_code=413, headers={"Connection": "close"})
        await response(scope, receive, send)
