"""Benchmark sage_ops' guarded migration runner against plain psql on the same Prisma files.

    .venv/bin/python -m benchmarks.migrations [--count 50] [--repeat 3]

Generates a deterministic Prisma project of --count migrations, then for each of --repeat
rounds applies it to two fresh scratch databases: once with ONE `psql -X -q -v ON_ERROR_STOP=1
-f all.sql` session over the concatenated files (wall clock, process start included), once
with `apply_pending` in-process (connect, lock and bookkeeping included). The two schemas must
match and `_prisma_migrations` must hold --count finished rows, or the run aborts. Target:
sage_ops' median under 2x psql's. Exit status 1 when the target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sage_ops import postgres
from sage_ops.migrations.discovery import MigrationFile, load_migrations
from sage_ops.migrations.runner import RunOptions, apply_pending
from sage_ops.postgres import PgTarget

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
RESULTS_DIR = Path(__file__).resolve().parent / "results"
RESULTS = RESULTS_DIR / "migrations-latest.json"
TARGET_RATIO = 2.0
PSQL, SAGE = "psql", "sage_ops"
SEED_ROWS = 2000
FIRST_STAMP = datetime(2024, 1, 8, 9, 0, 0)
MODELS = (
    "User",
    "Organization",
    "Project",
    "Dataset",
    "Document",
    "Conversation",
    "Message",
    "Invoice",
    "Subscription",
    "ApiKey",
    "AuditLog",
    "Webhook",
)

# --- the sample Prisma project -------------------------------------------------------------


def _create_table(tables: list[str]) -> str:
    """Prisma's `-- CreateTable` with its unique index, and a relation to the previous model."""
    parent = tables[-1] if tables else None
    lap = len(tables) // len(MODELS)
    table = MODELS[len(tables) % len(MODELS)] + (str(lap + 1) if lap else "")
    tables.append(table)
    sql = (
        f'-- CreateTable\nCREATE TABLE "{table}" (\n'
        f'    "id" SERIAL NOT NULL,\n    "slug" TEXT NOT NULL,\n    "name" TEXT NOT NULL,\n'
        f'    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,\n'
        f'    "updatedAt" TIMESTAMP(3) NOT NULL,\n    "parentId" INTEGER,\n\n'
        f'    CONSTRAINT "{table}_pkey" PRIMARY KEY ("id")\n);\n\n'
        f'-- CreateIndex\nCREATE UNIQUE INDEX "{table}_slug_key" ON "{table}"("slug");\n'
    )
    if parent:
        sql += _foreign_key(table, "parentId", parent, "SET NULL")
    return sql


def _foreign_key(table: str, column: str, parent: str, on_delete: str) -> str:
    return (
        f'\n-- CreateIndex\nCREATE INDEX "{table}_{column}_idx" ON "{table}"("{column}");\n\n'
        f'-- AddForeignKey\nALTER TABLE "{table}" ADD CONSTRAINT "{table}_{column}_fkey" '
        f'FOREIGN KEY ("{column}") REFERENCES "{parent}"("id") '
        f"ON DELETE {on_delete} ON UPDATE CASCADE;\n"
    )


def _seed_rows(tables: list[str]) -> str:
    """A hand-written data migration: reference rows for the newest model."""
    table = tables[-1]
    return (
        f'-- Seed reference data\nINSERT INTO "{table}" ("slug", "name", "updatedAt")\n'
        f"SELECT '{table.lower()}-' || g, 'Sample {table} ' || g, CURRENT_TIMESTAMP\n"
        f"FROM generate_series(1, {SEED_ROWS}) AS g;\n"
    )


def _add_columns(tables: list[str]) -> str:
    table = tables[-1]
    return (
        f'-- AlterTable\nALTER TABLE "{table}" ADD COLUMN "description" TEXT,\n'
        f'ADD COLUMN "priority" INTEGER NOT NULL DEFAULT 0,\n'
        f"ADD COLUMN \"metadata\" JSONB NOT NULL DEFAULT '{{}}';\n"
    )


