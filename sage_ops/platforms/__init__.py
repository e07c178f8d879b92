"""Platforms: the services capabilities run on (AWS APIs, image builders)."""
