"""SQL storage of the workflows service: ORM schema and store classes."""
