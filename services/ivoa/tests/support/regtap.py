"""A minimal RegTAP ``rr`` schema for the private DaCHS, filled from DaCHS's own registry.

Debian's DaCHS 2.7 (python3-gavo) ships the RegTAP ADQL functions (``ivo_hasword``,
``ivo_hashlist_has``, ``ivo_nocasematch``) but not the ``rr`` resource of GAVO's RegTAP
service (that RD lives in GAVO's separate data-centre inputs, with an OAI-PMH harvester).
So the fixture does the harvester's part itself: it publishes its resources (``dachs pub``),
reads them back from DaCHS's own OAI-PMH interface (``/oai.xml?verb=ListRecords``, VOResource
records, exactly what a real registry harvests), turns them into rows of the RegTAP 1.1
tables below (:func:`harvest`, the mapping of RegTAP 1.1 section 4: ivoids, standard ids,
types and wavebands lower-cased, wavebands '#'-joined) and imports them with an RD
(:data:`RR_RD`) whose tables DaCHS's TAP service then serves as ``rr.*``.

Only the tables and columns RegTAP 1.1 defines are made (no extensions), so pyvo's and our
``NATURAL JOIN`` queries join on the same columns as on a real RegTAP service.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
OAI = "{http://www.openarchives.org/OAI/2.0/}"
HARVESTED_FROM = "ivo://dachs.test/__system__/services/registry"

# RegTAP 1.1 tables: (column, DaCHS type); every other type is text.
RR_TABLES: dict[str, list[tuple[str, str]]] = {
    "resource": [
        ("ivoid", "text"), ("res_type", "text"), ("created", "timestamp"),
        ("short_name", "text"), ("res_title", "text"), ("content_level", "text"),
        ("res_description", "text"), ("reference_url", "text"), ("creator_seq", "text"),
        ("content_type", "text"), ("source_format", "text"), ("source_value", "text"),
        ("res_version", "text"), ("region_of_regard", "real"), ("waveband", "text"),
        ("rights", "text"), ("rights_uri", "text"), ("updated", "timestamp"),
        ("harvested_from", "text"),
    ],
    "capability": [
        ("ivoid", "text"), ("cap_index", "smallint"), ("cap_name", "text"),
        ("cap_type", "text"), ("cap_description", "text"), ("standard_id", "text"),
    ],
    "interface": [
        ("ivoid", "text"), ("cap_index", "smallint"), ("intf_index", "smallint"),
        ("intf_type", "text"), ("intf_role", "text"), ("std_version", "text"),
        ("query_type", "text"), ("result_type", "text"), ("wsdl_url", "text"),
        ("url_use", "text"), ("access_url", "text"), ("mirror_url", "text"),
        ("authenticated_only", "smallint"), ("security_method_id", "text"),
    ],
    "res_subject": [("ivoid", "text"), ("res_subject", "text")],
    "res_role": [
        ("ivoid", "text"), ("role_name", "text"), ("role_ivoid", "text"),
        ("street_address", "text"), ("email", "text"), ("telephone", "text"),
        ("logo", "text"), ("base_role", "text"),
    ],
    "relationship": [
        ("ivoid", "text"), ("relationship_type", "text"), ("related_id", "text"),
        ("related_name", "text"),
    ],
    "res_table": [
        ("ivoid", "text"), ("table_index", "smallint"), ("schema_name", "text"),
        ("schema_index", "smallint"), ("schema_description", "text"),
        ("schema_title", "text"), ("schema_utype", "text"), ("table_name", "text"),
        ("table_title", "text"), ("table_description", "text"), ("table_utype", "text"),
        ("table_type", "text"), ("nrows", "bigint"),
    ],
    "table_column": [
        ("ivoid", "text"), ("table_index", "smallint"), ("name", "text"), ("ucd", "text"),
        ("unit", "text"), ("utype", "text"), ("std", "smallint"), ("datatype", "text"),
        ("extended_schema", "text"), ("extended_type", "text"), ("arraysize", "text"),
        ("delim", "text"), ("type_system", "text"), ("flag", "text"), ("description", "text"),
    ],
}  # fmt: skip

_TABLE_XML = """  <table id="{name}" onDisk="True" adql="True">
    <meta name="description">RegTAP 1.1 rr.{name} (harvested from this DaCHS).</meta>
{columns}
  </table>
  <data id="import_{name}">
    <sources pattern="data/rr.json"/>
    <embeddedGrammar>
      <iterator>
        <code>
          import json
          with open(self.sourceToken) as f:
            rows = json.load(f)["{name}"]
          for row in rows:
            yield row
        </code>
      </iterator>
    </embeddedGrammar>
    <make table="{name}">
      <rowmaker idmaps="*"/>
    </make>
  </data>
