"""Deploy's settings are read from the environment once, by DeployConfig.from_env, and the plain
code receives the values (a repository's credential, an environment's database)."""

import pytest

from sage_ops.deploy.resources import DeployConfig
from sage_ops.errors import ConfigError


def test_the_loader_reads_each_setting_once(monkeypatch):
    monkeypatch.setenv("SAGE_OPS_REPO", "https://git.example.com/sage.git")
    monkeypatch.setenv("SAGE_OPS_REPO_CREDENTIAL_SECRET", "sage-production/sage-ops/git")
    monkeypatch.setenv("SAGE_OPS_WATCH_PATHS", "apps/backend/**, prisma/**")
    monkeypatch.setenv("SAGE_OPS_REQUIRE_APPROVAL", "yes")
    config = DeployConfig.from_env()
    assert config.repo_credential == "sage-production/sage-ops/git"
    assert config.watch_paths == ["apps/backend/**", "prisma/**"] and config.require_approval
    monkeypatch.setenv("SAGE_OPS_REPO_CREDENTIAL_SECRET", "")
    assert DeployConfig.from_env().repo_credential is None


def test_a_bad_value_is_refused_naming_its_variable(monkeypatch):
    monkeypatch.setenv("SAGE_OPS_BUILDER", "kaniko")
    with pytest.raises(ConfigError, match="SAGE_OPS_BUILDER must be one of docker, codebuild"):
        DeployConfig.from_env()
