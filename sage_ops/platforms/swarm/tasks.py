"""What a swarm service's tasks say about a rollout: their states, health probes, the story."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Log = Callable[[str], None]

FAILED_TASK_STATES = frozenset({"failed", "rejected"})
EXITED_TASK_STATES = FAILED_TASK_STATES | {"complete"}  # a server that exits has failed
ENDED_TASK_STATES = EXITED_TASK_STATES | {"shutdown", "orphaned"}


@dataclass(frozen=True)
class TaskView:
    """The few fields of a swarm task that decide a rollout's outcome."""

    id: str
    slot: int
    image: str
    state: str
    desired: str
    error: str
    container_id: str | None

    @property
    def running(self) -> bool:
        return self.state == "running" and self.desired == "running"

    @classmethod
    def from_api(cls, task: Mapping[str, Any]) -> TaskView:
        status = task.get("Status") or {}
        spec = (task.get("Spec") or {}).get("ContainerSpec") or {}
        return cls(
            id=str(task.get("ID", "")),
            slot=int(task.get("Slot") or 0),
            image=str(spec.get("Image", "")),
            state=str(status.get("State", "")),
            desired=str(task.get("DesiredState", "")),
            error=str(status.get("Err") or ""),
            container_id=(status.get("ContainerStatus") or {}).get("ContainerID"),
        )


@dataclass(frozen=True)
class HealthProbe:
    task_id: str
    ok: bool
    detail: str  # body on success, the reason otherwise


def digest_of(image: str) -> str:
    return image.rsplit("@", 1)[1] if "@" in image else image


def short(image: str) -> str:
    """`repo@sha256:0123456789ab...` -> `sha256:0123456789ab` for log lines."""
    return digest_of(image)[:19]


class TaskWatcher:
    """Logs each task's state change once, so the run log tells the rollout's story."""

    def __init__(self, log: Log):
        self.log = log
        self.states: dict[str, str] = {}
        self.first = True

    def update(self, tasks: list[TaskView]) -> None:
        """The first call records history (tasks that already ended) without repeating it."""
        for task in sorted(tasks, key=lambda t: (t.slot, t.id)):
            key = f"{task.state}/{task.desired}"
            if self.states.get(task.id) == key:
                continue
            self.states[task.id] = key
            if self.first and task.state in ENDED_TASK_STATES:
                continue
            error = f" ({task.error})" if task.error else ""
            self.log(
                f"task {task.id[:12]} slot {task.slot} {short(task.image)}: {task.state}"
                f" (desired {task.desired}){error}"
            )
        self.first = False


def converged(tasks: list[TaskView], image: str, replicas: int) -> bool:
    """Exactly `replicas` tasks running, every one of them on `image`'s digest."""
    running = [t for t in tasks if t.running]
    digest = digest_of(image)
    return len(running) == replicas and all(digest_of(t.image) == digest for t in running)
