"""From column profiles to a starter declaration: what `make init` decides, and why.

Pure: it reads the profiles `profiling.py` measured and returns the declaration (a plain
dict in the order of docs/declaration.md) with one decision per column, each with a
one-line reason and what the user should review. Nothing here reads a file or names a
column of any schema: headers are recognised through `vocabulary.yml` (see `wording`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date

from .errors import UserError
from .profiles import (
    BOOLEAN_TOKENS,
    CODE_TOKENS,
    DATE_FORMATS,
    MISSING_TOKENS,
    TRUE_TOKENS,
    ColumnProfile,
    TableProfile,
)
from .wording import (
    Text,
    bracket_range,
    bracket_unit,
    concept_of,
    is_concept,
    label,
    level_fr,
    scale_order,
    snake_case,
    unit_for,
    words_for,
    yes_no_words,
)

MAX_LEVELS = 30
ONE_VALUE_SHARE = 0.99
RESERVED = {"customer_id", "records_merged", "segment", "source_row_number"}
NUMBER_CONCEPTS = ("age", "income", "spend", "purchases", "visits", "calls", "children", "tenure", "recency", "count")


@dataclass(frozen=True)
class Decision:
    column: str
    reason: str
    review: str = ""

    def __str__(self) -> str:
        return f"{self.column}: {self.reason}" + (f" (review: {self.review})" if self.review else "")


@dataclass
class Draft:
    """The starter declaration and the decisions behind it."""

    declaration: dict
    decisions: list[Decision]


@dataclass
class _Entry:
    profile: ColumnProfile
    spec: dict
    reason: str
    review: list[str] = field(default_factory=list)
    concept: str | None = None
    kind: str = ""  # birth_year, date, …: what table-level rules look for


def _fmt(value: float | None) -> str:
    if value is None:
        return "?"
    return f"{value:,.0f}" if float(value).is_integer() or abs(value) >= 100 else f"{value:,.2f}"


def _pct(share: float) -> str:
    return f"{share:.0%}" if share >= 0.01 or share == 0 else f"{share:.1%}"


def _texts(column: str) -> tuple[Text, dict]:
    """Label and, when the header shows one, unit."""
    extra = {}
    unit = bracket_unit(column)
    if unit:
        extra["unit"] = unit
    return label(column), extra


def _missing_spellings(profile: ColumnProfile, category: bool) -> list[str]:
    return sorted(
        token
        for token in profile.tokens
        if token.lower() not in MISSING_TOKENS and not (category and token.lower() in CODE_TOKENS)
    )


def _is_boolean(profile: ColumnProfile) -> bool:
    values = {v.lower() for v, _ in profile.top}
    truths = {v in TRUE_TOKENS for v in values}
    return profile.complete_top and values <= set(BOOLEAN_TOKENS) and truths == {True, False}


def _date_formats(profile: ColumnProfile) -> list[str]:
    """Formats that together read almost every value; day-first wins a tie with month-first."""
    ranked = sorted(
        (fmt for fmt, share in profile.date_shares.items() if share > 0),
        key=lambda fmt: (-profile.date_shares[fmt], DATE_FORMATS.index(fmt)),
    )
    chosen: list[str] = []
    for fmt in ranked:
        twin = fmt.replace("%d/%m", "%m/%d") if "%d/%m" in fmt else fmt.replace("%m/%d", "%d/%m")
        if twin not in chosen and profile.date_shares[fmt] >= 0.005:
            chosen.append(fmt)
    coverage = sum(profile.date_shares[fmt] for fmt in chosen)
    return chosen if chosen and coverage >= 0.95 else []


def _boolean(profile: ColumnProfile, entry: dict, text: Text) -> _Entry:
    minority = 1 - profile.top_share
    entry.update(type="boolean")
    outcome = is_concept("outcome", profile.name)
    if outcome or minority < 0.02:
        why = "looks like an outcome (a response, a complaint)" if outcome else f"{_pct(profile.top_share)} one value"
        entry.update(role="profile", impute="most_frequent", label=text, words=yes_no_words(text))
        return _Entry(
            profile, entry, f"yes/no, {why}: kept for profiling only", ["set role: categorical to cluster on it"]
        )
    entry.update(role="categorical", impute="most_frequent", label=text, words=yes_no_words(text))
    return _Entry(profile, entry, f"yes/no ({_pct(minority)} the rarer value): a categorical feature")


def _numeric(profile: ColumnProfile, entry: dict, text: Text) -> _Entry:
    integer = not profile.decimal_comma and profile.share_integer >= profile.share_number - 1e-9
    kind = "integer" if integer else "number"
    concept = concept_of(profile.name, NUMBER_CONCEPTS)
    notes, review = [kind + (" with decimal commas" if profile.decimal_comma else "")], []
    median = profile.median or 0
    if integer and is_concept("birth_year", profile.name) and 1900 <= median <= 2100:
        entry.update(type="integer", role="ignored", range=[1900, None], impute="none")
        why = "looks like a birth year: age derived from it, range 16–110"
        return _Entry(profile, entry, why, ["the ages are computed at as_of"], kind="birth_year")
    low, high = profile.minimum or 0, profile.maximum or 0
    scale = bracket_range(profile.name)
    if integer and is_concept("scale", profile.name) and low >= 0 and high <= 10 and profile.distinct <= 11:
        values = sorted((v for v, _ in profile.top), key=lambda v: float(v))
        entry.update(type="category", role="ordinal", ordered=True, levels=[{"value": v} for v in values])
        entry.update(impute="most_frequent", label=text)
        return _Entry(profile, entry, f"a {len(values)}-point scale: an ordinal feature", ["check the levels' order"])
    entry.update(type=kind, role="numeric")
    if concept == "age":
        entry["range"] = [16, 110]
        notes.append("an age, range 16–110")
        if low < 16 or high > 110:
            review.append(f"values {_fmt(low)}–{_fmt(high)} seen: those outside 16–110 are quarantined")
    elif scale:
        entry["range"] = [scale[0], scale[1]]
        notes.append(f"a {_fmt(scale[0])}–{_fmt(scale[1])} scale")
    elif is_concept("percent", profile.name) and low >= 0 and high <= 100:
        entry["range"] = [0, 100 if high > 1 else 1]
    elif profile.share_negative < 0.005:
        entry["range"] = [0, None]
        if profile.share_negative > 0:
            review.append(f"{_pct(profile.share_negative)} negative values will be quarantined")
    entry["impute"] = "median"
    p99, median = profile.p99 or 0, profile.median or 0
    skewed = low >= 0 and profile.distinct > 10 and (profile.skewness or 0) > 1 and (median <= 0 or p99 / median > 2.5)
    if skewed:
        entry["skewed"] = True
        notes.append(f"heavy right tail (median {_fmt(median)}, 99th percentile {_fmt(p99)}): log-scaled")
    if not skewed and p99 > 0 and high > 3 * p99:
        review.append(f"its maximum {_fmt(high)} is far above the 99th percentile ({_fmt(p99)}): check it or set range")
    entry["label"] = text
    unit = entry.pop("unit", None) or unit_for(concept)
    if unit:
        entry["unit"] = unit
    entry["words"] = words_for(concept, text)
    if "range" in entry:
        notes.append(f"values {_fmt(low)}–{_fmt(high)}")
    return _Entry(profile, entry, ", ".join(notes) + ": a numeric feature", review, concept=concept)


def _levels(profile: ColumnProfile) -> tuple[list[dict], list[str]]:
    """One level per lower-cased value (its most frequent spelling); rare odd values left out."""
    groups: dict[str, list[tuple[str, int]]] = {}
    for value, count in profile.top:
        groups.setdefault(value.casefold(), []).append((value, count))
    rare = max(2, math.ceil(0.0005 * profile.present))
    levels, left_out = [], []
    for spellings in sorted(groups.values(), key=lambda s: -sum(n for _, n in s)):
        total = sum(n for _, n in spellings)
        if total < rare and len(groups) > 2:
            left_out.append(f"{spellings[0][0]} ({total})")
            continue
        level: dict = {"value": spellings[0][0]}
        if len(spellings) > 1:
            level["spellings"] = [v for v, _ in spellings[1:]]
        french = level_fr(spellings[0][0])
        if french:
            level["fr"] = french
        levels.append(level)
    return levels, left_out


def _category(profile: ColumnProfile, entry: dict, text: Text) -> _Entry:
    free = profile.mean_length > 30 or (profile.distinct > 50 and profile.distinct > 0.5 * profile.present)
    if free:
        entry.update(type="text", role="ignored")
        why = f"free text ({profile.distinct:,} distinct values, {profile.mean_length:.0f} characters on average)"
        return _Entry(profile, entry, why + ": ignored", ["declare it as a category if it is one"])
    entry["type"] = "category"
    if profile.distinct > MAX_LEVELS or not profile.complete_top:
        entry.update(role="profile", impute="most_frequent", label=text)
        why = f"{profile.distinct:,} distinct values (over {MAX_LEVELS}): kept for profiling, any value accepted"
        return _Entry(profile, entry, why, ["group its values into fewer levels to cluster on it"])
    levels, left_out = _levels(profile)
    review = []
    if left_out:
        review.append(f"rare values {', '.join(left_out)} are not levels: their rows are quarantined")
    order = scale_order([level["value"] for level in levels])
    label_column = is_concept("label", profile.name)
    if label_column:
        entry.update(role="label", required=False)
    elif profile.top_share >= ONE_VALUE_SHARE:
        entry["role"] = "profile"
    elif order:
        entry.update(role="ordinal")
    elif is_concept("outcome", profile.name):
        entry["role"] = "profile"
    else:
        entry["role"] = "categorical"
    if order:
        by_value = {level["value"]: level for level in levels}
        levels = [by_value[value] for value in order]
        entry["ordered"] = True
    entry["levels"] = levels
    entry.update(impute="most_frequent", label=text)
    if order:
        entry["words"] = words_for(None, text)
    names = {"label": "the company's own segments: compared with the segments found, never a feature"}
    names.update(profile="one level holds " + _pct(profile.top_share) + ": kept for profiling only")
    names.update(ordinal="levels go from " + order[0] + " to " + order[-1] if order else "", categorical="")
    role = entry["role"]
    why = f"a category of {len(levels)} levels" + (f": {names[role]}" if names.get(role) else f", role {role}")
    if role == "profile" and profile.top_share < ONE_VALUE_SHARE:
        why = f"a category of {len(levels)} levels that looks like an outcome: kept for profiling only"
    return _Entry(profile, entry, why, review)


def _column(profile: ColumnProfile, name: str) -> _Entry:
    text, extra = _texts(profile.name)
    entry: dict = {"column": profile.name, "name": name}
    missing = _missing_spellings(profile, category=profile.share_number < 0.95)
    if missing:
        entry["missing"] = missing
    if profile.present == 0:
        entry.update(type="text", role="ignored")
        return _Entry(profile, entry, "every value is missing: ignored")
    if profile.distinct <= 1:
        entry.update(type="text", role="ignored")
        value = profile.top[0][0] if profile.top else "?"
        return _Entry(profile, entry, f"one value only ({value!r}): ignored")
    if _is_boolean(profile):
        result = _boolean(profile, entry, text)
    elif profile.share_number >= 0.95 and not _date_formats(profile):
        entry.update(extra)
        result = _numeric(profile, entry, text)
    elif formats := _date_formats(profile):
        entry.update(type="date", role="ignored", formats=formats, impute="none")
        shown = " and ".join(formats)
        why = f"a date ({shown})"
        result = _Entry(profile, entry, why, kind="date")
        if "%d/%m/%Y" in formats and profile.date_shares.get("%m/%d/%Y", 0) >= profile.date_shares["%d/%m/%Y"]:
            result.review.append("no day above 12 was seen: check day/month order")
    else:
        result = _category(profile, entry, text)
    if missing:
        result.review.append(f"{', '.join(missing)} read as missing")
    if profile.top_share >= ONE_VALUE_SHARE and result.spec.get("role") not in ("ignored", "profile", "label"):
        result.spec["role"] = "profile"
        result.reason = f"{_pct(profile.top_share)} one value, kept for profiling only"
    return result


def _identifier(profiles: tuple[ColumnProfile, ...]) -> ColumnProfile:
    def ratio(p: ColumnProfile) -> float:
        return min(1.0, p.distinct / p.present) if p.present else 0.0

    def code_like(p: ColumnProfile) -> bool:
        return p.share_integer >= 0.99 or (p.share_number < 0.5 and p.mean_length <= 24 and p.share_with_space < 0.1)

    named = [p for p in profiles if is_concept("identifier", p.name) and ratio(p) >= 0.5 and code_like(p)]
    named = [p for p in named if p.missing <= 0.05 * p.rows and not _date_formats(p)]
    if named:
        return max(named, key=lambda p: (ratio(p), -p.position))
    unique = [p for p in profiles if ratio(p) >= 0.95 and p.missing <= 0.01 * p.rows and code_like(p)]
    if unique:
        return min(unique, key=lambda p: p.position)
    raise UserError(
        "no column looks like a customer identifier (unique values, named like id, customer, client or code): "
        "add one to the export, or write the declaration by hand (docs/declaration.md)."
    )


def _unique_name(base: str, used: set[str]) -> str:
    name, suffix = base, 2
    while name in used or name in RESERVED:
        name, suffix = f"{base}_{suffix}", suffix + 1
    used.add(name)
    return name


def _derived(entries: list[_Entry], used: set[str], decisions: list[Decision]) -> list[dict]:
    derived: list[dict] = []
    by_kind = {kind: [e for e in entries if e.kind == kind] for kind in ("birth_year", "date")}
    has_age = any(e.concept == "age" for e in entries)
    for entry in by_kind["birth_year"][:1]:
        if has_age:
            continue
        name = _unique_name("age", used)
        text = {"en": "age", "fr": "âge"}
        derived.append(
            {"name": name, "derive": {"years_since": entry.spec["name"]}, "type": "integer", "range": [16, 110]}
            | {"role": "numeric", "impute": "median", "label": text, "unit": unit_for("age")}
            | {"words": words_for("age", text)}
        )
        decisions.append(Decision(name, f"derived from {entry.profile.name} (years to as_of), range 16–110"))
    dates = by_kind["date"]
    enrolled = [
        e for e in dates if is_concept("tenure_date", e.profile.name) and not is_concept("update_date", e.profile.name)
    ]
    for entry in enrolled[:1]:
        name = _unique_name("tenure_days", used)
        text = {"en": "tenure", "fr": "ancienneté"}
        derived.append(
            {"name": name, "derive": {"days_since": entry.spec["name"]}, "type": "integer", "range": [0, None]}
            | {"role": "numeric", "impute": "median", "label": text, "unit": unit_for("tenure_days")}
            | {"words": words_for("tenure", text)}
        )
        decisions.append(Decision(name, f"days from {entry.profile.name} to as_of: how long they have been customers"))
    for concept, total, clustered in (("spend", "total_spend", "total"), ("purchases", "total_purchases", "parts")):
        parts = [e for e in entries if e.concept == concept and e.spec.get("role") == "numeric"]
        if len(parts) < 2:
            continue
        name = _unique_name(total, used)
        text = {"en": "total spend", "fr": "dépenses totales"} if concept == "spend" else label(total)
        spec = {"name": name, "derive": {"sum": [e.spec["name"] for e in parts]}, "type": parts[0].spec["type"]}
        spec |= {"range": [0, None]} if all(e.spec.get("range", [None])[0] == 0 for e in parts) else {}
        spec |= {"role": "numeric" if clustered == "total" else "profile", "impute": "median"}
        spec |= {"skewed": True} if any(e.spec.get("skewed") for e in parts) else {}
        spec |= {"label": text, "words": words_for(concept, text)}
        derived.append(spec)
        names = ", ".join(e.profile.name for e in parts)
        if clustered == "total":
            for part in parts:
                part.spec["role"] = "profile"
                part.reason = part.reason.replace(": a numeric feature", f"; part of {name}: kept for profiling")
            decisions.append(Decision(name, f"sum of {names}: a numeric feature (the parts are profiled)"))
        else:
            decisions.append(Decision(name, f"sum of {names}: kept for profiling (the parts are clustered on)"))
    return derived


def infer_declaration(profile: TableProfile, today: date) -> Draft:
    """The starter declaration of a profiled table; `today` is as_of when it has no date."""
    identifier = _identifier(profile.columns)
    used: set[str] = set()
    entries = []
    decisions = [
        Decision(
            identifier.name,
            f"the identifier ({identifier.distinct:,} distinct values in {identifier.rows:,} rows"
            + (": repeated ids are merged into one customer)" if identifier.distinct < identifier.present else ")"),
        )
    ]
    columns: list[dict] = [{"column": identifier.name, "type": "identifier"}]
    used.add("customer_id")
    for column in profile.columns:
        if column is identifier:
            continue
        entries.append(_column(column, _unique_name(snake_case(column.name), used)))
    derived_decisions: list[Decision] = []
    derived = _derived(entries, used, derived_decisions)
    for entry in entries:
        columns.append(entry.spec)
        decisions.append(Decision(entry.profile.name, entry.reason, "; ".join(entry.review)))
    decisions.extend(derived_decisions)
    dates = [e for e in entries if e.kind == "date"]
    latest = [e.profile.date_ranges[f][1] for e in dates for f in e.spec["formats"] if f in e.profile.date_ranges]
    as_of = date.fromisoformat(max(latest)) if latest else today
    declaration: dict = {
        "version": 1,
        "description": f"Customer table {profile.source} ({profile.rows:,} rows, {len(profile.columns)} columns), "
        "declared by make init.",
        "as_of": as_of,
        "missing_values": [],
    }
    if dates:
        updated = [e for e in dates if is_concept("update_date", e.profile.name)] or dates
        declaration["deduplicate"] = {"latest_first": [{"column": updated[0].spec["name"], "order": "desc"}]}
        decisions.append(
            Decision("deduplicate", f"a repeated id keeps the record with the latest {updated[0].profile.name}")
        )
    else:
        decisions.append(Decision("deduplicate", "no date column: a repeated id keeps the row further down the file"))
    why = "the latest date in the file" if latest else "today (no date column): written so runs are reproducible"
    decisions.append(Decision("as_of", f"{as_of.isoformat()}, {why}"))
    declaration["columns"] = columns
    if derived:
        declaration["derived"] = derived
    return Draft(declaration, decisions)
