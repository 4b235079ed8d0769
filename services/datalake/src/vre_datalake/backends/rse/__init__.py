"""The byte storage of RSEs, by URL scheme: POSIX (``file://``) and WebDAV (``https://``,
``davs://``) — the storage elements' own protocols, beside Rucio's catalogue (``rucio/``).
"""
