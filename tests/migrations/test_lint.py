import pytest

from sage_ops.errors import ConfigError
from sage_ops.migrations.discovery import load_migrations
from sage_ops.migrations.lint import lint
from tests.migrations.conftest import ADD_NAME, ADD_POSTS, INIT

DROP = 'ALTER TABLE "User" DROP COLUMN "name";\n'


def test_prisma_generated_chain_has_no_blocking_findings(write_migrations):
    files = load_migrations(
        write_migrations(("init", INIT), ("posts", ADD_POSTS), ("name", ADD_NAME))
    )
    report = lint(files, {})
    assert report.blocking == [] and report.allowed == []


def test_destructive_migration_blocks_unless_allowed(write_migrations):
    files = load_migrations(write_migrations(("init", INIT), ("drop_name", DROP)))
    report = lint(files, {})
    assert [(f.migration, f.rule, f.line) for f in report.blocking] == [
        ("20261101000002_drop_name", "ban-drop-column", 1)
    ]
    allowed = lint(files, {"20261101000002_drop_name": ["ban-drop-column"]})
    assert allowed.blocking == [] and [f.rule for f in allowed.allowed] == ["ban-drop-column"]
    # Allowing a different rule, or the rule for a different migration, does not unblock it.
    assert lint(files, {"20261101000001_init": ["ban-drop-column"]}).blocking
    assert lint(files, {"20261101000002_drop_name": ["ban-drop-table"]}).blocking


def test_concurrent_index_file_is_linted_as_non_transactional(write_migrations):
    concurrent = 'CREATE INDEX CONCURRENTLY "User_email_idx" ON "User"("email");\n'
    files = load_migrations(write_migrations(("idx", concurrent)))
    rules = {f.rule for f in lint(files, {}).warnings + lint(files, {}).blocking}
    assert "ban-concurrent-index-creation-in-transaction" not in rules
    assert lint(files, {}).blocking == []


def test_plain_index_on_existing_table_blocks(write_migrations):
    files = load_migrations(write_migrations(("idx", 'CREATE INDEX "i" ON "User"("email");\n')))
    assert [f.rule for f in lint(files, {}).blocking] == ["require-concurrent-index-creation"]


def test_allow_for_unknown_migration_is_refused(write_migrations):
    files = load_migrations(write_migrations(("init", INIT)))
    with pytest.raises(ConfigError, match="not pending: 20990101000000_typo"):
        lint(files, {"20990101000000_typo": ["ban-drop-table"]})
