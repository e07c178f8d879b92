"""The VPCs a run task's connections cross, as Terraform's security groups make them: which of
the task's connections get through.

What the run connects to is read from its container's environment, as the stand-in builds it:
PostgreSQL and Redis URLs, `<X>_HOST`/`<X>_PORT` pairs (Dagster's storage), the AWS endpoint the
agent gives, and a git remote (an https URL ending in .git, ssh://, user@host:path). The sandbox
serves most of these locally, so it says what each of its endpoints stands for in the stack
(`Place`): an environment's RDS instance, AWS's public endpoints, the git host. A connection
gets through when the task's security group has an egress rule for its port towards the place
(the place's group, or a CIDR holding its address) and, for a place with a group, that group has
an ingress rule admitting the task's group (by reference, or found by name from another stack,
or by a CIDR holding the task's address). Security groups are stateful: replies need no rule.
The rules are the security_groups module's, rendered per environment (terraform_render).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from ipaddress import ip_address, ip_network
from urllib.parse import urlsplit

from tests.infra import terraform_render
from tests.infra.test_terraform import ENVIRONMENTS, MODULES, TF, Config, tfvars

PUBLIC = "203.0.113.10"  # what a public endpoint resolves to (reached through the NAT gateway)
DEFAULT_PORTS = {"postgres": 5432, "postgresql": 5432, "redis": 6379, "rediss": 6379}
GROUP = re.compile(r"<(data\.)?aws_security_group\.(\w+)(?:\[\d+\])?\.id>")


@dataclass(frozen=True)
class Place:
    what: str  # "staging's RDS"
    stack: str | None  # the environment whose VPC holds it; None: outside, through the NAT
    group: str | None  # its security group (resource name in that stack's security_groups)
    address: str
    port: int


def attached_group(module: str) -> str:
    """The security group the root gives `module` (its security_group_id argument), by its
    resource name in the security_groups module."""
    ref = Config(TF).modules[module]["security_group_id"]
    output = re.search(r"module\.security_groups\.(\w+)", ref)
    assert output, f"module {module}: security_group_id is not a security_groups output"
    value = Config(MODULES / "security_groups").outputs[output[1]]["value"]
    group = re.search(r"aws_security_group\.(\w+)", value)
    assert group, value
    return group[1]


def in_vpc(environment: str, host: int) -> str:
    """An address in `environment`'s VPC (its tfvars' vpc_cidr)."""
    return str(ip_network(tfvars(environment)["vpc_cidr"])[host])


def rds(environment: str) -> Place:
    return Place(
        f"{environment}'s RDS", environment, attached_group("rds"), in_vpc(environment, 20), 5432
    )


AWS_APIS = Place("AWS's API endpoints", None, None, PUBLIC, 443)


def git_host(url: str) -> Place:
    """The remote of `url`: https on 443, ssh (ssh:// or user@host:path) on 22."""
    parts = urlsplit(url)
    ssh = parts.scheme == "ssh" or (not parts.scheme and re.match(r"[\w.-]+@[\w.-]+:", url))
    if parts.scheme not in ("https", "ssh") and not ssh:
        raise ValueError(f"{url}: not a network git remote")
    port = parts.port or (22 if ssh else 443)
    return Place(f"the git remote {url}", None, None, PUBLIC, port)


def endpoints(env: Mapping[str, str], places: Mapping[str, Place]) -> Iterator[tuple[str, str]]:
    """(variable, endpoint) for every connection the environment configures; an endpoint is
    `host:port[/database]`, a git remote's URL, or a value the sandbox names a place for."""
    for name, value in env.items():
        parts = urlsplit(value)
        if value in places:
            yield name, value
        elif parts.scheme in DEFAULT_PORTS:
            port = parts.port or DEFAULT_PORTS[parts.scheme]
            yield name, f"{parts.hostname}:{port}{parts.path}"
        elif name.endswith("_HOST") and f"{name[:-5]}_PORT" in env:
            database = env.get(f"{name[:-5]}_DB", "")
            yield name, f"{value}:{env[name[:-5] + '_PORT']}/{database}".rstrip("/")
        elif name == "AWS_ENDPOINT_URL":  # the agent's; in AWS, the regional endpoints
            yield name, f"{parts.hostname}:{parts.port}"
        elif re.match(r"(https://\S+\.git|ssh://|[\w.-]+@[\w.-]+:)", value):
            yield name, value


@dataclass(frozen=True)
class Network:
    task: Place  # where the run tasks are: the sage_ops stack's sage_ops group
    places: Mapping[str, Place]  # the sandbox's endpoints -> what each stands for
    groups: Mapping[str, terraform_render.SecurityGroups]  # environment -> its rules

    @classmethod
    def of(cls, task_stack: str, places: Mapping[str, Place]) -> Network:
        task = Place(
            "the run task", task_stack, attached_group("sage_ops"), in_vpc(task_stack, 10), 0
        )
        return cls(task, places, {e: terraform_render.security_groups(e) for e in ENVIRONMENTS})

    def without(self, environment: str, address: str) -> Network:
        """The same with one rule (its Terraform address in `environment`'s stack) removed."""
        groups = dict(self.groups)
        rules = dict(groups[environment].rules)
        del rules[address]
        groups[environment] = replace(groups[environment], rules=rules)
        return replace(self, groups=groups)

    def refusal(self, env: Mapping[str, str]) -> str | None:
        """Why a connection the environment configures would time out, or None."""
        for name, endpoint in endpoints(env, self.places):
            place = self.places.get(endpoint) or _outside(endpoint)
            if place is None:
                return f"{name}: the sandbox does not say what {endpoint} stands for"
            missing = self._missing(place)
            if missing:
                return f"{name}: {endpoint} ({place.what}) times out: {missing}"
        return None

    def _missing(self, place: Place) -> str | None:
        task = self.task
        if not self._allowed("egress", task, place, place.port):
            return (
                f"no aws_vpc_security_group_egress_rule on {task.stack}'s "
                f"aws_security_group.{task.group} for tcp/{place.port} to {place.what} "
                f"({place.address})"
            )
        if place.group is not None and not self._allowed("ingress", place, task, place.port):
            return (
                f"no aws_vpc_security_group_ingress_rule on {place.stack}'s "
                f"aws_security_group.{place.group} for tcp/{place.port} from {task.stack}'s "
                f"aws_security_group.{task.group}"
            )
        return None

    def _allowed(self, direction: str, owner: Place, other: Place, port: int) -> bool:
        """Whether one of `owner`'s group's rules of `direction` lets tcp/`port` to or from
        `other` (its group, when it has one, or a CIDR holding its address)."""
        assert owner.stack is not None
        kind = f"aws_vpc_security_group_{direction}_rule."
        return any(
            self.group_of(owner.stack, rule["security_group_id"]) == (owner.stack, owner.group)
            and _port(rule, port)
            and (
                (
                    other.group is not None
                    and self.peer_of(owner.stack, rule) == (other.stack, other.group)
                )
                or _cidr(rule, other.address)
            )
            for address, rule in self.groups[owner.stack].rules.items()
            if address.startswith(kind)
        )

    def peer_of(
        self, stack: str | None, rule: Mapping[str, object]
    ) -> tuple[str | None, str | None] | None:
        ref = rule.get("referenced_security_group_id")
        return self.group_of(stack, ref) if ref else None

    def group_of(self, stack: str | None, ref: object) -> tuple[str | None, str | None]:
        """A rendered group id: one of `stack`'s groups, or one found by name (any stack's)."""
        found = GROUP.fullmatch(str(ref))
        assert found and stack is not None, ref
        if not found[1]:
            return stack, found[2]
        name = self.groups[stack].found_by_name[found[2]]
        owners = [(e, g) for e, sg in self.groups.items() for g, n in sg.names.items() if n == name]
        return owners[0] if owners else (None, None)


def _port(rule: Mapping[str, object], port: int) -> bool:
    return int(str(rule["from_port"])) <= port <= int(str(rule["to_port"]))


def _cidr(rule: Mapping[str, object], address: str) -> bool:
    cidr = rule.get("cidr_ipv4")
    return bool(cidr) and ip_address(address) in ip_network(str(cidr))


def _outside(endpoint: str) -> Place | None:
    """A git remote the sandbox does not serve: outside the VPCs."""
    try:
        return git_host(endpoint)
    except ValueError:
        return None
