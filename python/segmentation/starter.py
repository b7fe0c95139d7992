"""`make init`: profile the user's file, infer its declaration and write it as readable YAML.

The YAML is written by a small emitter of its own so that the file reads like the
examples of docs/declaration.md: a header saying how to edit it, one comment per column
with the reason for what was decided, short `{en, fr}` mappings on one line. An existing
declaration is never overwritten unless asked (`FORCE=1`, `--force`): it may hold the
user's edits.
"""

from __future__ import annotations

import json
import logging
import os
import re
from datetime import date
from pathlib import Path

from .dialect import CsvOptions
from .errors import UserError
from .inference import Decision, Draft, infer_declaration
from .profiling import profile_file

log = logging.getLogger(__name__)

DECLARATIONS_DIR = Path("dbt_project") / "declarations"
PLAIN = re.compile(r"[^\s\-?:,\[\]{}#&*!|>'\"%@`][^:#,\[\]{}]*")
RESERVED_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"}

HEADER = """\
# Declaration of {source}, written by `make init` from the file itself.
# Review it, then run: make all DATA={data}
#
# Each column's comment says what init decided and why ("review:" marks what to check).
# Edit freely: change a role (numeric, ordinal, categorical, label, profile, ignored), a
# range, the levels and their spellings, the labels in English and French, the words for
# high and low values. The format is described in docs/declaration.md. `make init` never
# overwrites this file (FORCE=1 starts it again from the data).
"""


def scalar(value: object) -> str:
    """One YAML scalar: plain when it reads back as the same string, else double-quoted."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(int(value)) if float(value).is_integer() else repr(value)
    if isinstance(value, date):
        return value.isoformat()
    text = str(value)
    looks_like_other = re.fullmatch(r"[-+.\d][\d_.eE:+-]*|\d{4}-\d\d-\d\d.*|\.(inf|nan)", text, re.IGNORECASE)
    if PLAIN.fullmatch(text) and text == text.strip() and text.lower() not in RESERVED_WORDS and not looks_like_other:
        return text
    return json.dumps(text, ensure_ascii=False)


def flow(value: object) -> str:
    """A value on one line: `{en: age, fr: âge}`, `[16, 110]`."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}: {flow(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(flow(item) for item in value) + "]"
    return scalar(value)


def _entry(spec: dict, comment: str) -> list[str]:
    lines = [f"  # {line}" for line in comment.splitlines() if line]
    for index, (key, value) in enumerate(spec.items()):
        lead = "  - " if index == 0 else "    "
        if key == "levels" and len(value) > 1:
            lines.append(f"{lead}{key}:")
            lines.extend(f"      - {flow(level)}" for level in value)
        else:
            lines.append(f"{lead}{key}: {flow(value)}")
    return lines


def render(draft: Draft, data: str) -> str:
    """The declaration as commented YAML, in the order of docs/declaration.md."""
    declaration = draft.declaration
    notes = {d.column: d for d in draft.decisions}

    def comment(name: str) -> str:
        decision = notes.get(name)
        if decision is None:
            return ""
        return f"{name}: {decision.reason}" + (f"\nreview: {decision.review}" if decision.review else "")

    lines = [HEADER.format(source=Path(data).name, data=data).rstrip("\n")]
    for key in ("version", "description", "as_of", "missing_values"):
        lines.append(f"{key}: {flow(declaration[key])}")
    if "deduplicate" in declaration:
        lines.append("deduplicate:  # a repeated id keeps its latest record (gaps filled from earlier ones)")
        lines.append("  latest_first:")
        lines.extend(f"    - {flow(rule)}" for rule in declaration["deduplicate"]["latest_first"])
    lines += ["", "columns:"]
    for spec in declaration["columns"]:
        lines += _entry(spec, comment(spec["column"]))
    if declaration.get("derived"):
        lines += ["", "derived:                    # computed from the columns above (by their warehouse names)"]
        for spec in declaration["derived"]:
            lines += _entry(spec, comment(spec["name"]))
    return "\n".join(lines) + "\n"


def default_output(data: Path, root: Path | None = None) -> Path:
    """dbt_project/declarations/<file stem>.yml (the stem without .csv.gz-like suffixes)."""
    name = data.name
    while Path(name).suffix.lower() in (".gz", ".csv", ".parquet", ".pq", ".txt", ".tsv"):
        name = Path(name).stem
    return (root or Path.cwd()) / DECLARATIONS_DIR / f"{name or 'table'}.yml"


def write_declaration(text: str, output: Path, force: bool) -> None:
    """Write atomically; an existing declaration is kept unless `force`."""
    if output.exists() and not force:
        raise UserError(
            f"{output} already exists and may hold your edits: edit it, or start again from the data with "
            "FORCE=1 (make init) or --force."
        )
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, output)


def init_declaration(
    data: Path, output: Path | None = None, force: bool = False, today: date | None = None
) -> tuple[Path, list[Decision]]:
    """Profile `data`, infer its declaration, write it; returns the path and the decisions."""
    data = Path(data)
    output = Path(output) if output else default_output(data)
    if output.exists() and not force:  # before profiling a big file for nothing
        write_declaration("", output, force)
    profile = profile_file(data, CsvOptions.from_environment())
    draft = infer_declaration(profile, today or date.today())
    write_declaration(render(draft, str(data)), output, force)
    return output, draft.decisions
