"""Scripts run by the Rucio server environment's Python, not by the project's."""
