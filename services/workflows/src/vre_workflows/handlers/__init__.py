"""HTTP routers of the workflows service (thin: parse, call one service method, return)."""
