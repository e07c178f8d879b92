"""Docker swarm, the local deploy target: the deployer, its URL, its tasks."""
