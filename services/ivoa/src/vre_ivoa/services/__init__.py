"""Services of the ivoa service."""
