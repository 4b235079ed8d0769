"""Helpers of the deployment tests: tool locations, podman and a locally made base image."""
