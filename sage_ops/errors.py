"""Exception types whose messages an operator can act on (never a secret, never a bare trace)."""


class SageOpsError(Exception):
    """Base class: the message says what failed, in which system, and what to check."""


class ConfigError(SageOpsError):
    """A setting is missing or malformed."""


class DatabaseError(SageOpsError):
    """The database could not be reached or refused what was asked."""


class ToolError(SageOpsError):
    """A PostgreSQL client tool is missing, too old, or failed."""


class StoreError(SageOpsError):
    """The backup store could not be read or written."""


class BackupLocked(SageOpsError):
    """Another backup of the same database is running."""


class DumpError(SageOpsError):
    """pg_dump failed; nothing was published."""


class VerificationError(SageOpsError):
    """A stored backup does not match its manifest or does not restore."""


class RetentionError(SageOpsError):
    """Retention could not complete; what it did is in the message."""
