"""reana.yaml validation: the official REANA validator as a worker, and our own checks."""
