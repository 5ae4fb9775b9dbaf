"""Files a user uploads, kept where the simulator's loaders can read them."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path


def uploaded_config(data: bytes) -> str:
    """Keep an uploaded config.json as a file named by its content, and return its path for `load_model`."""
    path = Path(tempfile.gettempdir()) / f"v3sim-config-{hashlib.sha256(data).hexdigest()[:16]}.json"
    if not path.exists():
        path.write_bytes(data)
    return str(path)
