"""`sage-ops gate`: the Dagster UI behind the sage_ops gate."""

import argparse


def gate(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from sage_ops.gate.server import load_target, serve
    from sage_ops.gate.settings import GateSettings

    settings = GateSettings.from_env()
    if args.local_user:
        settings = settings.with_local_user(args.local_user, args.local_admin)
        settings = replace(settings, local_on_any_interface=args.local_any_interface)
    target = load_target(args.workspace, args.grpc_host, args.grpc_port)
    serve(settings, args.host, args.port, target, args.with_daemon)
    return 0
