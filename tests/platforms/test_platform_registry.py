"""The platform registry is the one place a URL scheme is named: it opens every platform, and no
module outside sage_ops/platforms/ spells a scheme of it."""

import re
from pathlib import Path

import pytest

from sage_ops.errors import ConfigError
from sage_ops.platforms import targets
from sage_ops.platforms.deployer import Deployer

ROOT = Path(__file__).resolve().parents[2] / "sage_ops"


def test_every_platform_opens_what_it_says(monkeypatch):
    monkeypatch.setenv("AWS_REGION", "us-east-1")  # a client is created, never called
    assert set(targets.PLATFORMS) >= {"ecs", "swarm", "docker"}
    for scheme, platform in targets.PLATFORMS.items():
        url = platform.url_form.split("[")[0].replace("CLUSTER", "c").replace("SERVICE", "s")
        assert url.startswith(f"{scheme}://")
        runner = targets.open_one_off(url)
        assert isinstance(runner, Deployer) == platform.deploys
        if platform.deploys:
            assert isinstance(targets.open_deployer(url), type(runner))
        else:
            with pytest.raises(ConfigError, match="deploy target"):
                targets.open_deployer(url)


def test_an_unknown_scheme_names_every_form():
    with pytest.raises(ConfigError) as err:
        targets.open_one_off("k8s://cluster/service")
    assert all(p.url_form in str(err.value) for p in targets.PLATFORMS.values())


def test_local_service_is_a_url_of_the_local_target():
    url = targets.local_service("api", replicas="2")
    assert url == f"{targets.LOCAL_TARGET}://api?replicas=2"
    assert targets.PLATFORMS[targets.LOCAL_TARGET].deploys


def test_no_module_outside_platforms_names_a_scheme():
    schemes = re.compile(rf"\b({'|'.join(map(re.escape, targets.PLATFORMS))})://")
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in ROOT.rglob("*.py")
        if path.relative_to(ROOT).parts[0] != "platforms"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if schemes.search(line)
    ]
    assert offenders == []
