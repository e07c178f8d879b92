"""Where sage_ops keeps local state (embedded database, backups, Dagster instance, git cache)."""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    """SAGE_OPS_STATE_DIR, else .state in the working directory: ignored by git."""
    return Path(os.environ.get("SAGE_OPS_STATE_DIR") or Path.cwd() / ".state").resolve()
