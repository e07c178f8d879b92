"""`sage-ops lineage`: what runs where, from which commit, on which backup."""

import argparse

from sage_ops.errors import ConfigError
from sage_ops.lineage.names import ENVIRONMENTS
from sage_ops.lineage.records import backup_text, commit_text, deployment_text, to_json


def deployed(args: argparse.Namespace) -> int:
    from sage_ops.lineage.instance import LineageError, what_is_deployed

    instance = _instance()
    found = []
    for environment in [args.environment] if args.environment else ENVIRONMENTS:
        try:
            found.append(what_is_deployed(instance, environment))
        except LineageError:
            if args.environment:
                raise
    if not found:
        raise ConfigError("nothing has been deployed yet")
    if args.json:
        print(
            to_json(found[0])
            if args.environment
            else "[" + ",".join(to_json(d) for d in found) + "]"
        )
    else:
        print("\n".join(deployment_text(d) for d in found))
    return 0


def commit(args: argparse.Namespace) -> int:
    from sage_ops.lineage.instance import commit_story

    story = commit_story(_instance(), args.sha)
    print(to_json(story) if args.json else commit_text(story))
    return 0


def backup(args: argparse.Namespace) -> int:
    from sage_ops.lineage.instance import backup_use

    use = backup_use(_instance(), args.key)
    print(to_json(use) if args.json else backup_text(use))
    return 0


def _instance():
    from sage_ops.lineage.instance import check_instance, open_instance

    instance = open_instance()
    check_instance(instance)
    return instance