"""

RR_RD = (
    '<resource schema="rr" resdir=".">\n'
    '  <meta name="title">RegTAP tables of the test DaCHS</meta>\n'
    '  <meta name="description">The RegTAP 1.1 rr schema with this DaCHS\'s own published '
    "resources.</meta>\n"
    '  <meta name="creationDate">2026-11-25T00:00:00Z</meta>\n'
    '  <meta name="subject">virtual-observatories</meta>\n'
    + "".join(
        _TABLE_XML.format(
            name=name,
            columns="\n".join(
                f'    <column name="{column}" type="{kind}"/>' for column, kind in columns
            ),
        )
        for name, columns in RR_TABLES.items()
    )
    + "</resource>\n"
)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(element: ET.Element, name: str) -> ET.Element | None:
    return next((c for c in element if _local(c.tag) == name), None)


def _children(element: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in element if _local(c.tag) == name]


def _text(element: ET.Element | None, name: str | None = None) -> str | None:
    if element is not None and name is not None:
        element = _child(element, name)
    if element is None or element.text is None:
        return None
    return " ".join(element.text.split()) or None


def _lower(value: str | None) -> str | None:
    return value.lower() if value else None


def _xsi_type(element: ET.Element) -> str | None:
    return _lower(element.get(XSI_TYPE))


def _resource_rows(resource: ET.Element, out: dict[str, list[dict[str, Any]]]) -> None:
    ivoid = _lower(_text(resource, "identifier"))
    if ivoid is None:
        return
    curation = _child(resource, "curation")
    content = _child(resource, "content")
    coverage = _child(resource, "coverage")
    wavebands = (
        [_lower(_text(w)) for w in _children(coverage, "waveband")] if coverage is not None else []
    )
    creators = _children(curation, "creator") if curation is not None else []
    out["resource"].append(
        {
            "ivoid": ivoid,
            "res_type": _xsi_type(resource),
            "created": resource.get("created"),
            "short_name": _text(resource, "shortName"),
            "res_title": _text(resource, "title"),
            "content_level": _lower(
                "#".join(t for c in _children(content, "contentLevel") if (t := _text(c)))
            )
            if content is not None
            else None,
            "res_description": _text(content, "description") if content is not None else None,
            "reference_url": _text(content, "referenceURL") if content is not None else None,
            "creator_seq": "; ".join(n for c in creators if (n := _text(c, "name"))) or None,
            "content_type": _lower(
                "#".join(t for c in _children(content, "type") if (t := _text(c)))
            )
            if content is not None
            else None,
            "source_format": None,
            "source_value": _text(content, "source") if content is not None else None,
            "res_version": _text(curation, "version") if curation is not None else None,
            "region_of_regard": None,
            "waveband": "#".join(w for w in wavebands if w) or None,
            "rights": _text(resource, "rights"),
            "rights_uri": None,
            "updated": resource.get("updated"),
            "harvested_from": HARVESTED_FROM,
        }
    )
    if content is not None:
        for subject in _children(content, "subject"):
            if (text := _text(subject)) is not None:
                out["res_subject"].append({"ivoid": ivoid, "res_subject": text})
        for relation in _children(content, "relationship"):
            for related in _children(relation, "relatedResource"):
                out["relationship"].append(
                    {
                        "ivoid": ivoid,
                        "relationship_type": _lower(_text(relation, "relationshipType")),
                        "related_id": _lower(related.get("ivo-id")),
                        "related_name": _text(related),
                    }
                )
    if curation is not None:
        for role in ("publisher", "creator", "contact"):
            for element in _children(curation, role):
                named = element if role == "publisher" else _child(element, "name")
                out["res_role"].append(
                    {
                        "ivoid": ivoid,
                        "role_name": _text(named),
                        "role_ivoid": _lower(named.get("ivo-id")) if named is not None else None,
                        "street_address": _text(element, "address"),
                        "email": _text(element, "email"),
                        "telephone": _text(element, "telephone"),
                        "logo": _text(element, "logo"),
                        "base_role": role,
                    }
                )
    for cap_index, capability in enumerate(_children(resource, "capability"), start=1):
        out["capability"].append(
            {
                "ivoid": ivoid,
                "cap_index": cap_index,
                "cap_name": None,
                "cap_type": _xsi_type(capability),
                "cap_description": _text(capability, "description"),
                "standard_id": _lower(capability.get("standardID")),
            }
        )
        for intf_index, interface in enumerate(_children(capability, "interface"), start=1):
            access = _child(interface, "accessURL")
            out["interface"].append(
                {
                    "ivoid": ivoid,
                    "cap_index": cap_index,
                    "intf_index": intf_index,
                    "intf_type": _xsi_type(interface),
                    "intf_role": interface.get("role"),
                    "std_version": interface.get("version"),
                    "query_type": "#".join(
                        t for q in _children(interface, "queryType") if (t := _text(q))
                    ).lower()
                    or None,
                    "result_type": _text(interface, "resultType"),
                    "wsdl_url": None,
                    "url_use": access.get("use") if access is not None else None,
                    "access_url": _text(access),
                    "mirror_url": None,
                    "authenticated_only": 0,
                    "security_method_id": None,
                }
            )
    table_index = 0
    for schema_index, schema in enumerate(_tablesets(resource), start=1):
        for table in _children(schema, "table"):
            table_index += 1
            out["res_table"].append(
                {
                    "ivoid": ivoid,
                    "table_index": table_index,
                    "schema_name": _text(schema, "name"),
                    "schema_index": schema_index,
                    "schema_description": _text(schema, "description"),
                    "schema_title": _text(schema, "title"),
                    "schema_utype": _text(schema, "utype"),
                    "table_name": _text(table, "name"),
                    "table_title": _text(table, "title"),
                    "table_description": _text(table, "description"),
                    "table_utype": _text(table, "utype"),
                    "table_type": table.get("type"),
                    "nrows": None,
                }
            )
            for column in _children(table, "column"):
                datatype = _child(column, "dataType")
                out["table_column"].append(
                    {
                        "ivoid": ivoid,
                        "table_index": table_index,
                        "name": _text(column, "name"),
                        "ucd": _text(column, "ucd"),
                        "unit": _text(column, "unit"),
                        "utype": _text(column, "utype"),
                        "std": 1 if column.get("std") == "true" else 0,
                        "datatype": _text(datatype),
                        "extended_schema": datatype.get("extendedSchema")
                        if datatype is not None
                        else None,
                        "extended_type": datatype.get("extendedType")
                        if datatype is not None
                        else None,
                        "arraysize": datatype.get("arraysize") if datatype is not None else None,
                        "delim": None,
                        "type_system": _xsi_type(datatype) if datatype is not None else None,
                        "flag": "#".join(
                            t for f in _children(column, "flag") if (t := _text(f))
                        ).lower()
                        or None,
                        "description": _text(column, "description"),
                    }
                )


def _tablesets(resource: ET.Element) -> list[ET.Element]:
    tableset = _child(resource, "tableset")
    return _children(tableset, "schema") if tableset is not None else []


def harvest(oai_pmh: bytes) -> dict[str, list[dict[str, Any]]]:
    """RegTAP rows of every resource in an OAI-PMH ListRecords answer (ivo_vor records)."""
    root = ET.fromstring(oai_pmh)  # our own DaCHS's answer
    token = root.find(f".//{OAI}resumptionToken")
    if token is not None and (token.text or "").strip():
        raise RuntimeError("the OAI-PMH answer is incomplete (resumptionToken): page it")
    out: dict[str, list[dict[str, Any]]] = {name: [] for name in RR_TABLES}
    for metadata in root.iter(f"{OAI}metadata"):
        for resource in metadata:
            _resource_rows(resource, out)
    if not out["resource"]:
        raise RuntimeError("the OAI-PMH answer has no resources: was anything published?")
    return out


def rows_json(rows: dict[str, list[dict[str, Any]]]) -> str:
    """The rows as the RD's grammar reads them."""
    return json.dumps(rows, indent=1, sort_keys=True)
