"""The gate in front of a real dagster-webserver serving sage_ops: identities from load-balancer
tokens (signed here with a local ES256 key), the UI's own launch mutation, run tags read back from
the instance, and the audit log."""

from __future__ import annotations

import base64
import json
import urllib.parse

from sage_ops.gate.launch_tags import LAUNCHED_BY
from tests.gate.alb_tokens import OTHER_ALB_ARN
from tests.gate.conftest import ADMIN_GROUP, GatedUI
from tests.gate.stack import execution_params, graphql, request

ORDINARY = "ana@sage.test"
ADMIN = "root@sage.test"

# The UI's LaunchPipelineExecution mutation (ui-core RunUtils.tsx) as Apollo sends it, with the
# __typename fields Apollo adds.
LAUNCH = """
mutation LaunchPipelineExecution($executionParams: ExecutionParams!) {
  launchPipelineExecution(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { id pipelineName __typename } __typename }
    ... on PipelineNotFoundError { message __typename }
    ... on InvalidSubsetError { message __typename }
    ... on RunConfigValidationInvalid { errors { message __typename } __typename }
    ...PythonErrorFragment
  }
}
fragment PythonErrorFragment on PythonError {
  __typename
  message
  stack
  errorChain { ...PythonErrorChain __typename }
}
fragment PythonErrorChain on ErrorChainLink {
  isExplicitLink
  error { message stack __typename }
  __typename
}
"""


def launch(ui: GatedUI, who: str, params: dict, groups: list[str] | None = None) -> dict:
    token = ui.signer.token(who, groups=groups)
    status, body = graphql(ui.url, LAUNCH, {"executionParams": params}, token)
    assert status == 200, body
    return body["data"]["launchPipelineExecution"]


def run_tags(ui: GatedUI, run_id: str) -> dict[str, str]:
    run = ui.instance.get_run_by_id(run_id)
    assert run is not None
    return dict(run.tags)


# --- who is asking -------------------------------------------------------------------------------


def test_a_request_without_a_token_gets_a_sign_in_page(gated_ui: GatedUI) -> None:
    status, text = request(f"{gated_ui.url}/runs", headers={"Accept": "text/html"})
    assert status == 401
    assert "Sign-in required" in text and "load balancer" in text
    status, body = graphql(gated_ui.url, "{ version }")
    assert status == 401 and "no sign-in" in body["errors"][0]["message"]


def test_an_expired_token_is_refused(gated_ui: GatedUI) -> None:
    token = gated_ui.signer.token(ORDINARY, expires_in=-60)
    status, body = graphql(gated_ui.url, "{ version }", token=token)
    assert status == 401 and "expired" in body["errors"][0]["message"]


def test_a_token_from_another_load_balancer_is_refused_before_any_key_fetch(
    gated_ui: GatedUI,
) -> None:
    fetched = list(gated_ui.keys.requests)
    token = gated_ui.signer.token(ORDINARY, signer=OTHER_ALB_ARN)
    status, body = graphql(gated_ui.url, "{ version }", token=token)
    assert status == 401 and "not signed by this UI's load balancer" in body["errors"][0]["message"]
    assert gated_ui.keys.requests == fetched


def test_a_tampered_token_is_refused(gated_ui: GatedUI) -> None:
    header, payload, signature = gated_ui.signer.token(ORDINARY).split(".")
    claims = json.loads(_b64decode(payload))
    claims["email"] = ADMIN
    forged = ".".join([header, _b64(json.dumps(claims)), signature])
    status, body = graphql(gated_ui.url, "{ version }", token=forged)
    assert status == 401 and "invalid" in body["errors"][0]["message"]


def test_a_valid_token_reads_the_ui_and_the_key_is_fetched_once(gated_ui: GatedUI) -> None:
    token = gated_ui.signer.token(ORDINARY)
    for _ in range(3):
        status, text = request(f"{gated_ui.url}/runs", headers={"x-amzn-oidc-data": token})
        assert status == 200 and "<html" in text.lower()
    status, body = graphql(gated_ui.url, "{ version }", token=token)
    assert status == 200 and body["data"]["version"]
    assert gated_ui.keys.requests == [f"/{gated_ui.signer.kid}"]


