"""Compare our codemeta.json validation with eossr's on a folder of real files (not committed).

    .venv/bin/python -m services.catalogue.tests.support.compare_corpus DIR

prints one Markdown table row per ``*.json`` file under DIR: our verdict (errors as
type + JSON pointer, and the warnings that are not just recommended keys), eossr's validator and
eossr's Zenodo converter (run by eossr_witness.py from .venv-eossr), and whether the two
validators agree. docs/validation-corpus.md was written from its output.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from vre_catalogue.services.codemeta import json_syntax_issue, validate_codemeta

ROOT = Path(__file__).resolve().parents[4]
WITNESS = Path(__file__).parent / "eossr_witness.py"


def ours(text: str) -> tuple[bool, str]:
    """Our verdict on one file's text."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        issue = json_syntax_issue(text, exc.pos, exc.msg)
        return False, f"refused: JSON syntax, line {issue.line}, column {issue.column}"
    outcome = validate_codemeta(document)
    verdict = (
        "accepted"
        if outcome.ok
        else "refused: " + ", ".join(f"{e.type} {e.pointer}" for e in outcome.errors)
    )
    odd = sorted({w.type for w in outcome.warnings if w.type != "recommended"})
    return outcome.ok, verdict + (f" (warnings: {', '.join(odd)})" if odd else "")


def eossr(documents: list[Any]) -> list[dict[str, Any]]:
    """eossr's verdicts (validator and converter) on the parsed documents."""
    result = subprocess.run(
        [str(ROOT / ".venv-eossr" / "bin" / "python"), str(WITNESS)],
        input=json.dumps(documents),
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    verdicts: list[dict[str, Any]] = json.loads(result.stdout)
    return verdicts


def _cell(text: str) -> str:
    return text.replace("|", "/").replace("\n", " ")[:120]


def main(folder: Path) -> None:
    """Print the comparison table for every JSON file under ``folder``."""
    files = sorted(folder.rglob("*.json"))
    texts = [path.read_text() for path in files]
    parsed: list[Any] = []
    for text in texts:
        try:
            parsed.append(json.loads(text))
        except json.JSONDecodeError:
            parsed.append(None)  # eossr's json.load refuses it too
    verdicts = eossr(parsed)
    print("| file | ours | eossr validator | eossr converter | agree |")
    print("|---|---|---|---|---|")
    for path, text, document, verdict in zip(files, texts, parsed, verdicts, strict=True):
        ok, mine = ours(text)
        if document is None:
            theirs, valid, converter = "refused: not JSON", False, "—"
        else:
            valid = verdict["validate"]["valid"]
            theirs = "accepted" if valid else "refused: " + verdict["validate"]["error"]
            converter = (
                "converts" if verdict["convert"]["ok"] else "fails: " + verdict["convert"]["error"]
            )
        agree = "yes" if ok == valid else "**no**"
        row = (path.relative_to(folder).as_posix(), mine, theirs, converter, agree)
        print("| " + " | ".join(_cell(c) for c in row) + " |")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
