"""Doctor checks of the backups capability beyond the database and store lines (sage_ops.doctor):
the KMS key backups are written under, and the state directory the embedded scratch lives in."""

from __future__ import annotations

import os

from sage_ops.backups.resources import KMS_KEY, BackupConfig
from sage_ops.backups.s3_store import S3Store
from sage_ops.checks import Needs, Probe
from sage_ops.errors import ConfigError
from sage_ops.platforms import aws
from sage_ops.state import state_dir


def doctor_checks(needs: Needs) -> list[tuple[str, Probe]]:
    return [
        ("backup encryption", lambda: _encryption(needs)),
        ("state directory", lambda: _state_dir(needs)),
    ]


def _encryption(needs: Needs) -> str:
    needs.capability(KMS_KEY, "backups would get the bucket's default encryption only")
    store = BackupConfig.read_env()[0].store()
    if not isinstance(store, S3Store):
        raise ConfigError(f"{KMS_KEY} is set, but SAGE_OPS_BACKUP_URL is not an s3:// store")
    key = aws.client("kms").describe_key(KeyId=store.encryption["SSEKMSKeyId"])["KeyMetadata"]
    if key.get("KeyState") != "Enabled":
        raise ConfigError(f"KMS key {key['Arn']} ({KMS_KEY}) is {key.get('KeyState')}")
    return f"{store.url} written under aws:kms key {key['Arn']}"


def _state_dir(needs: Needs) -> str:
    needs.setting("SAGE_OPS_STATE_DIR", "state would go to the working directory, not the volume")
    path = state_dir()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"state directory {path} (SAGE_OPS_STATE_DIR): {exc.strerror}") from None
    if not os.access(path, os.W_OK):
        raise ConfigError(f"state directory {path} (SAGE_OPS_STATE_DIR) is not writable")
    return f"{path} writable"
