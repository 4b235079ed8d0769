"""Validate Kubernetes objects against the schemas of one Kubernetes version (strict).

Run by the tools environment's Python (kubernetes-validate lives there):
    python k8s_validate.py VERSION < objects.yaml
prints a JSON list of problems, one per object that fails; kinds without a bundled schema
(custom resources) are reported separately as "skipped".
"""

from __future__ import annotations

import json
import sys

import kubernetes_validate
import yaml


def main() -> int:
    """Validate every document on stdin."""
    version = sys.argv[1]
    problems: list[dict[str, str]] = []
    skipped: list[str] = []
    validated = 0
    for doc in yaml.safe_load_all(sys.stdin):
        if not doc:
            continue
        name = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        try:
            kubernetes_validate.validate(doc, version, strict=True)
            validated += 1
        except kubernetes_validate.SchemaNotFoundError:
            skipped.append(name)
        except kubernetes_validate.ValidationError as error:
            path = "/".join(str(p) for p in error.path)
            problems.append({"object": name, "path": path, "message": error.message})
    json.dump({"validated": validated, "skipped": skipped, "problems": problems}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
