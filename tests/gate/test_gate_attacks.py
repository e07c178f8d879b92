"""What an ordinary signed-in user tries next, against the real dagster-webserver behind the gate:
each case of issue #19 and the variations a careful attacker would try, each refused (nothing
started or changed) and audited."""

from __future__ import annotations

import http.client
import json
import urllib.parse
from typing import Any

import pytest
from dagster import AssetSelection

from sage_ops.definitions import defs
from tests.gate.conftest import ADMIN_GROUP, GatedUI
from tests.gate.stack import LOCATION, REPOSITORY, execution_params, graphql, request

ORDINARY = "eve@sage.test"
ADMIN = "root@sage.test"
RESULT = "{ __typename ... on PythonError { message } ... on LaunchRunSuccess { run { id } } }"
LAUNCH_RUN = f"mutation($p: ExecutionParams!) {{ launchRun(executionParams: $p) {RESULT} }}"
OUTSIDE = "postgresql://sage:secret@exfil.example.com:443/postgres"


class Attempt:
    """One request as the ordinary user, and what it left behind."""

    def __init__(self, ui: GatedUI) -> None:
        self.ui = ui
        self.lines_before = len(ui.audit_lines())
        self.runs_before = len(ui.instance.get_run_records())
        self.backfills_before = len(ui.instance.get_backfills())

    def graphql(self, query: str, variables: dict[str, Any] | None = None, who: str = ORDINARY):
        groups = [ADMIN_GROUP] if who == ADMIN else None
        token = self.ui.signer.token(who, groups=groups)
        status, body = graphql(self.ui.url, query, variables, token)
        assert status == 200, body
        return body

    def lines(self) -> list[dict[str, Any]]:
        return self.ui.audit_lines()[self.lines_before :]

    def refused(self, body: dict[str, Any], *reasons: str) -> dict[str, Any]:
        """Every result is the gate's refusal; nothing ran; the audit line says why."""
        results = list((body.get("data") or {}).values())
        assert results, body
        for result in results:
            assert result["__typename"] == "PythonError", result
            assert "Refused by the sage_ops gate" in result["message"], result
        assert len(self.ui.instance.get_run_records()) == self.runs_before
        assert len(self.ui.instance.get_backfills()) == self.backfills_before
        refused = [line for line in self.lines() if line["decision"] == "refused"]
        assert refused and all(line["who"] == ORDINARY for line in refused)
        why = " ".join(line["reason"] or "" for line in refused)
        for reason in reasons:
            assert reason in why, why
        return refused[-1]


def asset_launch(*assets: str, partition: str | None = None, **extra: Any) -> dict[str, Any]:
    tags = {"dagster/partition": partition} if partition else {}
    params = execution_params("__ASSET_JOB", tags, **extra)
    params["selector"]["assetSelection"] = [{"path": [a]} for a in assets]
    return params


MIGRATIONS = ("migration_plan", "pre_migration_backup", "applied_migrations")
WRITES_MIGRATIONS = "applied_migrations: writes-database"


# --- issue #19, case by case ---------------------------------------------------------------------


def test_migrations_by_asset_selection_are_refused(gated_ui: GatedUI) -> None:
    attempt = Attempt(gated_ui)
    body = attempt.graphql(LAUNCH_RUN, {"p": asset_launch(*MIGRATIONS)})
    line = attempt.refused(body, WRITES_MIGRATIONS)
    assert line["destructive"] is True and line["jobs"] == ["__ASSET_JOB"]
    assert set(MIGRATIONS) <= set(line["assets"])


