"""The contracts between rooms are spelled once: deployment metadata keys in lineage/metadata.py
(deploy writes them, lineage reads them), and the foundations import no platform."""

import ast
import re
from pathlib import Path

from sage_ops.lineage import metadata

ROOT = Path(__file__).resolve().parents[2] / "sage_ops"
KEYS = [v for k, v in vars(metadata).items() if k.isupper() and isinstance(v, str)]
# A key written as a literal where metadata is built or read: {"image": ...}, meta["image"],
# meta.get("image"), "image" in meta.
RETYPED = re.compile(
    rf"""["']({"|".join(KEYS)})["']\s*(:|\]|\)|in\b)|\.get\(\s*["']({"|".join(KEYS)})["']"""
)


def test_deployment_metadata_keys_are_imported_never_retyped():
    offenders = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for room in ("deploy", "lineage")
        for path in (ROOT / room).rglob("*.py")
        if path.name != "metadata.py"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if RETYPED.search(line) and "rollback_op" not in line  # run config, not metadata
    ]
    assert offenders == []


def test_a_deployment_record_carries_every_shared_key():
    record = metadata.deployment("abc", "staging", "r@sha256:1", "rev", None, "ci")
    assert record == {
        metadata.COMMIT: "abc",
        metadata.ENVIRONMENT: "staging",
        metadata.IMAGE: "r@sha256:1",
        metadata.REVISION: "rev",
        metadata.PREVIOUS_IMAGE: "",
        metadata.LAUNCHED_BY: "ci",
    }


def test_root_modules_import_no_platform():
    for path in ROOT.glob("*.py"):
        tree = ast.parse(path.read_text())
        imported = [
            node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
        ] + [a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names]
        faces = ("doctor.py", "definitions.py")  # the faces stand above every room
        if path.name not in faces:
            assert not [m for m in imported if m.startswith("sage_ops.platforms")], path.name