def _create_enum(tables: list[str]) -> str:
    table = tables[-1]
    return (
        f"-- CreateEnum\nCREATE TYPE \"{table}Status\" AS ENUM ('DRAFT', 'ACTIVE', 'ARCHIVED');\n\n"
        f'-- AlterTable\nALTER TABLE "{table}" ADD COLUMN "status" "{table}Status" '
        f"NOT NULL DEFAULT 'DRAFT';\n"
    )


def _create_index(tables: list[str]) -> str:
    table = tables[-1]
    return (
        f'-- CreateIndex\nCREATE INDEX "{table}_status_createdAt_idx" '
        f'ON "{table}"("status", "createdAt" DESC);\n\n'
        f'-- CreateIndex\nCREATE UNIQUE INDEX "{table}_parentId_name_key" '
        f'ON "{table}"("parentId", "name");\n'
    )


def _backfill(tables: list[str]) -> str:
    """Prisma's required-column warning, resolved by hand: add, backfill, then SET NOT NULL."""
    table = tables[-1]
    return (
        f'-- AlterTable\nALTER TABLE "{table}" ADD COLUMN "searchKey" TEXT;\n\n'
        f'-- Backfill\nUPDATE "{table}" SET "searchKey" = lower("name") || \' \' || "slug";\n\n'
        f'-- AlterTable\nALTER TABLE "{table}" ALTER COLUMN "searchKey" SET NOT NULL;\n'
    )


def _add_relation(tables: list[str]) -> str:
    table = tables[-1]
    return f'-- AlterTable\nALTER TABLE "{table}" ADD COLUMN "ownerId" INTEGER;\n' + _foreign_key(
        table, "ownerId", tables[0], "RESTRICT"
    )


KINDS: tuple[tuple[str, Callable[[list[str]], str]], ...] = (
    ("create", _create_table),
    ("seed", _seed_rows),
    ("add_columns_to", _add_columns),
    ("add_status_to", _create_enum),
    ("index", _create_index),
    ("backfill_search_key_of", _backfill),
    ("add_owner_to", _add_relation),
)


def generate_project(count: int) -> list[tuple[str, str]]:
    """(folder name, migration.sql) for `count` migrations; the same for the same count."""
    tables: list[str] = []
    project = []
    for index in range(count):
        label, render = KINDS[index % len(KINDS)]
        sql = render(tables)
        stamp = (FIRST_STAMP + timedelta(hours=index)).strftime("%Y%m%d%H%M%S")
        project.append((f"{stamp}_{label}_{_snake(tables[-1])}", sql))
    return project


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


def write_project(root: Path, project: list[tuple[str, str]]) -> tuple[Path, Path]:
    """The Prisma migrations directory, and all files concatenated into one psql script."""
    migrations = root / "prisma" / "migrations"
    migrations.mkdir(parents=True)
    (migrations / "migration_lock.toml").write_text('provider = "postgresql"\n')
    for name, sql in project:
        (migrations / name).mkdir()
        (migrations / name / "migration.sql").write_text(sql)
    script = root / "all.sql"
    script.write_text("\n".join(sql for _, sql in project))
    return migrations, script


# --- one round: both variants on fresh databases -------------------------------------------


def run_psql(db: PgTarget, script: Path) -> float:
    argv = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-f", str(script)]
    with postgres.libpq_env(db) as env:
        os.sync()
        start = time.perf_counter()
        done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"psql baseline failed (exit {done.returncode}): {done.stderr.strip()}")
    return wall


def run_sage(db: PgTarget, migrations: list[MigrationFile]) -> tuple[float, float]:
    """(wall seconds of apply_pending, the part spent inside the migrations' own timers)."""
    os.sync()
    start = time.perf_counter()
    applied = apply_pending(db, migrations, RunOptions())
    wall = time.perf_counter() - start
    if len(applied) != len(migrations):
        raise SystemExit(f"sage_ops applied {len(applied)} of {len(migrations)} migrations")
    return wall, sum(a.seconds for a in applied)


