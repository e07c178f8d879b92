"""A deploy with the Prisma runner configured: `staging_schema` takes the guarded path of
migrate_database with its configuration, and the real Prisma CLI (6.19.3, in the commit's image, built on sage-backend:migrate)
applies the commit's migrations, run once on the staging target in the commit's pushed image."""

import shutil

import pytest
from dagster import AssetKey

from sage_ops import postgres
from sage_ops.migrations import bookkeeping
from sage_ops.migrations.resources import MigrationConfig
from tests.deploy.test_pipeline import _git, stack  # noqa: F401 - the deploy stack fixture
from tests.infra.conftest import MIGRATE_IMAGE, REPO
from tests.platforms.conftest import docker_env, test_id  # noqa: F401 - pytest fixtures

pytestmark = pytest.mark.stack
NEW_MIGRATION = "20261201000000_tags"


def _commit_prisma_backend(repo) -> str:
    """apps/backend: the sample backend's migrate image (it carries the Prisma CLI) with this
    commit's migrations baked in."""
    backend = repo / "apps" / "backend"
    migrations = backend / "prisma" / "migrations"
    shutil.copytree(REPO / "infra" / "sample-backend" / "prisma" / "migrations", migrations)
    (migrations / NEW_MIGRATION).mkdir()
    (migrations / NEW_MIGRATION / "migration.sql").write_text(
        'CREATE TABLE "Tag" ("id" SERIAL PRIMARY KEY, "name" TEXT NOT NULL);\n'
    )
    (backend / "Dockerfile").write_text(
        f"FROM {MIGRATE_IMAGE}\nCOPY prisma/migrations/ /app/prisma/migrations/\n"
        # The image policy wants a health check; this test stops at the schema, before rollout.
        'HEALTHCHECK CMD ["node", "-e", "fetch(\'http://127.0.0.1:3000/health\')'
        '.then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]\n'
    )
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "backend with a new migration")
    return _git(repo, "rev-parse", "HEAD")


def test_deploy_applies_the_commits_migrations_with_the_real_prisma_cli(stack_images, stack):  # noqa: F811
    stack.resources = {
        **stack.resources,
        "migrations": MigrationConfig(migrations_dir="unused", runner="prisma"),
    }
    stack.configure(require_approval=True, build_files={}, image_max_mb=2000)
    sha = _commit_prisma_backend(stack.repo)
    [request] = stack.tick().run_requests
    # Up to the schema: the swarm smoke check execs busybox wget, which this Node image lacks.
    result = stack.definitions.resolve_job_def(request.job_name).execute_in_process(
        partition_key=request.partition_key,
        instance=stack.instance,
        tags=request.tags,
        asset_selection=[
            AssetKey(k) for k in ("backend_image", "registry_image", "staging_schema")
        ],
        raise_on_error=False,
    )
    assert result.success
    names = sorted(p.name for p in (stack.repo / "apps/backend/prisma/migrations").iterdir())
    expected = [n for n in names if n[:1].isdigit()]
    [schema] = result.asset_materializations_for_node("staging_schema")
    assert schema.metadata["migrations_applied"].value == expected
    assert schema.metadata["commit"].value == sha
    logs = [e.message for e in stack.instance.all_logs(result.run_id) if e.message]
    assert any("All migrations have been successfully applied." in m for m in logs)  # Prisma's
    with postgres.connect(stack.databases["staging"]) as conn:
        rows = bookkeeping.read_rows(conn)
    assert sorted(r.name for r in rows if r.applied) == expected and NEW_MIGRATION in expected
