"""VRE ivoa service: IVOA data access (TAP, cone search, SIA) into the Data Lake."""
