"""git: the CLI, a repository or its mirror, the push scan, sources, credentials."""
