"""`dagster` with one pause, for a point no outside observer can catch: retention's deletes
take microseconds on a local disk. SAGE_OPS_FAULT_PAUSE=retention-delete makes the first delete
of backup objects announce itself (a `reached` file in SAGE_OPS_FAULT_DIR) and wait to be killed
before the manifests are deleted."""

import os
import sys
import time
from pathlib import Path

from sage_ops.backups import store as store_module


def _pause_after_object_delete() -> None:
    real = store_module.LocalStore.delete

    def delete(self: store_module.LocalStore, keys: list[str]) -> None:
        real(self, keys)
        if keys and not any(k.endswith(".json") for k in keys):
            Path(os.environ["SAGE_OPS_FAULT_DIR"], "reached").write_text(",".join(keys))
            time.sleep(600)

    store_module.LocalStore.delete = delete  # type: ignore[method-assign]


if __name__ == "__main__":
    if os.environ.get("SAGE_OPS_FAULT_PAUSE") == "retention-delete":
        _pause_after_object_delete()
    from dagster._cli import main

    sys.argv[0] = "dagster"
    sys.exit(main())
