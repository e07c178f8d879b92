"""`sage-ops doctor`: the effective configuration, and one check of each system."""

import argparse

from sage_ops.backups.resources import BackupConfig
from sage_ops.doctor import report


def doctor(args: argparse.Namespace) -> int:
    from sage_ops.checks import on_ecs

    text, code = report(*BackupConfig.read_env(), strict=args.require_all or on_ecs())
    print(text)
    return code
