"""The backup resource, which is its settings: which database, where its backups go, how they
are verified and kept. The environment is read here only (`read_env`, `from_env`).

Values that would fail at 03:00 are refused when the resource is built (definition load, a run's
edited config) and named by `sage-ops doctor`, each with its variable and the allowed values.
"""

import os

from dagster import ConfigurableResource, EnvVar
from pydantic import model_validator

from sage_ops.backups.compress import DEFAULT_LEVEL
from sage_ops.backups.dump_and_verify import BackupRecipe
from sage_ops.backups.manifest import CUSTOM, FORMATS, PLAIN
from sage_ops.backups.store import BackupStore
from sage_ops.backups.stores import open_store
from sage_ops.backups.verify import LEVELS
from sage_ops.errors import ConfigError
from sage_ops.postgres import MAINTENANCE_DB, PgTarget
from sage_ops.state import state_dir

KEEP, FORMAT, COMPRESSION, VERIFY, SCRATCH = (
    "SAGE_OPS_BACKUP_KEEP",
    "SAGE_OPS_BACKUP_FORMAT",
    "SAGE_OPS_BACKUP_COMPRESSION",
    "SAGE_OPS_VERIFY_LEVEL",
    "SAGE_OPS_SCRATCH",
)
SSE, KMS_KEY = "SAGE_OPS_S3_SSE", "SAGE_OPS_S3_KMS_KEY_ID"
SSE_MODES = ("AES256", "aws:kms")  # S3's server-side encryption modes
EMBEDDED_SCRATCH = "embedded"
_KEEP_ALLOWED = "an integer of at least 1"
# zlib-ng's gzip levels for plain dumps; pg_dump -Fc -Z for custom ones, where 0 is uncompressed.
COMPRESSION_LEVELS = {PLAIN: range(1, 10), CUSTOM: range(0, 10)}
_COMPRESSION_ALLOWED = ", ".join(
    f"{r.start}-{r.stop - 1} for the {fmt} format" for fmt, r in COMPRESSION_LEVELS.items()
)


