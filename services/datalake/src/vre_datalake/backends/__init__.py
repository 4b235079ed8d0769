"""Ports to the systems behind the Data Lake: Rucio's catalogue (``rucio/``) and the storage
elements' bytes (``rse/``), one implementation per system."""