def run_round(
    server: PgTarget, script: Path, migrations: list[MigrationFile], psql_first: bool
) -> dict[str, Any]:
    """Both variants on their own scratch database; alternating order cancels warm-up bias."""
    with (
        postgres.scratch_database(server, prefix="sage_bench_mig_psql") as psql_db,
        postgres.scratch_database(server, prefix="sage_bench_mig_sage") as sage_db,
    ):
        steps: dict[str, Callable[[], Any]] = {
            PSQL: lambda: run_psql(psql_db, script),
            SAGE: lambda: run_sage(sage_db, migrations),
        }
        order = [PSQL, SAGE] if psql_first else [SAGE, PSQL]
        measured = {variant: steps[variant]() for variant in order}
        verify(psql_db, sage_db, len(migrations))
    return {"order": order, PSQL: measured[PSQL], SAGE: measured[SAGE]}


# --- verification -----------------------------------------------------------------------------

SNAPSHOT_QUERIES = (
    (
        "column",
        "SELECT table_name, column_name, data_type, udt_name, is_nullable, column_default "
        "FROM information_schema.columns WHERE table_schema = 'public' "
        "AND table_name <> '_prisma_migrations' ORDER BY 1, 2",
    ),
    (
        "index",
        "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
        "AND tablename <> '_prisma_migrations' ORDER BY 1, 2",
    ),
    (
        "constraint",
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE connamespace = 'public'::regnamespace "
        "AND conrelid::regclass::text <> '_prisma_migrations' ORDER BY 1, 2",
    ),
)


def schema_snapshot(target: PgTarget) -> list[tuple[Any, ...]]:
    """Columns, indexes, constraints and row counts of the app tables: equal = same result."""
    with postgres.connect(target) as conn:
        rows = [(kind, *row) for kind, query in SNAPSHOT_QUERIES for row in conn.execute(query)]
        counts = postgres.table_row_counts(conn)
    counts.pop("public._prisma_migrations", None)
    return rows + [("rows", table, n) for table, n in sorted(counts.items())]


def finished_rows(target: PgTarget) -> tuple[int, int]:
    """(all rows, finished and not rolled back rows) of _prisma_migrations."""
    with postgres.connect(target) as conn:
        row = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE finished_at IS NOT NULL "
            "AND rolled_back_at IS NULL AND applied_steps_count = 1) FROM _prisma_migrations"
        ).fetchone()
    return (row[0], row[1]) if row else (0, 0)


def verify(psql_db: PgTarget, sage_db: PgTarget, count: int) -> None:
    baseline, ours = schema_snapshot(psql_db), schema_snapshot(sage_db)
    if baseline != ours:
        only_psql = sorted(set(baseline) - set(ours), key=repr)[:5]
        only_sage = sorted(set(ours) - set(baseline), key=repr)[:5]
        raise SystemExit(f"schemas differ: only psql {only_psql}; only sage_ops {only_sage}")
    if not baseline:
        raise SystemExit("the migrations created nothing: the comparison would be vacuous")
    if finished_rows(sage_db) != (count, count):
        raise SystemExit(f"_prisma_migrations: {finished_rows(sage_db)}, expected {count} finished")


# --- report -----------------------------------------------------------------------------------


def summarize(runs: list[float], count: int) -> dict[str, float]:
    median = statistics.median(runs)
    return {
        "median_s": median,
        "min_s": min(runs),
        "max_s": max(runs),
        "per_migration_ms": median / count * 1000,
    }


