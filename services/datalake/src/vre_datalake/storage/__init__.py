"""Byte storage of RSEs, by URL scheme: POSIX (``file://``) and WebDAV (``https://``, ``davs://``).

(This service owns no SQL tables, so ``storage/`` holds the storage-element protocols.)
"""
