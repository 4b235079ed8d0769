"""Test support: a POSIX Data Lake, a REANA stand-in, helpers."""
