"""Ports to the catalogue behind the Data Lake (Rucio), one implementation per system."""