def test_resource_config_at_launch_is_refused_and_audited_by_key_only(gated_ui: GatedUI) -> None:
    partition = "0123456789abcdef0123456789abcdef01234567"
    attempt = Attempt(gated_ui)
    add = """mutation($p: String!) { addDynamicPartition(repositorySelector:
      {repositoryName: "__repository__", repositoryLocationName: "sage_ops"},
      partitionsDefName: "commits", partitionKey: $p) { __typename ... on PythonError { message } } }"""
    attempt.refused(attempt.graphql(add, {"p": partition}), "partitions name what may be deployed")
    assert partition not in gated_ui.instance.get_dynamic_partitions("commits")
    added = attempt.graphql(add, {"p": partition}, who=ADMIN)
    assert added["data"]["addDynamicPartition"]["__typename"] == "AddDynamicPartitionSuccess"

    for config, key in (
        (
            {"deploy": {"config": {"staging_database_url_env": "DATABASE_URL"}}},
            "resources.deploy.config.staging_database_url_env",
        ),
        (
            {"migrations": {"config": {"allow": "20240101_drop:ban-drop-table"}}},
            "resources.migrations.config.allow",
        ),
    ):
        attempt = Attempt(gated_ui)
        params = asset_launch("staging_schema", partition=partition)
        params["runConfigData"] = {"resources": config}
        line = attempt.refused(attempt.graphql(LAUNCH_RUN, {"p": params}), key)
        assert line["config_keys"] == [key] and line["partitions"] == [partition]
        assert "DATABASE_URL" not in json.dumps(line) and "ban-drop" not in json.dumps(line)

    # The same selection without overrides is the ordinary staging deploy: allowed.
    attempt = Attempt(gated_ui)
    plain = attempt.graphql(LAUNCH_RUN, {"p": asset_launch("staging_schema", partition=partition)})
    assert plain["data"]["launchRun"]["__typename"] == "LaunchRunSuccess", plain
    assert attempt.lines()[-1]["decision"] == "allowed"


def test_a_scratch_server_outside_is_refused(gated_ui: GatedUI) -> None:
    attempt = Attempt(gated_ui)
    config = {"resources": {"backups": {"config": {"scratch_database_url": OUTSIDE}}}}
    params = execution_params("nightly_backup", runConfigData=config)
    line = attempt.refused(
        attempt.graphql(LAUNCH_RUN, {"p": params}),
        "resources.backups.config.scratch_database_url",
    )
    assert line["config_keys"] == ["resources.backups.config.scratch_database_url"]
    assert "exfil" not in json.dumps(line) and "secret" not in json.dumps(line)


@pytest.mark.parametrize(
    ("mutation", "variables"),
    [
        (
            "mutation($s: SensorSelector!) { startSensor(sensorSelector: $s) "
            "{ __typename ... on PythonError { message } } }",
            {"s": {"sensorName": "git_push_sensor"}},
        ),
        (
            "mutation($s: SensorSelector!) { resetSensor(sensorSelector: $s) "
            "{ __typename ... on PythonError { message } } }",
            {"s": {"sensorName": "git_push_sensor"}},
        ),
        (
            "mutation($s: ScheduleSelector!) { stopRunningSchedule(scheduleSelector: $s) "
            "{ __typename ... on PythonError { message } } }",
            {"s": {"scheduleName": "nightly_backup_schedule"}},
        ),
    ],
)
def test_automations_are_for_admins(gated_ui: GatedUI, mutation: str, variables: dict) -> None:
    selector = {"repositoryName": REPOSITORY, "repositoryLocationName": LOCATION}
    variables = {"s": {**variables["s"], **selector}}
    attempt = Attempt(gated_ui)
    line = attempt.refused(attempt.graphql(mutation, variables), "automations decide")
    assert line["names"] in (["git_push_sensor"], ["nightly_backup_schedule"])


def test_concurrency_limits_are_for_admins(gated_ui: GatedUI) -> None:
    attempt = Attempt(gated_ui)
    query = 'mutation { setConcurrencyLimit(concurrencyKey: "sage_ops_database", limit: 50) }'
    status, body = graphql(gated_ui.url, query, token=gated_ui.signer.token(ORDINARY))
    # A Boolean result cannot carry PythonError: the refusal is a GraphQL error.
    assert status == 200 and body["data"] is None
    assert "may not setConcurrencyLimit" in body["errors"][0]["message"]
    assert attempt.lines()[-1]["decision"] == "refused"
    assert (
        gated_ui.instance.event_log_storage.get_concurrency_info("sage_ops_database").slot_count
        != 50
    )


