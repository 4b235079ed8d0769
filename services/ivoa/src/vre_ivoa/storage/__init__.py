"""Storage of the ivoa service."""
