"""Path parameters of the Data Lake routes, with the naming rules stated in the OpenAPI document
(vre_common.types' patterns; vre_datalake.names checks them, with a message per rule)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path

from vre_common.types import DID_NAME_PATTERN, RSE_PATTERN, SCOPE_PATTERN, stated

ScopePath = Annotated[
    str, Path(description="A Rucio scope.", json_schema_extra=stated(SCOPE_PATTERN))
]
DidNamePath = Annotated[
    str,
    Path(
        description="A DID name ('/' separates its parts).",
        json_schema_extra=stated(DID_NAME_PATTERN),
    ),
]
RsePath = Annotated[str, Path(description="An RSE name.", json_schema_extra=stated(RSE_PATTERN))]