def test_the_audit_client_is_the_address_the_load_balancer_appended(gated_ui: GatedUI) -> None:
    token = gated_ui.signer.token(ORDINARY)
    body = {"query": LAUNCH_RUN, "variables": {"p": asset_launch(*MIGRATIONS)}}
    for forwarded, client in (("6.6.6.6, 10.8.0.12", "10.8.0.12"), (None, "127.0.0.1")):
        headers = {
            "x-amzn-oidc-data": token,
            **({"X-Forwarded-For": forwarded} if forwarded else {}),
        }
        status, _ = request(f"{gated_ui.url}/graphql", body, headers)
        assert status == 200
        assert gated_ui.audit_lines()[-1]["client"] == client


@pytest.mark.parametrize(
    "header", ["x-amzn-oidc-data", "x-amzn-oidc-identity", "x-amzn-oidc-accesstoken"]
)
def test_a_second_identity_header_is_refused(gated_ui: GatedUI, header: str) -> None:
    attempt = Attempt(gated_ui)
    token = gated_ui.signer.token(ORDINARY)
    second = (
        gated_ui.signer.token(ADMIN, groups=[ADMIN_GROUP]) if header == "x-amzn-oidc-data" else "x"
    )
    body = json.dumps(
        {"query": LAUNCH_RUN, "variables": {"p": execution_params("restore_database")}}
    )
    connection = http.client.HTTPConnection(gated_ui.url.removeprefix("http://"), timeout=30)
    connection.putrequest("POST", "/graphql")
    connection.putheader("x-amzn-oidc-data", token)
    if header != "x-amzn-oidc-data":
        connection.putheader(header, "first")
    connection.putheader(header, second)
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", str(len(body)))
    connection.endheaders(body.encode())
    response = connection.getresponse()
    assert response.status == 400
    assert f"carries {header} more than once" in response.read().decode()
    line = attempt.lines()[-1]
    assert (line["decision"], line["who"]) == ("refused", None)
    assert len(gated_ui.instance.get_run_records()) == attempt.runs_before


def test_an_unknown_mutation_is_refused_by_name(gated_ui: GatedUI) -> None:
    attempt = Attempt(gated_ui)
    body = attempt.graphql(
        "mutation { rewriteHistory(all: true) { __typename ... on PythonError { message } } }",
        who=ADMIN,
    )
    result = body["data"]["rewriteHistory"]
    assert result["__typename"] == "PythonError"
    assert "rewriteHistory is a mutation the gate does not know" in result["message"]
    assert attempt.lines()[-1]["action"] == "rewriteHistory"


# --- the next things a careful attacker tries ----------------------------------------------------


def test_selection_by_asset_group(gated_ui: GatedUI) -> None:
    group = AssetSelection.groups("migrations").resolve(defs.resolve_asset_graph())
    attempt = Attempt(gated_ui)
    params = asset_launch(*(key.to_user_string() for key in group))
    attempt.refused(attempt.graphql(LAUNCH_RUN, {"p": params}), WRITES_MIGRATIONS)


@pytest.mark.parametrize(
    ("job", "selection"),
    [
        ("__ASSET_JOB", ["*applied_migrations"]),
        ("__ASSET_JOB", ["+applied_migrations"]),
        ("migrate_database", ["migration_plan*"]),
        ("deploy_backend", ["registry_image+"]),
    ],
)
def test_selection_syntax_up_and_downstream(
    gated_ui: GatedUI, job: str, selection: list[str]
) -> None:
    attempt = Attempt(gated_ui)
    params = execution_params(job)
    params["selector"]["solidSelection"] = selection
    attempt.refused(attempt.graphql(LAUNCH_RUN, {"p": params}), "writes-database")


def test_a_check_alone_runs_as_its_asset(gated_ui: GatedUI) -> None:
    attempt = Attempt(gated_ui)
    params = execution_params("__ASSET_JOB")
    params["selector"]["assetSelection"] = []
    params["selector"]["assetCheckSelection"] = [
        {"assetKey": {"path": ["production_deployment"]}, "name": "production_healthy"}
    ]
    attempt.refused(attempt.graphql(LAUNCH_RUN, {"p": params}), "it targets production")


