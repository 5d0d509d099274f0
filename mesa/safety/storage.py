"""Where the safety layer keeps what it computes once: the exemplar bank's embeddings and the larger reader's
unpacked weights, in mesa's cache folder (``$MESA_CACHE_DIR``, else ``$XDG_CACHE_HOME/mesa``, else
``~/.cache/mesa``), in private folders (0700) and files (0600)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_root"]


def cache_root() -> Path:
    """mesa's cache folder (not created here)."""
    base = os.environ.get("MESA_CACHE_DIR") or os.path.join(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "mesa")
    return Path(base)
