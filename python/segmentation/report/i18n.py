"""The report's words and numbers: vocabulary files, persona rules, number and date formats.

Every word a reader sees comes from ``reports/i18n/<lang>.yml``, ``reports/persona_rules.yml``
or the declaration (labels, units, words, level names in ``marts.feature_catalog``); this
module loads the first two and writes figures the way the language writes them.
"""

from __future__ import annotations

import math
import string
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from segmentation.errors import UserError

RULE_SECTIONS = ("traits", "name", "lines", "actions")


class RulesError(UserError):
    """persona_rules.yml or an i18n file is incomplete or refers to something unknown."""


_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's, 5× faster, when PyYAML has it


def read_yaml(path: Path) -> dict:
    try:
        with Path(path).open(encoding="utf-8") as handle:
            data = yaml.load(handle, Loader=_SAFE_LOADER)
    except yaml.YAMLError as exc:
        raise RulesError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise RulesError(f"{path}: expected a mapping at the top level")
    return data


def load_rules(path: Path) -> dict:
    """The persona rules, with the vocabularies of ``i18n/`` beside them under key ``i18n``.

    Checked here, so a missing section fails before any chart is drawn.
    """
    path = Path(path)
    rules = read_yaml(path)
    for key in RULE_SECTIONS:
        if not isinstance(rules.get(key), Mapping):
            raise RulesError(f"{path}: missing section '{key}'; restore it from the project's persona_rules.yml")
    i18n_dir = path.parent / rules.get("i18n_dir", "i18n")
    rules["i18n"] = {p.stem: read_yaml(p) for p in sorted(i18n_dir.glob("*.yml"))}
    for lang in rules["i18n"]:
        for section in ("name", "lines"):
            if lang not in rules[section]:
                raise RulesError(f"{path}: {section}: no texts for language '{lang}'; add a '{lang}:' entry")
    return rules


def vocabulary(rules: Mapping, lang: str) -> dict:
    """The i18n vocabulary for one language, or a clear error naming those available."""
    try:
        return rules["i18n"][lang]
    except KeyError:
        available = ", ".join(sorted(rules.get("i18n", {}))) or "none"
        raise RulesError(f"no vocabulary for language '{lang}' (available: {available}); use one of those") from None


def texts(node: Any, lang: str, where: str) -> Any:
    """The language's entry of a per-language mapping ({en: ..., fr: ...})."""
    if not isinstance(node, Mapping) or lang not in node:
        raise RulesError(f"persona_rules.yml: {where}: no text for language '{lang}'; add a '{lang}:' entry")
    return node[lang]


_FORMATTER = string.Formatter()


def fill(template: str, fields: Mapping[str, Any]) -> str:
    """Fill a template of the rules/i18n files with plain named fields.

    Only ``{name}`` fields are allowed (no attribute or index access, no format spec):
    values are pre-formatted strings, so a template can never reach into objects.
    """
    names = [name for _, name, _, _ in _FORMATTER.parse(template) if name is not None]
    for name in names:
        if not name.isidentifier():
            raise RulesError(f"template {template!r}: field {{{name}}} must be a plain name")
        if name not in fields:
            raise RulesError(f"template {template!r}: unknown field {{{name}}} (known: {', '.join(sorted(fields))})")
    return template.format_map({name: fields[name] for name in names})


def capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def _missing(value: float | None) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


@dataclass(frozen=True)
class NumberFormat:
    """Numbers as the report's language writes them (separators, percent sign, lift)."""

    decimal: str = "."
    thousands: str = ","
    percent_template: str = "{value}%"
    lift_template: str = "×{value}"
    points_template: str = "{value} pts"
    sd_template: str = "{value} sd"
    unit_template: str = "{value} {unit}"
    plus: str = "+"
    minus: str = "−"
    missing: str = "–"

    @classmethod
    def from_vocabulary(cls, vocab: Mapping) -> NumberFormat:
        n = vocab.get("numbers", {})
        d = cls()
        return cls(
            decimal=n.get("decimal", d.decimal),
            thousands=n.get("thousands", d.thousands),
            percent_template=n.get("percent", d.percent_template),
            lift_template=n.get("lift", d.lift_template),
            points_template=n.get("points", d.points_template),
            sd_template=n.get("sd", d.sd_template),
            unit_template=n.get("with_unit", d.unit_template),
            plus=n.get("plus", d.plus),
            minus=n.get("minus", d.minus),
            missing=n.get("missing", d.missing),
        )

    def number(self, value: float | None, digits: int = 0) -> str:
        if _missing(value):
            return self.missing
        rounded = round(value, digits)
        text = f"{abs(rounded):,.{digits}f}".translate(str.maketrans({",": self.thousands, ".": self.decimal}))
        return self.minus + text if rounded < 0 else text

    def signed(self, value: float | None, digits: int = 0) -> str:
        """A difference, with its sign (+3, −2, and 0 without sign)."""
        if _missing(value):
            return self.missing
        rounded = round(value, digits)
        if rounded == 0:
            return self.number(0, digits)
        return (self.plus if rounded > 0 else self.minus) + self.number(abs(rounded), digits)

    def percent(self, share: float | None, digits: int = 0) -> str:
        if _missing(share):
            return self.missing
        return fill(self.percent_template, {"value": self.number(share * 100, digits)})

    def share(self, value: float | None) -> str:
        """A share as a whole percentage, with one decimal when it would otherwise read 0% or 100%."""
        if value is not None and (0 < value < 0.005 or 0.995 <= value < 1):
            return self.percent(value, 1)
        return self.percent(value)

    def points(self, difference: float | None) -> str:
        """A difference between two shares, in percentage points."""
        if _missing(difference):
            return self.missing
        return fill(self.points_template, {"value": self.signed(difference * 100, 0)})

    def lift(self, lift: float | None) -> str:
        if _missing(lift):
            return self.missing
        return fill(self.lift_template, {"value": self.number(lift, 0 if lift >= 10 else 1)})

    def sd(self, std_diff: float | None) -> str:
        """A standardised difference, in standard deviations of the base."""
        if _missing(std_diff):
            return self.missing
        return fill(self.sd_template, {"value": self.signed(std_diff, 1)})

    def with_unit(self, text: str, unit: str | None) -> str:
        return fill(self.unit_template, {"value": text, "unit": unit}) if unit else text

    def digits_for(self, value: float | None, data_type: str = "number") -> int:
        """Digits a mean deserves: none for large values, one for small ones and integer means."""
        if _missing(value) or abs(value) >= 100:
            return 0
        return 2 if abs(value) < 1 and data_type == "number" else 1


def date_text(value: datetime | None, vocab: Mapping) -> str:
    if value is None:
        return vocab["numbers"]["missing"]
    months = vocab["dates"]["months"]
    return fill(
        vocab["dates"]["format"], {"day": str(value.day), "month": months[value.month - 1], "year": str(value.year)}
    )
