"""The Docker Engine: its client and one-off containers, image builds and checks."""
