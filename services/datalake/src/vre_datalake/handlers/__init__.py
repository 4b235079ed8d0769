"""HTTP routes of the datalake service: thin doorways to the services."""
