"""VRE gateway: one login, one API, one OpenAPI document."""
