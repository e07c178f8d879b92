"""Image builders: the interface and its spec, the local Engine, AWS CodeBuild."""
