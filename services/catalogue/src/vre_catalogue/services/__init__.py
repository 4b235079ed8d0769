"""Domain rules of the catalogue."""
