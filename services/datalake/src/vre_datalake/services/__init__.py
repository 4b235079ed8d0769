"""Domain rules of the Data Lake: who may touch which scope, how files are moved and registered."""
