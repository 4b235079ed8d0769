"""Gateway routers."""
