"""``mesa serve``: a web chat page and an HTTP API over one :class:`~mesa.SupportAgent`.

```python
from mesa import SupportAgent
from mesa.serve import create_app

app = create_app(SupportAgent(model="openai/gpt-4o-mini"))   # any ASGI server, or mount it in yours
```

Needs the ``serve`` extra (Starlette, uvicorn, python-multipart): ``pip install "mesa-esc[serve]"``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mesa.errors import MissingExtraError

if TYPE_CHECKING:
    from starlette.applications import Starlette

__all__ = ["create_app", "run"]


def _require_extra() -> None:
    import importlib.util

    for module in ("starlette", "uvicorn", "multipart"):
        if importlib.util.find_spec(module) is None:
            raise MissingExtraError("mesa serve", "serve", module)


def create_app(agent: Any, **options: Any) -> Starlette:
    """The Starlette app over ``agent``; see :func:`mesa.serve.app.create_app` for the options."""
    _require_extra()
    from mesa.serve.app import create_app as build

    return build(agent, **options)


def run(agent: Any, *, host: str = "127.0.0.1", port: int = 8000, **options: Any) -> None:
    """Serve ``agent`` with uvicorn until interrupted (127.0.0.1 by default: only this machine can reach it)."""
    _require_extra()
    import uvicorn

    uvicorn.run(create_app(agent, **options), host=host, port=port, log_level="info")
