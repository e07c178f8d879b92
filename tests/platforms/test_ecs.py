"""EcsDeployer: the call sequence against moto, rollout outcomes with botocore's Stubber.

moto registers task definitions and records update_service, but never completes a rollout, drops
the circuit breaker and keeps its single deployment on the old revision (its ECS backend does
not simulate rollouts). So the
moto tests check what is sent; every rollout outcome (COMPLETED, FAILED, vanished, taken over,
never settling, stable-on-the-old-revision) is played to the deployer by a Stubber. Time is a fake
clock: no test sleeps for real.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from sage_ops.errors import ConfigError
from sage_ops.platforms.deployer import DeployError, DeployRolledBack, DeployTimeout
from sage_ops.platforms.ecs.deployer import EcsDeployer
from sage_ops.platforms.ecs.revision import pick_container
from sage_ops.platforms.ecs.target import parse_target
from sage_ops.platforms.targets import open_deployer
from tests.backups.s3 import REGION, apply_env, aws_env, moto_server

ACCOUNT = "123456789012"
REPO = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/api"
OLD_IMAGE = f"{REPO}@sha256:{'a' * 64}"
NEW_IMAGE = f"{REPO}@sha256:{'b' * 64}"
CLUSTER, SERVICE = "prod", "api"
TD_PREFIX = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/api"
OLD_TD, NEW_TD, OTHER_TD = f"{TD_PREFIX}:7", f"{TD_PREFIX}:8", f"{TD_PREFIX}:9"
OLD_DEP, NEW_DEP, ROLLBACK_DEP, OTHER_DEP = (
    "ecs-svc/111",
    "ecs-svc/222",
    "ecs-svc/333",
    "ecs-svc/444",
)
BREAKER_REASON = (
    "ECS deployment circuit breaker: task failed to start. Rolling back to deployment ecs-svc/111."
)


class FakeTime:
    """clock/sleep pair: sleeping advances the clock, so timeouts are exact and instant."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


# --- moto: the call sequence --------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    with moto_server() as server:
        yield server.endpoint


