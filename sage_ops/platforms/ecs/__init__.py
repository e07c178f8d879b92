"""Amazon ECS (Fargate): the deployer, its URL, revisions, rollouts, health, one-off tasks."""