def test_reexecuting_an_allowed_run_with_new_config(gated_ui: GatedUI) -> None:
    first = Attempt(gated_ui).graphql(LAUNCH_RUN, {"p": execution_params("nightly_backup")})
    parent = first["data"]["launchRun"]["run"]["id"]
    config = {"resources": {"backups": {"config": {"scratch_database_url": OUTSIDE}}}}
    for field in ("launchRunReexecution", "launchPipelineReexecution"):
        attempt = Attempt(gated_ui)
        params = execution_params("nightly_backup", runConfigData=config)
        params["executionMetadata"] |= {"parentRunId": parent, "rootRunId": parent}
        query = f"mutation($p: ExecutionParams!) {{ {field}(executionParams: $p) {RESULT} }}"
        line = attempt.refused(attempt.graphql(query, {"p": params}), "scratch_database_url")
        assert line["action"] == field


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        (
            {
                "assetSelection": [{"path": ["staging_schema"]}, {"path": ["production_schema"]}],
                "partitionNames": ["abc"],
            },
            "it targets production (production_schema: writes-database",
        ),
        (
            {
                "selector": {
                    "partitionSetName": "deploy_backend_partition_set",
                    "repositorySelector": {
                        "repositoryName": REPOSITORY,
                        "repositoryLocationName": LOCATION,
                    },
                },
                "partitionNames": ["abc"],
            },
            "it targets production (production_deployment: deploys",
        ),
        (
            {
                "assetSelection": [{"path": ["incident_report"]}],
                "partitionNames": ["x"],
                "runConfigData": {
                    "resources": {"incidents": {"config": {"database_url_env": "X"}}}
                },
            },
            "it sets resources.incidents.config.database_url_env at launch",
        ),
    ],
)
def test_a_backfill(gated_ui: GatedUI, params: dict[str, Any], reason: str) -> None:
    attempt = Attempt(gated_ui)
    query = f"mutation($b: LaunchBackfillParams!) {{ launchPartitionBackfill(backfillParams: $b) {RESULT} }}"
    line = attempt.refused(attempt.graphql(query, {"b": params}), reason)
    assert line["action"] == "launchPartitionBackfill"


def test_launch_multiple_runs_is_refused_whole(gated_ui: GatedUI) -> None:
    attempt = Attempt(gated_ui)
    query = "mutation($l: [ExecutionParams!]!) { launchMultipleRuns(executionParamsList: $l) { __typename ... on PythonError { message } } }"
    runs = [execution_params("nightly_backup"), asset_launch(*MIGRATIONS)]
    line = attempt.refused(attempt.graphql(query, {"l": runs}), WRITES_MIGRATIONS)
    assert {"db_backup", "applied_migrations"} <= set(line["assets"])


def test_a_launch_in_a_get_query_string(gated_ui: GatedUI) -> None:
    attempt = Attempt(gated_ui)
    variables = json.dumps({"p": asset_launch(*MIGRATIONS)})
    query = urllib.parse.urlencode({"query": LAUNCH_RUN, "variables": variables})
    token = gated_ui.signer.token(ORDINARY)
    status, text = request(f"{gated_ui.url}/graphql?{query}", headers={"x-amzn-oidc-data": token})
    assert status == 200
    attempt.refused(json.loads(text), WRITES_MIGRATIONS)


def test_a_batched_request_is_refused_and_audited(gated_ui: GatedUI) -> None:
    attempt = Attempt(gated_ui)
    token = gated_ui.signer.token(ORDINARY)
    batch = [{"query": LAUNCH_RUN, "variables": {"p": asset_launch(*MIGRATIONS)}}]
    data = json.dumps(batch).encode()
    status, text = _post(gated_ui, data, token)
    assert status == 400 and "no batches" in text
    line = attempt.lines()[-1]
    assert (line["action"], line["decision"]) == ("unreadable GraphQL request", "refused")
    assert len(gated_ui.instance.get_run_records()) == attempt.runs_before


def test_aliases_fragments_and_another_operation_name(gated_ui: GatedUI) -> None:
    attempt = Attempt(gated_ui)
    query = """
    query Harmless { version }
    mutation Hidden($p: ExecutionParams!) { nux: setNuxSeen ...Launch }
    fragment Launch on Mutation { innocent: launchRun(executionParams: $p) { ...Result } }
    fragment Result on LaunchRunResult { __typename ... on PythonError { message } }
    """
    token = gated_ui.signer.token(ORDINARY)
    body = {
        "query": query,
        "variables": {"p": asset_launch(*MIGRATIONS)},
        "operationName": "Harmless",
    }
    status, text = request(f"{gated_ui.url}/graphql", body, {"x-amzn-oidc-data": token})
    assert status == 200
    result = json.loads(text)
    assert result["data"] is None and "applied_migrations" in result["errors"][0]["message"]
    line = attempt.lines()[-1]
    assert (line["action"], line["decision"]) == ("launchRun", "refused")
    assert len(gated_ui.instance.get_run_records()) == attempt.runs_before


