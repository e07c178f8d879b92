from pathlib import Path

from sage_ops import postgres
from sage_ops.deploy.demo import demo_environment, demo_repo, environment_databases
from sage_ops.platforms.git.push_scan import scan


def test_demo_repository_and_databases(tmp_path, pg_server):
    repo = demo_repo(tmp_path)
    assert (repo / "apps" / "backend" / "Dockerfile").is_file()
    assert not (repo / "apps" / "backend" / "busybox").exists()
    assert demo_repo(tmp_path) == repo  # reused, not recreated
    result = scan(str(repo), "main", ["apps/backend/**"], None, tmp_path / "cache")
    assert result.deploy is not None and result.deploy.subject == "Sample backend"
    try:
        databases = environment_databases(pg_server)
        assert environment_databases(pg_server) == databases  # idempotent
        env = demo_environment(tmp_path, databases)
        assert env["SAGE_OPS_REPO"] == str(repo)
        assert env["STAGING_DATABASE_URL"].endswith("/sage_staging")
        assert Path(env["SAGE_OPS_BUILD_FILES"].split("=", 1)[1]).name == "busybox"
    finally:
        with postgres.connect(pg_server) as conn:
            for name in ("sage_staging", "sage_production"):
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