class BackupConfig(ConfigurableResource):
    """Which database to back up, where to store it, and how to verify and retain it."""

    database_url: str | None = None  # None: the embedded PostgreSQL 16
    backup_url: str
    keep: int = 7
    format: str = PLAIN
    compression_level: int = DEFAULT_LEVEL
    verify_level: str = "full"
    scratch_database_url: str | None = None  # None: the source database's server
    scratch: str | None = None  # "embedded": a PostgreSQL 16 started in the run's own task
    s3_sse: str | None = None  # None: the bucket's default encryption (or aws:kms with a key)
    s3_kms_key_id: str | None = None  # SSE-KMS under this key (ARN, id or alias)

    @model_validator(mode="after")
    def _allowed_values(self) -> "BackupConfig":
        _refuse(self.problems())  # a value that would fail at 03:00, named
        return self

    def problems(self) -> list[str]:
        """Every value that would fail at 03:00, naming its variable and the allowed values."""
        levels = COMPRESSION_LEVELS.get(self.format, COMPRESSION_LEVELS[PLAIN])
        level = self.compression_level
        rules = [  # (variable, value, allowed?, the allowed values in words)
            (KEEP, self.keep, self.keep >= 1, _KEEP_ALLOWED),
            (FORMAT, self.format, self.format in FORMATS, " or ".join(FORMATS)),
            (COMPRESSION, level, level in levels, _COMPRESSION_ALLOWED),
            (VERIFY, self.verify_level, self.verify_level in LEVELS, " or ".join(LEVELS)),
            (SCRATCH, self.scratch, self.scratch in (None, EMBEDDED_SCRATCH), "unset or embedded"),
            (SSE, self.s3_sse, self.s3_sse in (None, *SSE_MODES), " or ".join(SSE_MODES)),
        ]
        found = [_refused(name, value, allowed) for name, value, ok, allowed in rules if not ok]
        if self.scratch and self.scratch_database_url:
            found.append(f"{SCRATCH} and SAGE_OPS_SCRATCH_DATABASE_URL are both set: choose one")
        if self.s3_kms_key_id and self.s3_sse not in (None, "aws:kms"):
            found.append(f"{KMS_KEY} is set, so {SSE} must be aws:kms or unset")
        return found

    def target(self) -> PgTarget:
        if self.database_url is None:
            from sage_ops.embedded import embedded_target

            return embedded_target()
        return PgTarget.from_url(self.database_url)

    def scratch_server(self, target: PgTarget) -> PgTarget:
        """Where verification restores run: the embedded scratch server, a configured one, else
        the source's own server."""
        if self.scratch == EMBEDDED_SCRATCH:
            from sage_ops.embedded import scratch_server

            return scratch_server()
        if self.scratch_database_url:
            return PgTarget.from_url(self.scratch_database_url, "SAGE_OPS_SCRATCH_DATABASE_URL")
        return target.with_database(MAINTENANCE_DB)

    def store(self) -> BackupStore:
        return open_store(self.backup_url, self.s3_sse, self.s3_kms_key_id)

    def recipe(self) -> BackupRecipe:
        """How plain code takes and proves a backup with these settings."""
        return BackupRecipe(
            self.store(),
            self.format,
            self.compression_level,
            self.verify_level,
            self.scratch_server,
        )

    def redacted(self) -> dict[str, str]:
        shown = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if name.endswith("database_url") and value:
                try:
                    value = PgTarget.from_url(value).redacted
                except ConfigError:
                    value = "(malformed, not shown)"
            shown[name] = "(default)" if value is None else str(value)
        return shown

    @classmethod
    def read_env(cls, env_refs: bool = False) -> tuple["BackupConfig", list[str]]:
        """The settings and what is wrong with them, unrefused (an unparsable number keeps its
        default). `env_refs`: secrets as EnvVar references (resolved in the run, shown by name in
        the UI) instead of their values."""
        env = os.environ
        problems: list[str] = []
        config = cls.model_construct(  # built unvalidated, so doctor can name every problem
            database_url=_secret("DATABASE_URL", env_refs),
            backup_url=env.get("SAGE_OPS_BACKUP_URL") or default_backup_url(),
            keep=_int(KEEP, 7, _KEEP_ALLOWED, problems),
            format=env.get(FORMAT) or PLAIN,
            compression_level=_int(COMPRESSION, DEFAULT_LEVEL, _COMPRESSION_ALLOWED, problems),
            verify_level=env.get(VERIFY) or "full",
            scratch_database_url=_secret("SAGE_OPS_SCRATCH_DATABASE_URL", env_refs),
            scratch=env.get(SCRATCH) or None,
            s3_sse=env.get(SSE) or None,
            s3_kms_key_id=env.get(KMS_KEY) or None,
        )
        return config, problems + config.problems()

    @classmethod
    def from_env(cls, env_refs: bool = True) -> "BackupConfig":
        """The resource, refused (ConfigError naming each variable) if any value is not allowed."""
        config, problems = cls.read_env(env_refs)
        _refuse(problems)
        return cls(**{name: getattr(config, name) for name in cls.model_fields})


def default_backup_url() -> str:
    return f"file://{state_dir() / 'backups'}"


def _secret(name: str, env_refs: bool) -> str | None:
    value = os.environ.get(name) or None
    return EnvVar(name) if value and env_refs else value


def _refused(name: str, value: object, allowed: str) -> str:
    return f"{name}={str(value)!r} is not allowed: it must be {allowed}"


def _refuse(problems: list[str]) -> None:
    if problems:
        raise ConfigError("invalid settings: " + "; ".join(problems))


def _int(name: str, default: int, allowed: str, problems: list[str]) -> int:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        problems.append(_refused(name, raw, allowed))
        return default