def test_an_account_outside_the_allowed_domains_is_forbidden(gated_ui: GatedUI) -> None:
    token = gated_ui.signer.token("mallory@elsewhere.test")
    status, text = request(
        f"{gated_ui.url}/runs", headers={"x-amzn-oidc-data": token, "Accept": "text/html"}
    )
    assert status == 403 and "Not allowed" in text and "sage.test" in text


def test_the_load_balancer_health_check_needs_no_identity(gated_ui: GatedUI) -> None:
    assert request(f"{gated_ui.url}/_gate/health") == (200, '{"status":"ok"}')


# --- what they may do ----------------------------------------------------------------------------


def test_an_ordinary_user_launches_nightly_backup_and_the_run_is_tagged(gated_ui: GatedUI) -> None:
    result = launch(gated_ui, ORDINARY, execution_params("nightly_backup"))
    assert result["__typename"] == "LaunchRunSuccess", result
    assert run_tags(gated_ui, result["run"]["id"])[LAUNCHED_BY] == ORDINARY
    line = gated_ui.audit_lines()[-1]
    assert line["who"] == ORDINARY and line["action"] == "launchPipelineExecution"
    assert (line["jobs"], line["partitions"]) == (["nightly_backup"], [])
    assert (line["decision"], line["destructive"]) == ("allowed", False)


def test_an_ordinary_user_is_refused_restore_database_and_the_refusal_is_audited(
    gated_ui: GatedUI,
) -> None:
    runs_before = len(gated_ui.instance.get_run_records())
    config = {"ops": {"restore_backup_op": {"config": {"confirm": "sage"}}}}
    result = launch(gated_ui, ORDINARY, execution_params("restore_database", runConfigData=config))
    # The shape the UI shows as an "Error" dialog with the message (PythonErrorFragment).
    assert result["__typename"] == "PythonError"
    assert set(result) == {"__typename", "message", "stack", "errorChain"}
    assert result["stack"] == [] and result["errorChain"] == []
    assert f"{ORDINARY} may not launch restore_database" in result["message"]
    assert "restore_database: restores" in result["message"] and ADMIN_GROUP in result["message"]
    assert len(gated_ui.instance.get_run_records()) == runs_before
    line = gated_ui.audit_lines()[-1]
    assert (line["who"], line["jobs"], line["decision"]) == (
        ORDINARY,
        ["restore_database"],
        "refused",
    )
    assert line["destructive"] is True
    assert (
        line["reason"]
        == "its effects are for admins (restore_database: restores in the configured target)"
    )
    assert len(line["config_digests"][0]) == 64 and "sage" not in json.dumps(line["config_digests"])


def test_an_admin_launches_restore_database_tagged_and_audited(gated_ui: GatedUI) -> None:
    result = launch(gated_ui, ADMIN, execution_params("restore_database"), groups=[ADMIN_GROUP])
    assert result["__typename"] == "LaunchRunSuccess", result
    assert run_tags(gated_ui, result["run"]["id"])[LAUNCHED_BY] == ADMIN
    line = gated_ui.audit_lines()[-1]
    assert (line["who"], line["groups"], line["jobs"]) == (
        ADMIN,
        [ADMIN_GROUP],
        ["restore_database"],
    )
    assert (line["decision"], line["destructive"]) == ("allowed", True)


def test_a_client_supplied_launched_by_tag_is_overwritten(gated_ui: GatedUI) -> None:
    params = execution_params("nightly_backup", {LAUNCHED_BY: "someone-else@sage.test"})
    result = launch(gated_ui, ORDINARY, params)
    assert result["__typename"] == "LaunchRunSuccess", result
    run = gated_ui.instance.get_run_by_id(result["run"]["id"])
    assert run is not None and run.tags[LAUNCHED_BY] == ORDINARY