def evaluate(rounds: list[dict[str, Any]], count: int) -> dict[str, Any]:
    psql = summarize([r[PSQL] for r in rounds], count)
    sage = summarize([r[SAGE][0] for r in rounds], count)
    inside = statistics.median(r[SAGE][1] for r in rounds)
    ratio = sage["median_s"] / psql["median_s"]
    return {
        "variants": {PSQL: psql, SAGE: sage},
        "sage_ops_in_migrations_median_s": inside,
        "ratio_median": ratio,
        "target": {
            "name": f"{SAGE} < {TARGET_RATIO:g}x {PSQL}",
            "max_ratio": TARGET_RATIO,
            "passed": ratio < TARGET_RATIO,
        },
    }


def render(summary: dict[str, Any]) -> str:
    head = f"{'variant':<10} {'median s':>9} {'min s':>8} {'max s':>8} {'ms/migr':>8} {'ratio':>6}"
    psql_median = summary["variants"][PSQL]["median_s"]
    lines = [head, "-" * len(head)]
    for name, s in summary["variants"].items():
        lines.append(
            f"{name:<10} {s['median_s']:>9.3f} {s['min_s']:>8.3f} {s['max_s']:>8.3f} "
            f"{s['per_migration_ms']:>8.2f} {s['median_s'] / psql_median:>6.2f}"
        )
    target = summary["target"]
    verdict = "PASS" if target["passed"] else "FAIL"
    lines.append(
        f"\ntarget {target['name']}: {verdict} (median ratio {summary['ratio_median']:.2f})"
    )
    return "\n".join(lines)


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    ignore = path.parent / ".gitignore"
    if not ignore.exists():
        ignore.write_text("*\n!.gitignore\n")
    path.write_text(json.dumps(payload, indent=2) + "\n")


def server_version(server: PgTarget) -> str:
    with postgres.connect(server) as conn:
        return postgres.server_version(conn)[1]


# --- command ----------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.migrations", description=__doc__)
    parser.add_argument("--count", type=_positive, default=50, help="migrations to generate")
    parser.add_argument("--repeat", type=_positive, default=3, help="rounds (fresh databases)")
    parser.add_argument("--server-url", default=DEFAULT_SERVER, help="server to benchmark on")
    parser.add_argument("--json", type=Path, default=RESULTS, help="where to write results")
    return parser.parse_args(argv)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    server = PgTarget.from_url(args.server_url, "--server-url")
    with tempfile.TemporaryDirectory(prefix="sage_bench_migrations_") as tmp:
        directory, script = write_project(Path(tmp), generate_project(args.count))
        migrations = load_migrations(directory)
        rounds = []
        for index in range(args.repeat):
            rounds.append(run_round(server, script, migrations, psql_first=index % 2 == 0))
            print(f"round {index + 1}/{args.repeat}: verified, {_round_line(rounds[-1])}")
    summary = evaluate(rounds, args.count)
    print(f"\n{args.count} migrations, {args.repeat} rounds\n{render(summary)}")
    write_json(args.json, _payload(args, server, rounds, summary))
    print(f"results written to {args.json}")
    return 0 if summary["target"]["passed"] else 1


def _round_line(result: dict[str, Any]) -> str:
    wall, inside = result[SAGE]
    return f"psql {result[PSQL]:.3f} s, sage_ops {wall:.3f} s ({inside:.3f} s inside migrations)"


def _payload(
    args: argparse.Namespace, server: PgTarget, rounds: list[dict[str, Any]], summary: dict
) -> dict[str, Any]:
    return {
        "benchmark": "migrations",
        "finished_at": datetime.now(UTC).isoformat(),
        "command": {"count": args.count, "repeat": args.repeat, "server": server.redacted},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "python": sys.version.split()[0],
        "server_version": server_version(server),
        "rounds": [
            {
                "order": r["order"],
                "psql_s": r[PSQL],
                "sage_ops_s": r[SAGE][0],
                "sage_ops_in_migrations_s": r[SAGE][1],
            }
            for r in rounds
        ],
        **summary,
    }


if __name__ == "__main__":
    sys.exit(main())
