"""The Prisma runner's container mechanics on the real Docker Engine: how sage_ops starts the
container, passes the database, reads its result, times it out and fails the run. A busybox image
runs a shell command in Prisma's place so these stay fast and in the main suite; the real Prisma
CLI runs through the same runner in tests/infra/test_prisma_cli.py (marker `stack`)."""

import shutil

import pytest
from dagster import DagsterInstance, Definitions

from sage_ops.backups.resources import BackupConfig
from sage_ops.migrations import defs as migrations
from sage_ops.migrations.discovery import load_migrations
from sage_ops.migrations.prisma_runner import ContainerMigrationFailed, run_prisma
from sage_ops.migrations.resources import MigrationConfig
from sage_ops.platforms.docker_engine.image import build_image
from sage_ops.platforms.targets import open_one_off
from sage_ops.postgres import PgTarget
from tests.migrations.conftest import INIT, schema_snapshot
from tests.platforms.conftest import docker_env  # noqa: F401 - the session fixture
from tests.platforms.test_ecs import aws, moto_endpoint  # noqa: F401 - moto fixtures

SECRET_TARGET = PgTarget(
    host="127.0.0.1", port=5432, user="app", dbname="sage", password="s3cret-pw"
)


@pytest.fixture(scope="module")
def shell_image(docker_env, tmp_path_factory):  # noqa: F811
    context = tmp_path_factory.mktemp("runner-image")
    shutil.copy("/bin/busybox", context / "busybox")
    (context / "Dockerfile").write_text(
        'FROM scratch\nCOPY busybox /bin/busybox\nENTRYPOINT ["/bin/busybox"]\n'
    )
    built = build_image(context, "Dockerfile", "sage-ops-test-runner", "test", None, lambda _: None)
    yield built.tags[0]
    docker_env.images.remove(built.tags[0], force=True)


def _run(image, timeout_s, log, command):
    local = open_one_off("docker://")
    run_prisma(local, image, SECRET_TARGET, timeout_s, log, pass_url=True, command=command)


def test_runner_passes_the_database_and_succeeds_on_exit_zero(shell_image):
    lines: list[str] = []
    expected = SECRET_TARGET.secret_url()
    command = ["sh", "-c", f'test "$DATABASE_URL" = "{expected}" && echo migrated']
    _run(shell_image, 60, lines.append, command)
    assert lines == ["migrated"]


def test_runner_fails_on_non_zero_exit_without_leaking_the_password(shell_image):
    command = ["sh", "-c", 'echo "Error: P3018 migration failed on $DATABASE_URL" >&2; exit 1']
    with pytest.raises(ContainerMigrationFailed) as err:
        _run(shell_image, 60, lambda _: None, command)
    assert "exited 1" in str(err.value) and "P3018 migration failed" in str(err.value)
    assert "s3cret-pw" not in str(err.value)


def test_runner_timeout(shell_image):
    with pytest.raises(ContainerMigrationFailed, match="did not finish within 1 s"):
        _run(shell_image, 1, lambda _: None, ["sleep", "30"])


def test_failing_prisma_runner_fails_migrate_database_after_the_backup(
    shell_image, write_migrations, empty_db, store, monkeypatch
):
    monkeypatch.setenv("MIGRATE_TARGET_URL", empty_db.redacted)
    config = MigrationConfig(
        migrations_dir=str(write_migrations(("init", INIT))),
        database_url_env="MIGRATE_TARGET_URL",
        runner="prisma",
        runner_release=shell_image,  # its entrypoint is busybox: `npx` is not there, exit 127
    )
    resources = {
        "migrations": config,
        "backups": BackupConfig(backup_url=store.url, verify_level="checksum"),
    }
    job = Definitions.merge(migrations.defs, Definitions(resources=resources)).resolve_job_def(
        "migrate_database"
    )
    result = job.execute_in_process(instance=DagsterInstance.ephemeral(), raise_on_error=False)
    assert not result.success
    assert [e.asset_key.path[-1] for e in result.get_asset_materialization_events()] == [
        "migration_plan",
        "pre_migration_backup",
    ]
    assert schema_snapshot(empty_db) == []


def test_ecs_runner_places_its_task_like_the_service(aws, write_migrations, empty_db, monkeypatch):  # noqa: F811
    """Fargate's run_task needs the service's network configuration; moto cannot finish a task,
    so the run_task call is captured instead of awaited."""
    from sage_ops.migrations.prisma_runner import PrismaRunner
    from sage_ops.platforms.ecs import tasks as ecs_tasks
    from tests.platforms.test_ecs import make_service

    cluster, service = make_service(aws)
    network = {"awsvpcConfiguration": {"subnets": ["subnet-1"], "securityGroups": ["sg-1"]}}
    aws.update_service(cluster=cluster, service=service, networkConfiguration=network)
    calls = []
    monkeypatch.setattr(
        ecs_tasks, "run_one_off_task", lambda *a, **kw: calls.append((a, kw)) or {"api": 0}
    )
    runner = PrismaRunner(f"ecs://{cluster}/{service}?container=api", release="td")
    assert (
        runner.apply(empty_db, load_migrations(write_migrations(("init", INIT))), lambda _: None)
        == []
    )
    [(args, kwargs)] = calls
    assert args[:2] == (cluster, "td")
    assert args[2]["containerOverrides"][0]["command"] == ["npx", "prisma", "migrate", "deploy"]
    assert kwargs["run_args"]["networkConfiguration"] == network
