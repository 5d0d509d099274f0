"""The ASGI app behind ``mesa serve``: a chat page and an HTTP API over one :class:`~mesa.SupportAgent`.

Built on Starlette (the toolkit LangGraph's own server runs on) and served by uvicorn.

Routes:

- ``GET /``: the chat page (static HTML/JS/CSS shipped in the package; works offline).
- ``GET /healthz``: ``{"status": "ok", "model": ..., "mode": ...}``.
- ``POST /api/turn``: one turn, JSON (``{"text": ..., "thread_id": ...}``) or multipart
  (``text``, ``thread_id`` and an ``audio``/``video``/``image`` file) → the reply as JSON.
- ``POST /api/turn/stream``: the same input → NDJSON, one :class:`~mesa.agent.StreamEvent` per line,
  the last one ``{"type": "reply", ...}`` (or ``{"type": "error", ...}``).
- ``GET /api/threads/{thread_id}``: the conversation so far.

Uploads are capped (413 beyond the cap), stored 0600 in a private temporary folder, passed to
the agent as a local path and deleted when the turn ends.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from mesa.errors import LLMError, MesaError
from mesa.serve.uploads import MEDIA_FIELDS, TurnFiles, UnsupportedUpload, UploadTooLarge, read_limited_body, replay

__all__ = ["DEFAULT_MAX_UPLOAD_BYTES", "MAX_TEXT_CHARS", "BadTurn", "create_app"]

log = logging.getLogger("mesa.serve")

DEFAULT_MAX_UPLOAD_BYTES = 25 * 1024 * 1024
MAX_TEXT_CHARS = 8000
_THREAD_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")


class BadTurn(MesaError):
    """A request the API cannot turn into a user turn (no input, bad thread id, wrong content type)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class _TurnRequest:
    text: str | None
    thread_id: str
    uploads: dict[str, Any]


def _thread_id(value: Any) -> str:
    if value is None or value == "":
        return uuid.uuid4().hex
    if not isinstance(value, str) or not _THREAD_ID.match(value):
        raise BadTurn("thread_id: 1-128 letters, digits, '_', '-', '.' or ':', starting with a letter or digit")
    return value


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadTurn("text must be a string")
    if len(value) > MAX_TEXT_CHARS:
        raise BadTurn(f"text longer than {MAX_TEXT_CHARS} characters", status=413)
    return value.strip() or None


