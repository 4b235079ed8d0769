"""Domain rules of the workflows service."""
