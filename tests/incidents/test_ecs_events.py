"""ECS service events as deploy suspects: rollouts sage_ops did not make, read by the ECS platform
from describe_services (botocore Stubber: moto keeps no service events) and from EventBridge
JSON in a log group."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
from botocore.stub import Stubber

from sage_ops.incidents.evidence.changes import correlate, not_made_by_sage_ops, rollouts
from sage_ops.lineage.changes import DEPLOYMENT, IN_PROGRESS, ROLLED_BACK, SUCCESS, Change
from sage_ops.platforms import deployer
from sage_ops.platforms.ecs.deployer import EcsDeployer
from sage_ops.platforms.ecs.events import parse_event
from sage_ops.platforms.targets import local_service, open_deployer

T = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
SVC = "(service sage-production-backend)"
DESCRIBED = [  # newest first, as describe_services returns them
    (T + timedelta(minutes=9), f"{SVC} has reached a steady state."),
    (T + timedelta(minutes=8), f"{SVC} rolling back to deployment ecs-svc/1111111111111111111."),
    (
        T + timedelta(minutes=7),
        f"{SVC} (deployment ecs-svc/2222222222222222222) deployment failed: tasks failed to start.",
    ),
    (T + timedelta(minutes=2), f"{SVC} has started 2 tasks: (task 7b1c0e2f) (task 0a1b2c3d)."),
    (T, f"{SVC} has reached a steady state."),
    (T - timedelta(hours=1), f"{SVC} has started 1 tasks: (task 5e6f7a8b)."),
]


def stubbed_ecs(events):
    client = boto3.client(
        "ecs", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    stub = Stubber(client)
    stub.add_response(
        "describe_services",
        {
            "services": [
                {
                    "serviceName": "sage-production-backend",
                    "events": [
                        {"id": str(i), "createdAt": at, "message": m}
                        for i, (at, m) in enumerate(events)
                    ],
                }
            ]
        },
        {"cluster": "sage-production", "services": ["sage-production-backend"]},
    )
    stub.activate()
    return client


def test_a_failed_rollout_from_describe_services_is_rolled_back():
    target = EcsDeployer(
        "ecs://sage-production/sage-production-backend", client=stubbed_ecs(DESCRIBED)
    )
    events = target.service_events()
    older, latest = rollouts(events, "production")
    assert (older.started_at, older.finished_at, older.status) == (
        T - timedelta(hours=1),
        T,
        SUCCESS,
    )
    assert latest.status == ROLLED_BACK and latest.source == "ecs"
    assert (latest.started_at, latest.finished_at) == (
        T + timedelta(minutes=2),
        T + timedelta(minutes=9),
    )
    assert latest.environment == "production" and latest.name == "sage-production-backend"


def test_a_rollout_without_steady_state_is_in_progress_and_flagged():
    events = [parse_event(at, m) for at, m in DESCRIBED[3:5]]
    [running] = rollouts([e for e in events if e])
    assert running.status == IN_PROGRESS and running.finished_at is None
    first_error = T + timedelta(minutes=3, seconds=30)
    [suspect] = correlate(
        rollouts([e for e in events if e]),
        T + timedelta(minutes=5),
        timedelta(minutes=30),
        first_error,
    )
    assert suspect.flagged
    assert suspect.describe() == (
        "deployment of sage-production-backend (ECS service event) (in progress) started "
        "2026-11-25 10:02:00 UTC, 1 min 30 s before the first error"
    )


def test_eventbridge_deployment_state_change():
    failed = json.dumps(
        {
            "detail-type": "ECS Deployment State Change",
            "resources": [
                "arn:aws:ecs:us-east-1:123456789012:service/sage-production/sage-production-backend"
            ],
            "detail": {
                "eventType": "ERROR",
                "eventName": "SERVICE_DEPLOYMENT_FAILED",
                "deploymentId": "ecs-svc/2222222222222222222",
                "reason": "tasks failed to start",
            },
        }
    )
    event = parse_event(T, failed)
    assert event and (event.service, event.meaning, event.deployment) == (
        "sage-production-backend",
        deployer.FAILED,
        "ecs-svc/2222222222222222222",
    )
    assert parse_event(T, f"{SVC} registered 2 targets in (target-group x)") is None


def test_rollouts_sage_ops_made_are_not_listed_twice():
    ours = Change(
        DEPLOYMENT,
        "production_deployment",
        T + timedelta(minutes=5),
        "run-1",
        started_at=T + timedelta(minutes=1),
    )
    ecs = rollouts([e for e in (parse_event(at, m) for at, m in DESCRIBED) if e])
    assert [c.started_at for c in not_made_by_sage_ops(ecs, [ours], T + timedelta(hours=1))] == [
        T - timedelta(hours=1)
    ]


def test_a_platform_without_service_events_reports_none():
    assert open_deployer(local_service("sage-backend-production")).service_events() == []