async def _read_json(request: Request, limit: int) -> _TurnRequest:
    body = await read_limited_body(request.stream(), limit)
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        raise BadTurn("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadTurn("the body must be a JSON object")
    return _TurnRequest(_text(data.get("text")), _thread_id(data.get("thread_id")), {})


async def _read_form(request: Request, limit: int) -> _TurnRequest:
    # Read the body against the cap first: nothing is parsed or spooled beyond it.
    body = await read_limited_body(request.stream(), limit)
    form = await Request(request.scope, replay(body)).form(max_files=len(MEDIA_FIELDS), max_fields=8)
    uploads = {name: form[name] for name in MEDIA_FIELDS if hasattr(form.get(name), "filename")}
    text = form.get("text")
    return _TurnRequest(_text(text if isinstance(text, str) else None), _thread_id(form.get("thread_id")), uploads)


def _check_origin(request: Request) -> None:
    """Refuse a turn posted by another site's page (a browser sends its Origin; a form post needs no CORS)."""
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
        raise BadTurn(f"requests from {origin} are not accepted here", status=403)


async def _read_turn(request: Request, limit: int) -> _TurnRequest:
    _check_origin(request)
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise UploadTooLarge(f"upload larger than {limit} bytes")
    kind = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if kind == "application/json":
        turn = await _read_json(request, limit)
    elif kind in ("multipart/form-data", "application/x-www-form-urlencoded"):
        turn = await _read_form(request, limit)
    else:
        raise BadTurn("send application/json or a form (multipart/form-data for files)", status=415)
    if turn.text is None and not turn.uploads:
        raise BadTurn("a turn needs text, or an audio, video or image file")
    return turn


def _error(exc: Exception) -> JSONResponse:
    if isinstance(exc, UploadTooLarge):
        return JSONResponse({"error": str(exc)}, status_code=413)
    if isinstance(exc, UnsupportedUpload):
        return JSONResponse({"error": str(exc)}, status_code=415)
    if isinstance(exc, BadTurn):
        return JSONResponse({"error": str(exc)}, status_code=exc.status)
    if isinstance(exc, LLMError):
        return JSONResponse({"error": f"the model call failed: {exc}"}, status_code=502)
    return JSONResponse({"error": str(exc)}, status_code=500)


def crisis_resources(agent: Any, reply: Any) -> dict[str, Any] | None:
    """The crisis contacts to show beside a crisis reply (``None`` on an ordinary turn)."""
    if not getattr(reply, "crisis", False):
        return None
    policy = agent.safety
    category = reply.safety.category if reply.safety else None
    entry = getattr(policy, "locale_contacts", None)
    contacts = policy.contacts(category) if hasattr(policy, "contacts") else []
    return {
        "country": getattr(entry, "country", None),
        "emergency": getattr(entry, "emergency", None),
        "contacts": [{**c.model_dump(exclude_none=True, exclude={"categories"}), "text": c.render()} for c in contacts],
    }


def _reply_json(agent: Any, reply: Any) -> dict[str, Any]:
    return {**reply.model_dump(mode="json"), "crisis_resources": crisis_resources(agent, reply)}


def _event_json(agent: Any, event: Any) -> dict[str, Any]:
    data = event.model_dump(mode="json", exclude_none=True)
    if event.type == "reply" and event.reply is not None:
        data["reply"] = _reply_json(agent, event.reply)
    return data


async def _saved(files: TurnFiles, uploads: dict[str, Any]) -> dict[str, str]:
    return {name: str(await files.save(name, upload)) for name, upload in uploads.items()}


class _Api:
    """The route handlers, bound to one agent and the server's limits."""

    def __init__(self, agent: Any, max_upload_bytes: int, upload_dir: str | None) -> None:
        self.agent = agent
        self.limit = max_upload_bytes
        self.upload_dir = upload_dir

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "model": self.agent.llm.model, "mode": self.agent.mode, "taxonomy": self.agent.taxonomy.name})

    async def turn(self, request: Request) -> Response:
        try:
            turn = await _read_turn(request, self.limit)
            with TurnFiles(self.upload_dir) as files:
                media = await _saved(files, turn.uploads)
                reply = await self.agent.arespond(turn.text, thread_id=turn.thread_id, **media)
        except (MesaError, ValueError) as exc:
            log.warning("turn refused or failed: %s", exc)
            return _error(exc)
        return JSONResponse(_reply_json(self.agent, reply))

    async def turn_stream(self, request: Request) -> Response:
        try:
            turn = await _read_turn(request, self.limit)
        except MesaError as exc:
            return _error(exc)
        return StreamingResponse(self._lines(turn), media_type="application/x-ndjson", headers={"Cache-Control": "no-store"})

    async def _lines(self, turn: _TurnRequest) -> AsyncIterator[str]:
        # The files live until the stream ends, then go (also when the client leaves mid-turn).
        with TurnFiles(self.upload_dir) as files:
            try:
                media = await _saved(files, turn.uploads)
                async for event in self.agent.astream(turn.text, thread_id=turn.thread_id, **media):
                    yield json.dumps(_event_json(self.agent, event)) + "\n"
            except (MesaError, ValueError) as exc:
                log.warning("streamed turn failed: %s", exc)
                yield json.dumps({"type": "error", "message": str(exc), "thread_id": turn.thread_id}) + "\n"

    async def thread(self, request: Request) -> Response:
        try:
            thread_id = _thread_id(request.path_params["thread_id"])
        except BadTurn as exc:
            return _error(exc)
        messages = await run_in_threadpool(self.agent.history, thread_id)
        return JSONResponse({"thread_id": thread_id, "messages": [m.model_dump(mode="json") for m in messages]})

    async def page(self, request: Request) -> Response:
        return FileResponse(_static_dir() / "index.html", headers={"Cache-Control": "no-store"})


def _static_dir():
    from importlib import resources
    from pathlib import Path

    return Path(str(resources.files("mesa.serve").joinpath("static")))


def create_app(agent: Any, *, max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES, upload_dir: str | None = None) -> Starlette:
    """The chat page and HTTP API over ``agent`` (a :class:`~mesa.SupportAgent`), as a Starlette app.

    Mount it in your own ASGI app or run it with uvicorn. The caller owns the agent (and closes it).
    ``max_upload_bytes`` caps a request body; ``upload_dir`` is where the private per-turn folders go
    (default: the system temporary folder).
    """
    api = _Api(agent, max_upload_bytes, upload_dir)
    routes = [
        Route("/", api.page, methods=["GET"]),
        Route("/healthz", api.health, methods=["GET"]),
        Route("/api/turn", api.turn, methods=["POST"]),
        Route("/api/turn/stream", api.turn_stream, methods=["POST"]),
        Route("/api/threads/{thread_id}", api.thread, methods=["GET"]),
        Mount("/static", StaticFiles(directory=_static_dir()), name="static"),
    ]
    app = Starlette(routes=routes)
    app.state.agent = agent
    return app