def _post(ui: GatedUI, data: bytes, token: str) -> tuple[int, str]:
    connection = http.client.HTTPConnection(ui.url.removeprefix("http://"), timeout=30)
    connection.request(
        "POST", "/graphql", data, {"x-amzn-oidc-data": token, "Content-Type": "application/json"}
    )
    response = connection.getresponse()
    return response.status, response.read().decode()


@pytest.mark.parametrize(
    ("tag", "value"),
    [
        (
            "ecs/container_overrides",
            json.dumps(
                [{"name": "run", "environment": [{"name": "DATABASE_URL", "value": OUTSIDE}]}]
            ),
        ),
        ("ecs/task_overrides", json.dumps({"taskRoleArn": "arn:aws:iam::1:role/admin"})),
        ("dagster/image", "attacker/sage:latest"),
        ("sage_ops/database-writer", "not-primary"),
    ],
)
def test_run_tags_that_steer_the_launcher_or_the_locks(
    gated_ui: GatedUI, tag: str, value: str
) -> None:
    attempt = Attempt(gated_ui)
    params = execution_params("nightly_backup", {tag: value})
    line = attempt.refused(attempt.graphql(LAUNCH_RUN, {"p": params}), f"run tags {tag}")
    assert "exfil" not in json.dumps(line) and "attacker" not in json.dumps(line)
    # ... and as extra tags of a re-execution of an allowed run.
    parent = Attempt(gated_ui).graphql(LAUNCH_RUN, {"p": execution_params("nightly_backup")})
    attempt = Attempt(gated_ui)
    reexecute = f"mutation($r: ReexecutionParams!) {{ launchRunReexecution(reexecutionParams: $r) {RESULT} }}"
    extra = {
        "parentRunId": parent["data"]["launchRun"]["run"]["id"],
        "strategy": "ALL_STEPS",
        "extraTags": [{"key": tag, "value": value}],
    }
    attempt.refused(attempt.graphql(reexecute, {"r": extra}), f"run tags {tag}")


def test_a_selector_naming_two_jobs(gated_ui: GatedUI) -> None:
    """Dagster's launch reads pipelineName before jobName: neither name may hide the other."""
    attempt = Attempt(gated_ui)
    params = execution_params("nightly_backup")
    params["selector"]["pipelineName"] = "restore_database"
    line = attempt.refused(attempt.graphql(LAUNCH_RUN, {"p": params}), "is not a job")
    assert line["jobs"] == ["restore_database and nightly_backup"]


def test_an_admins_backfill_named_by_id_is_judged_by_what_it_runs(gated_ui: GatedUI) -> None:
    gated_ui.instance.add_dynamic_partitions("commits", ["feedface" * 5])
    launch = "mutation($b: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $b) { __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }"
    params = {
        "assetSelection": [{"path": ["production_schema"]}],
        "partitionNames": ["feedface" * 5],
    }
    body = Attempt(gated_ui).graphql(launch, {"b": params}, who=ADMIN)
    backfill_id = body["data"]["launchPartitionBackfill"]["backfillId"]
    for field, argument in (
        ("cancelPartitionBackfill", "backfillId: $id"),
        ("resumePartitionBackfill", "backfillId: $id"),
        (
            "reexecutePartitionBackfill",
            "reexecutionParams: {parentRunId: $id, strategy: ALL_STEPS}",
        ),
    ):
        attempt = Attempt(gated_ui)
        query = f"mutation($id: String!) {{ {field}({argument}) {{ __typename ... on PythonError {{ message }} }} }}"
        line = attempt.refused(attempt.graphql(query, {"id": backfill_id}), "production_schema")
        assert (line["action"], line["names"]) == (field, [backfill_id])