@pytest.fixture
def aws(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The environment pointed at moto; returns an independent ECS client for assertions."""
    apply_env(aws_env(moto_endpoint), monkeypatch.setenv, lambda k: monkeypatch.delenv(k, False))
    return boto3.session.Session().client(
        "ecs",
        endpoint_url=moto_endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _containers(service: str) -> list[dict[str, Any]]:
    return [
        {
            "name": service,
            "image": OLD_IMAGE,
            "memory": 256,
            "essential": True,
            "portMappings": [{"containerPort": 8080}],
            "environment": [{"name": "NODE_ENV", "value": "production"}],
            "command": ["node", "dist/main.js"],
        },
        {"name": "log-router", "image": "fluent-bit:2.2", "memory": 64, "essential": False},
    ]


def make_service(ecs: Any, containers: list[dict[str, Any]] | None = None) -> tuple[str, str]:
    """A fresh cluster with one Fargate-style service on revision 1; returns (cluster, service)."""
    cluster, service = f"c-{uuid.uuid4().hex[:8]}", f"svc-{uuid.uuid4().hex[:8]}"
    ecs.create_cluster(clusterName=cluster)
    arn = ecs.register_task_definition(
        family=service,
        containerDefinitions=containers if containers is not None else _containers(service),
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
        executionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/exec",
        taskRoleArn=f"arn:aws:iam::{ACCOUNT}:role/task",
        tags=[{"key": "team", "value": "backend"}],
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.create_service(cluster=cluster, serviceName=service, taskDefinition=arn, desiredCount=2)
    return cluster, service


def _service_td(ecs: Any, cluster: str, service: str) -> str:
    return ecs.describe_services(cluster=cluster, services=[service])["services"][0][
        "taskDefinition"
    ]


def test_deploy_registers_copy_with_only_the_image_changed_and_updates_the_service(aws: Any):
    cluster, service = make_service(aws)
    old = aws.describe_task_definition(taskDefinition=f"{service}:1", include=["TAGS"])
    messages: list[str] = []

    deployer = EcsDeployer(f"ecs://{cluster}/{service}", poll_s=0.01)
    # moto's update_service answer keeps its one PRIMARY deployment on the old revision, so the
    # rollout cannot be followed there; the calls made up to that point are what is checked.
    with pytest.raises(DeployError, match="names no PRIMARY deployment"):
        deployer.deploy(NEW_IMAGE, timeout_s=5, log=messages.append)

    arns = aws.list_task_definitions(familyPrefix=service)["taskDefinitionArns"]
    assert [a.rsplit(":", 1)[1] for a in arns] == ["1", "2"]
    new = aws.describe_task_definition(taskDefinition=arns[1], include=["TAGS"])
    assert _service_td(aws, cluster, service) == arns[1]
    old_td, new_td = old["taskDefinition"], new["taskDefinition"]
    expected = [
        dict(c, image=NEW_IMAGE) if c["name"] == service else c
        for c in old_td["containerDefinitions"]
    ]
    assert new_td["containerDefinitions"] == expected
    for field in ("cpu", "memory", "networkMode", "executionRoleArn", "taskRoleArn", "family"):
        assert new_td[field] == old_td[field]
    assert new_td["requiresCompatibilities"] == ["FARGATE"]
    assert new["tags"] == old["tags"] == [{"key": "team", "value": "backend"}]
    assert any(arns[1] in m and NEW_IMAGE in m for m in messages)


def test_container_chosen_by_url_query(aws: Any):
    cluster, service = make_service(aws)
    deployer = EcsDeployer(f"ecs://{cluster}/{service}?container=log-router", poll_s=0.01)
    assert deployer.current_image() == "fluent-bit:2.2"
    with pytest.raises(DeployError, match="names no PRIMARY deployment"):
        deployer.deploy(NEW_IMAGE, timeout_s=5, log=lambda _: None)
    new = aws.describe_task_definition(taskDefinition=f"{service}:2")["taskDefinition"]
    assert {c["name"]: c["image"] for c in new["containerDefinitions"]} == {
        service: OLD_IMAGE,
        "log-router": NEW_IMAGE,
    }


def test_ambiguous_container_refused_before_anything_is_registered(aws: Any):
    containers = _containers("web")  # neither container is named like the service
    cluster, service = make_service(aws, containers)
    deployer = EcsDeployer(f"ecs://{cluster}/{service}", poll_s=0.01)
    with pytest.raises(DeployError, match=r"\['web', 'log-router'\].*\?container=NAME"):
        deployer.deploy(NEW_IMAGE, timeout_s=5, log=lambda _: None)
    assert len(aws.list_task_definitions(familyPrefix=service)["taskDefinitionArns"]) == 1
    assert _service_td(aws, cluster, service).endswith(f"{service}:1")


def test_current_image_and_missing_targets(aws: Any):
    cluster, service = make_service(aws)
    assert EcsDeployer(f"ecs://{cluster}/{service}").current_image() == OLD_IMAGE
    assert EcsDeployer(f"ecs://{cluster}/no-such-service").current_image() is None
    assert EcsDeployer("ecs://no-such-cluster/api").current_image() is None
    with pytest.raises(DeployError, match="no ACTIVE service 'no-such-service'"):
        EcsDeployer(f"ecs://{cluster}/no-such-service").deploy(NEW_IMAGE, 5, lambda _: None)


def test_health_source_is_the_doctors_probe(aws: Any):
    cluster, service = make_service(aws)
    deployer = EcsDeployer(f"ecs://{cluster}/{service}?health=https://api.example.com/health")
    assert deployer.health_source() == (
        "the rollout alone (no load balancer), GET https://api.example.com/health"
    )


def test_open_deployer_picks_ecs(aws: Any):
    deployer = open_deployer("ecs://prod/api?container=api")
    assert isinstance(deployer, EcsDeployer)
    assert (deployer.target.cluster, deployer.target.service) == ("prod", "api")


# --- target URL and container choice ------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "ecs://prod",
        "ecs:///api",
        "ecs://prod/api/extra",
        "ecs://prod/api?contaner=api",
        "ecs://prod/api?container=a&container=b",
        "ecs://prod/api?health=ftp://host/health",
        "ecs://prod/api?health=/health",
    ],
)
def test_malformed_target_urls_are_refused(url: str):
    with pytest.raises(ConfigError):
        parse_target(url)


def test_target_options_parsed():
    target = parse_target("ecs://prod/api?container=web&health=https://api.example.com/health")
    assert target.container == "web"
    assert target.health_url == "https://api.example.com/health"


def test_container_choice():
    one = [{"name": "only"}]
    two = [{"name": "api"}, {"name": "sidecar"}]
    assert pick_container(one, None, "api") == "only"
    assert pick_container(two, None, "api") == "api"
    assert pick_container(two, "sidecar", "api") == "sidecar"
    with pytest.raises(DeployError, match="no container 'nope'"):
        pick_container(two, "nope", "api")


# --- Stubber: rollout outcomes moto cannot produce ----------------------------------------------

TASK_DEF: dict[str, Any] = {
    "taskDefinitionArn": OLD_TD,
    "family": "api",
    "revision": 7,
    "status": "ACTIVE",
    "containerDefinitions": [
        {"name": "api", "image": OLD_IMAGE, "memory": 256, "essential": True},
        {"name": "log-router", "image": "fluent-bit:2.2", "memory": 64, "essential": False},
    ],
    "networkMode": "awsvpc",
    "cpu": "256",
    "memory": "512",
    "requiresCompatibilities": ["FARGATE"],
    "compatibilities": ["EC2", "FARGATE"],
    "requiresAttributes": [{"name": "com.amazonaws.ecs.capability.docker-remote-api.1.18"}],
    "registeredBy": f"arn:aws:iam::{ACCOUNT}:user/ci",
}


def deployment(dep_id: str, td: str, status: str = "PRIMARY", state: str = "IN_PROGRESS", **kw):
    return {
        "id": dep_id,
        "status": status,
        "taskDefinition": td,
        "desiredCount": kw.get("desired", 2),
        "runningCount": kw.get("running", 0),
        "pendingCount": kw.get("pending", 0),
        "failedTasks": kw.get("failed", 0),
        "rolloutState": state,
        "rolloutStateReason": kw.get("reason", f"ECS deployment {dep_id} {state.lower()}."),
    }


def service_answer(*deployments: dict, td: str = OLD_TD, rollback: bool = True, **extra) -> dict:
    primary = next(d for d in deployments if d["status"] == "PRIMARY") if deployments else {}
    service = {
        "serviceName": SERVICE,
        "status": "ACTIVE",
        "taskDefinition": primary.get("taskDefinition", td),
        "desiredCount": 2,
        "runningCount": primary.get("runningCount", 2),
        "deployments": list(deployments),
        "deploymentController": {"type": "ECS"},
        "deploymentConfiguration": {
            "deploymentCircuitBreaker": {"enable": True, "rollback": rollback},
            "maximumPercent": 200,
            "minimumHealthyPercent": 100,
        },
        **extra,
    }
    return {"services": [service], "failures": []}


STEADY_OLD = deployment(OLD_DEP, OLD_TD, state="COMPLETED", running=2)
STARTED = deployment(NEW_DEP, NEW_TD)
OLD_DRAINING = deployment(OLD_DEP, OLD_TD, status="ACTIVE", state="COMPLETED", running=2)


def in_progress(running: int, failed: int = 0) -> dict:
    return service_answer(deployment(NEW_DEP, NEW_TD, running=running, failed=failed), OLD_DRAINING)


@pytest.fixture(scope="module")
def stubbed_client() -> Any:
    """One client for the module (building one costs ~0.5 s); each test gets its own Stubber."""
    return boto3.session.Session().client(
        "ecs", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )


@pytest.fixture
def ecs_stub(stubbed_client: Any) -> Iterator[tuple[Any, Stubber]]:
    client = stubbed_client
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


def stub_start(stub: Stubber, rollback: bool = True, **service: Any) -> None:
    """describe -> describe_task_definition -> register (image swapped) -> update_service."""
    stub.add_response("describe_services", service_answer(STEADY_OLD, rollback=rollback, **service))
    stub.add_response(
        "describe_task_definition",
        {"taskDefinition": TASK_DEF, "tags": [{"key": "team", "value": "backend"}]},
        {"taskDefinition": OLD_TD, "include": ["TAGS"]},
    )
    registered = {
        "family": "api",
        "containerDefinitions": [
            dict(TASK_DEF["containerDefinitions"][0], image=NEW_IMAGE),
            TASK_DEF["containerDefinitions"][1],
        ],
        "networkMode": "awsvpc",
        "cpu": "256",
        "memory": "512",
        "requiresCompatibilities": ["FARGATE"],
        "tags": [{"key": "team", "value": "backend"}],
    }
    stub.add_response(
        "register_task_definition",
        {
            "taskDefinition": dict(TASK_DEF, taskDefinitionArn=NEW_TD, revision=8),
            "tags": registered["tags"],
        },
        registered,
    )
    update = service_answer(STARTED, OLD_DRAINING, rollback=rollback)["services"][0]
    stub.add_response(
        "update_service",
        {"service": update},
        {"cluster": CLUSTER, "service": SERVICE, "taskDefinition": NEW_TD},
    )


def deployer_for(client: Any, fake: FakeTime, url: str = f"ecs://{CLUSTER}/{SERVICE}"):
    return EcsDeployer(url, client=client, poll_s=5.0, sleep=fake.sleep, clock=fake.clock)


def run_deploy(client: Any, polls: list[dict], timeout_s: float = 600, rollback: bool = True):
    """Stub a deploy whose describe_services polls answer `polls`; returns (result|exc, log)."""
    client, stub = client
    stub_start(stub, rollback)
    for answer in polls:
        stub.add_response("describe_services", answer, {"cluster": CLUSTER, "services": [SERVICE]})
    fake, messages = FakeTime(), []
    deployer = deployer_for(client, fake)
    try:
        return deployer.deploy(NEW_IMAGE, timeout_s, messages.append), messages, fake
    except DeployError as exc:
        return exc, messages, fake


def test_completed_after_in_progress_polls_is_success(ecs_stub):
    completed = deployment(NEW_DEP, NEW_TD, state="COMPLETED", running=2)
    polls = [in_progress(0), in_progress(1), in_progress(2), service_answer(completed)]
    result, messages, fake = run_deploy(ecs_stub, polls)

    assert not isinstance(result, Exception), result
    assert (result.image, result.revision, result.previous_image) == (NEW_IMAGE, NEW_TD, OLD_IMAGE)
    assert result.target == f"ecs://{CLUSTER}/{SERVICE}"
    assert result.seconds == 15.0 and fake.sleeps == [5.0, 5.0, 5.0]
    progress = [m for m in messages if "running" in m]
    assert [p.split("running ")[1].split(",")[0] for p in progress] == ["0/2", "1/2", "2/2", "2/2"]
    assert "failed tasks 0" in progress[0] and NEW_DEP in progress[0]


def test_circuit_breaker_failure_is_rolled_back_never_success(ecs_stub):
    failed = deployment(
        NEW_DEP, NEW_TD, status="ACTIVE", state="FAILED", failed=3, reason=BREAKER_REASON
    )
    rollback = deployment(ROLLBACK_DEP, OLD_TD, reason="ECS deployment ecs-svc/333 in progress.")
    polls = [in_progress(0, failed=1), service_answer(rollback, failed)]
    result, _, _ = run_deploy(ecs_stub, polls)

    assert isinstance(result, DeployRolledBack)
    assert "circuit breaker: task failed to start" in str(result)
    assert NEW_DEP in str(result) and NEW_TD in str(result)


def test_failed_while_still_primary_is_rolled_back_when_rollback_is_configured(ecs_stub):
    failed = deployment(NEW_DEP, NEW_TD, state="FAILED", failed=3, reason=BREAKER_REASON)
    result, _, _ = run_deploy(ecs_stub, [service_answer(failed, OLD_DRAINING)])
    assert isinstance(result, DeployRolledBack)


def test_failed_without_automatic_rollback_is_a_plain_failure(ecs_stub):
    failed = deployment(NEW_DEP, NEW_TD, state="FAILED", failed=3, reason="tasks failed to start")
    polls = [service_answer(failed, OLD_DRAINING, rollback=False)]
    result, _, _ = run_deploy(ecs_stub, polls, rollback=False)
    assert isinstance(result, DeployError) and not isinstance(result, DeployRolledBack)
    assert "tasks failed to start" in str(result) and "no automatic rollback" in str(result)


def test_deployment_disappearing_is_rolled_back(ecs_stub):
    rollback = deployment(ROLLBACK_DEP, OLD_TD, reason=BREAKER_REASON)
    result, _, _ = run_deploy(ecs_stub, [in_progress(1), service_answer(rollback)])
    assert isinstance(result, DeployRolledBack)
    assert "is gone" in str(result) and OLD_TD in str(result) and "Rolling back" in str(result)


def test_primary_switching_back_to_the_old_revision_is_rolled_back(ecs_stub):
    ours_demoted = deployment(NEW_DEP, NEW_TD, status="ACTIVE", running=1)
    back = deployment(ROLLBACK_DEP, OLD_TD, reason="ECS deployment ecs-svc/333 in progress.")
    result, _, _ = run_deploy(ecs_stub, [in_progress(1), service_answer(back, ours_demoted)])
    assert isinstance(result, DeployRolledBack)
    assert "no longer primary" in str(result) and OLD_TD in str(result)


def test_another_revision_taking_over_is_a_failure_not_a_rollback(ecs_stub):
    ours_demoted = deployment(NEW_DEP, NEW_TD, status="ACTIVE", running=1)
    other = deployment(OTHER_DEP, OTHER_TD, reason="ECS deployment ecs-svc/444 in progress.")
    result, _, _ = run_deploy(ecs_stub, [in_progress(1), service_answer(other, ours_demoted)])
    assert isinstance(result, DeployError) and not isinstance(result, DeployRolledBack)
    assert "superseded" in str(result) and OTHER_TD in str(result)


@pytest.mark.parametrize("serving_id", [ROLLBACK_DEP, OLD_DEP])
def test_stable_on_the_old_revision_after_rollback_is_failure(ecs_stub, serving_id: str):
    """The `services_stable` trap: one deployment, running == desired, but the OLD revision."""
    stable_old = service_answer(deployment(serving_id, OLD_TD, state="COMPLETED", running=2))
    client, stub = ecs_stub

    # The waiter the deployer must not rely on accepts this very answer...
    stub.add_response("describe_services", stable_old)
    client.get_waiter("services_stable").wait(
        cluster=CLUSTER, services=[SERVICE], WaiterConfig={"Delay": 0, "MaxAttempts": 1}
    )
    # ...while following the deployment id reports the rollback.
    result, _, _ = run_deploy(ecs_stub, [in_progress(0), stable_old])
    assert isinstance(result, DeployRolledBack)
    assert OLD_TD in str(result)


def test_update_not_yet_visible_is_waited_for(ecs_stub):
    """describe_services may lag update_service: the pre-update deployment alone is not a rollback."""
    completed = deployment(NEW_DEP, NEW_TD, state="COMPLETED", running=2)
    polls = [service_answer(STEADY_OLD), in_progress(1), service_answer(completed)]
    result, messages, _ = run_deploy(ecs_stub, polls)
    assert not isinstance(result, Exception), result
    assert any("not visible" in m for m in messages)


def test_never_settling_times_out(ecs_stub):
    polls = [in_progress(1, failed=n) for n in range(7)]  # t = 0, 5, ... 30
    result, messages, fake = run_deploy(ecs_stub, polls, timeout_s=30)
    assert isinstance(result, DeployTimeout)
    assert "within 30s" in str(result) and "IN_PROGRESS" in str(result) and NEW_DEP in str(result)
    assert fake.now == 30 and len(fake.sleeps) == 6
    assert len([m for m in messages if "running 1/2" in m]) == 7  # progress logged on each change


def test_mutable_tag_is_refused_before_any_call(ecs_stub):
    client, _ = ecs_stub
    deployer = deployer_for(client, FakeTime())
    with pytest.raises(DeployError, match="immutable repo@sha256"):
        deployer.deploy(f"{REPO}:latest", 60, lambda _: None)


def test_unregistrable_fields_are_refused_not_dropped(ecs_stub, monkeypatch):
    """A field this botocore cannot send must stop the deploy, not vanish from the revision."""
    client, stub = ecs_stub
    stub.add_response("describe_services", service_answer(STEADY_OLD))
    deployer = deployer_for(client, FakeTime())
    future = dict(TASK_DEF, someFutureSetting={"on": True})  # Stubber cannot answer unknown fields
    monkeypatch.setattr(deployer, "_task_definition", lambda arn: (future, []))
    with pytest.raises(DeployError, match="someFutureSetting"):
        deployer.deploy(NEW_IMAGE, 60, lambda _: None)


def test_one_off_run_args_copied_from_the_service(ecs_stub):
    client, stub = ecs_stub
    network = {"awsvpcConfiguration": {"subnets": ["subnet-1"], "securityGroups": ["sg-1"]}}
    answer = service_answer(
        STEADY_OLD, networkConfiguration=network, launchType="FARGATE", platformVersion="LATEST"
    )
    stub.add_response("describe_services", answer)
    args = deployer_for(client, FakeTime()).one_off_run_args()
    assert args == {
        "networkConfiguration": network,
        "launchType": "FARGATE",
        "platformVersion": "LATEST",
    }


# --- smoke check --------------------------------------------------------------------------------


class _Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/health" else 503)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def health_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _smoke_deployer(ecs_stub, health: str | None) -> EcsDeployer:
    url = f"ecs://{CLUSTER}/{SERVICE}" + (f"?health={health}" if health else "")
    return EcsDeployer(url, client=ecs_stub[0], poll_s=0.01)


COMPLETED_NEW = deployment(NEW_DEP, NEW_TD, state="COMPLETED", running=2)


def _rolled_out(stub: Stubber) -> None:
    """A service without load balancer whose new deployment COMPLETED (judged by the rollout)."""
    stub.add_response("describe_services", service_answer(COMPLETED_NEW))


def test_smoke_check_passes_on_200(ecs_stub, health_server: str):
    _rolled_out(ecs_stub[1])
    _smoke_deployer(ecs_stub, f"{health_server}/health").smoke_check(timeout_s=2)


def test_smoke_check_fails_on_503(ecs_stub, health_server: str):
    _rolled_out(ecs_stub[1])
    with pytest.raises(DeployError, match="did not answer 200.*HTTP 503"):
        _smoke_deployer(ecs_stub, f"{health_server}/broken").smoke_check(timeout_s=0.1)


def test_smoke_check_fails_when_unreachable(ecs_stub):
    _rolled_out(ecs_stub[1])
    with pytest.raises(DeployError, match="did not answer 200"):
        _smoke_deployer(ecs_stub, "http://127.0.0.1:9/health").smoke_check(timeout_s=0.1)


def test_smoke_check_without_health_url_passes_on_the_completed_rollout(ecs_stub):
    """What Terraform wires (`ecs://cluster/service`, no URL): the staging_healthy check passes."""
    _rolled_out(ecs_stub[1])
    _smoke_deployer(ecs_stub, None).smoke_check(timeout_s=1)


def test_smoke_check_waits_for_the_rollout_to_complete(ecs_stub):
    client, stub = ecs_stub
    stub.add_response("describe_services", in_progress(1))
    _rolled_out(stub)
    fake = FakeTime()
    deployer_for(client, fake).smoke_check(timeout_s=60)
    assert fake.sleeps == [5.0]


# --- target health: the new tasks in the ALB target group ----------------------------------------
# ECS through the Stubber (moto's ECS never completes a rollout and starts no tasks for a service);
# elbv2 on moto where it can answer (registered -> healthy, unregistered -> unavailable), and the
# Stubber for a target failing its health checks, a state moto never reports.

PORT = 3000
NEW_IPS = ("10.0.1.10", "10.0.2.20")


def _task(n: int, ip: str, td: str = NEW_TD) -> dict[str, Any]:
    return {
        "taskArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/{CLUSTER}/{n:032x}",
        "taskDefinitionArn": td,
        "lastStatus": "RUNNING",
        "attachments": [
            {
                "type": "ElasticNetworkInterface",
                "details": [{"name": "privateIPv4Address", "value": ip}],
            }
        ],
    }


def _stub_behind_alb(stub: Stubber, target_group: str, ips=NEW_IPS, old_ip="10.0.3.30") -> None:
    """One poll: COMPLETED service in `target_group`, its two new tasks plus one old one."""
    balancer = {"targetGroupArn": target_group, "containerName": SERVICE, "containerPort": PORT}
    stub.add_response("describe_services", service_answer(COMPLETED_NEW, loadBalancers=[balancer]))
    tasks = [_task(i, ip) for i, ip in enumerate(ips)] + [_task(9, old_ip, OLD_TD)]
    stub.add_response(
        "list_tasks",
        {"taskArns": [t["taskArn"] for t in tasks]},
        {"cluster": CLUSTER, "serviceName": SERVICE, "desiredStatus": "RUNNING"},
    )
    stub.add_response(
        "describe_tasks",
        {"tasks": tasks, "failures": []},
        {"cluster": CLUSTER, "tasks": [t["taskArn"] for t in tasks]},
    )


@pytest.fixture
def target_group(aws: Any, moto_endpoint: str) -> tuple[Any, str]:
    """A moto ALB target group of type ip, as the Terraform alb module makes it."""
    session = boto3.session.Session()
    kwargs = dict(
        endpoint_url=moto_endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    vpc = session.client("ec2", **kwargs).create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    elbv2 = session.client("elbv2", **kwargs)
    group = elbv2.create_target_group(
        Name=f"tg-{uuid.uuid4().hex[:8]}",
        Protocol="HTTP",
        Port=PORT,
        VpcId=vpc,
        TargetType="ip",
        HealthCheckPath="/health",
    )["TargetGroups"][0]["TargetGroupArn"]
    return elbv2, group


def test_new_tasks_healthy_in_the_target_group_pass(ecs_stub, target_group):
    elbv2, group = target_group
    elbv2.register_targets(
        TargetGroupArn=group, Targets=[{"Id": ip, "Port": PORT} for ip in NEW_IPS]
    )
    _stub_behind_alb(ecs_stub[1], group)
    # elbv2 comes from the environment (moto), as in production: only the ECS client is stubbed.
    deployer_for(ecs_stub[0], FakeTime()).smoke_check(timeout_s=60)


def test_a_new_task_missing_from_the_target_group_fails_at_the_timeout(ecs_stub, target_group):
    elbv2, group = target_group
    elbv2.register_targets(TargetGroupArn=group, Targets=[{"Id": NEW_IPS[0], "Port": PORT}])
    for _ in range(3):  # t = 0, 5, 10
        _stub_behind_alb(ecs_stub[1], group)
    fake = FakeTime()
    with pytest.raises(DeployError, match="not healthy after 10s") as failure:
        deployer_for(ecs_stub[0], fake).smoke_check(timeout_s=10)
    assert f"{NEW_IPS[1]}:{PORT} is unavailable" in str(failure.value)
    assert NEW_IPS[0] not in str(failure.value)


def test_unhealthy_targets_are_waited_for_until_healthy(ecs_stub):
    group = f"arn:aws:elasticloadbalancing:{REGION}:{ACCOUNT}:targetgroup/sage-staging/0123abcd"
    elbv2 = boto3.session.Session().client(
        "elbv2", region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x"
    )
    targets = [{"Id": ip, "Port": PORT} for ip in NEW_IPS]

    def health(state: str, reason: str = "") -> dict:
        extra = {"Reason": "Target.ResponseCodeMismatch", "Description": reason} if reason else {}
        return {
            "TargetHealthDescriptions": [
                {"Target": t, "TargetHealth": {"State": state, **extra}} for t in targets
            ]
        }

    with Stubber(elbv2) as elb_stub:
        expected = {"TargetGroupArn": group, "Targets": targets}
        elb_stub.add_response(
            "describe_target_health", health("unhealthy", "Health checks failed with 503"), expected
        )
        elb_stub.add_response("describe_target_health", health("healthy"), expected)
        for _ in range(2):
            _stub_behind_alb(ecs_stub[1], group)
        fake = FakeTime()
        deployer = EcsDeployer(
            f"ecs://{CLUSTER}/{SERVICE}",
            client=ecs_stub[0],
            elbv2=elbv2,
            sleep=fake.sleep,
            clock=fake.clock,
        )
        deployer.smoke_check(timeout_s=60)
        elb_stub.assert_no_pending_responses()
    assert fake.sleeps == [5.0]


def test_deploy_behind_an_alb_ends_when_the_new_tasks_are_healthy(ecs_stub, target_group):
    """The rollout COMPLETED at the first poll, the second new task registers only later."""
    elbv2, group = target_group
    client, stub = ecs_stub
    balancer = {"targetGroupArn": group, "containerName": SERVICE, "containerPort": PORT}
    stub_start(stub, loadBalancers=[balancer])
    completed = deployment(NEW_DEP, NEW_TD, state="COMPLETED", running=2)
    stub.add_response("describe_services", service_answer(completed, loadBalancers=[balancer]))
    elbv2.register_targets(TargetGroupArn=group, Targets=[{"Id": NEW_IPS[0], "Port": PORT}])
    _stub_behind_alb(stub, group)  # one new task still unavailable in the target group
    _stub_behind_alb(stub, group)
    fake, messages = FakeTime(), []

    def second_task_registers(seconds: float) -> None:
        fake.sleep(seconds)
        elbv2.register_targets(TargetGroupArn=group, Targets=[{"Id": NEW_IPS[1], "Port": PORT}])

    deployer = EcsDeployer(
        f"ecs://{CLUSTER}/{SERVICE}", client=client, sleep=second_task_registers, clock=fake.clock
    )
    result = deployer.deploy(NEW_IMAGE, 600, messages.append)

    assert result.revision == NEW_TD and fake.sleeps == [5.0]
    assert messages[-2].endswith(f"2 new task(s) healthy in {group.split('/')[1]}")