def test_a_launch_sent_as_a_get_query_string_is_judged_and_tagged_too(gated_ui: GatedUI) -> None:
    token = gated_ui.signer.token(ORDINARY)
    for job, expected in (
        ("restore_database", "PythonError"),
        ("nightly_backup", "LaunchRunSuccess"),
    ):
        variables = {"p": execution_params(job)}
        query = "mutation($p: ExecutionParams!) { launchRun(executionParams: $p) { __typename ... on LaunchRunSuccess { run { id } } } }"
        qs = urllib.parse.urlencode({"query": query, "variables": json.dumps(variables)})
        status, text = request(f"{gated_ui.url}/graphql?{qs}", headers={"x-amzn-oidc-data": token})
        result = json.loads(text)["data"]["launchRun"]
        assert (status, result["__typename"]) == (200, expected), text
    assert run_tags(gated_ui, result["run"]["id"])[LAUNCHED_BY] == ORDINARY


def test_inline_launch_parameters_are_refused_because_they_cannot_be_tagged(
    gated_ui: GatedUI,
) -> None:
    query = """mutation { launchRun(executionParams: {selector: {repositoryLocationName: "sage_ops",
      repositoryName: "__repository__", jobName: "nightly_backup"}}) { __typename ... on PythonError { message } } }"""
    _status, body = graphql(gated_ui.url, query, token=gated_ui.signer.token(ORDINARY))
    result = body["data"]["launchRun"]
    assert result["__typename"] == "PythonError" and "as a GraphQL variable" in result["message"]


def test_production_assets_and_runs_of_destructive_jobs_are_for_admins_only(
    gated_ui: GatedUI,
) -> None:
    asset_job = execution_params("__ASSET_JOB", {"dagster/partition": "abc123"})
    asset_job["selector"]["assetSelection"] = [{"path": ["production_deployment"]}]
    result = launch(gated_ui, ORDINARY, asset_job)
    assert "it targets production (production_deployment: deploys" in result["message"]

    restore = launch(gated_ui, ADMIN, execution_params("restore_database"), groups=[ADMIN_GROUP])
    run_id = restore["run"]["id"]
    token = gated_ui.signer.token(ORDINARY)
    terminate = "mutation($id: String!) { terminateRun(runId: $id) { __typename ... on PythonError { message } } }"
    _, body = graphql(gated_ui.url, terminate, {"id": run_id}, token)
    assert "may not terminate a run of restore_database" in body["data"]["terminateRun"]["message"]
    reexecute = """mutation($r: ReexecutionParams!) { launchRunReexecution(reexecutionParams: $r) {
      __typename ... on PythonError { message } } }"""
    _status, body = graphql(
        gated_ui.url, reexecute, {"r": {"parentRunId": run_id, "strategy": "ALL_STEPS"}}, token
    )
    assert "may not re-execute restore_database" in body["data"]["launchRunReexecution"]["message"]
    refused = [line for line in gated_ui.audit_lines()[-3:] if line["decision"] == "refused"]
    assert [line["action"] for line in refused] == ["terminateRun", "launchRunReexecution"]


def test_housekeeping_mutations_pass_unaudited_and_deletes_are_for_admins(
    gated_ui: GatedUI,
) -> None:
    lines = len(gated_ui.audit_lines())
    token = gated_ui.signer.token(ORDINARY)
    status, body = graphql(gated_ui.url, "mutation { setNuxSeen }", token=token)
    assert (status, body["data"]) == (200, {"setNuxSeen": True})
    assert len(gated_ui.audit_lines()) == lines
    status, body = graphql(
        gated_ui.url,
        'mutation { wiped: wipeAssets(assetPartitionRanges: [{assetKey: {path: ["db_backup"]}}]) { __typename } }',
        token=token,
    )
    assert body["data"]["wiped"]["__typename"] == "PythonError"
    assert gated_ui.audit_lines()[-1]["assets"] == ["db_backup"]


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


def _b64decode(segment: str) -> str:
    return base64.urlsafe_b64decode(segment).decode()
