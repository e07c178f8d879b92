"""Image registries: pushing by digest (any OCI registry) and Amazon ECR."""
