"""Personas: names, portraits and suggested actions derived from segment profiles.

The wording is data, not code: ``reports/persona_rules.yml`` says which words
apply when (thresholds and texts per language) and ``reports/i18n/<lang>.yml``
holds the vocabulary (profession names, feature labels, number formats). Python
only computes the metrics the rules test, picks the first matching rule per slot
and fills the rules' templates, so marketing can reword or re-threshold personas
for any segmentation without touching this module.
"""

from __future__ import annotations

import logging
import math
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from segmentation.errors import UserError

logger = logging.getLogger(__name__)

# Profile columns that can be compared with the whole base (weighted by segment size).
PROFILE_MEASURES = (
    "mean_age",
    "share_married",
    "share_graduated",
    "share_female",
    "mean_family_size",
    "mean_work_experience",
    "share_spending_low",
    "share_spending_average",
    "share_spending_high",
)
SPENDING_LEVELS = ("low", "average", "high")
NAME_SLOTS = ("age", "profession", "spending")
OPERATORS = {
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "in": lambda a, b: a in b,
}
METRICS = frozenset(
    [f"{prefix}{m}{suffix}" for m in PROFILE_MEASURES for prefix, suffix in (("", ""), ("base_", ""))]
    + [f"{m}_{suffix}" for m in PROFILE_MEASURES for suffix in ("vs_base", "lift")]
    + [
        "segment_id",
        "customers",
        "share_of_customers",
        "share_of_high_spenders",
        "top_profession",
        "top_profession_share",
        "top_profession_lift",
        "top2_profession_share",
        "dominant_spending_level",
    ]
)


class RulesError(UserError):
    """persona_rules.yml or an i18n file is incomplete or refers to something unknown."""


@dataclass(frozen=True)
class Persona:
    """A segment described for marketing; every text already in the report's language."""

    segment_id: int
    name: str
    portrait: str
    demographics: str
    behaviour: str
    traits: list[dict]  # label, lift, lift_text, segment_text, base_text, direction ('up' | 'down')
    actions: list[str]
    channels: list[str]


# --- loading -----------------------------------------------------------------------------


def _read_yaml(path: Path) -> dict:
    try:
        with path.open(encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except yaml.YAMLError as exc:
        raise RulesError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise RulesError(f"{path}: expected a mapping at the top level")
    return data


def load_rules(path: Path) -> dict:
    """Read the persona rules, plus the vocabularies in ``i18n/`` beside them (under key "i18n").

    The rules are checked here, so a typo in a metric name fails before any report is drawn.
    """
    path = Path(path)
    rules = _read_yaml(path)
    i18n_dir = path.parent / rules.get("i18n_dir", "i18n")
    rules["i18n"] = {p.stem: _read_yaml(p) for p in sorted(i18n_dir.glob("*.yml"))}
    for key in ("name", "slots", "lines", "traits", "actions"):
        if key not in rules:
            raise RulesError(f"{path}: missing section '{key}'")
    for slot in NAME_SLOTS:
        if slot not in rules["slots"]:
            raise RulesError(f"{path}: slots: missing slot '{slot}'")
    for slot, spec in rules["slots"].items():
        for i, rule in enumerate(spec.get("rules", [])):
            _check_condition(rule.get("when", {}), f"{path}: slots.{slot}.rules[{i}].when")
    for i, rule in enumerate(rules["actions"].get("rules", [])):
        _check_condition(rule.get("when", {}), f"{path}: actions.rules[{i}].when")
    _check_compare(rules.get("compare", {}), f"{path}: compare")
    return rules


def _check_compare(compare: Any, where: str) -> None:
    """The heatmap's settings: lists of feature names, categories to skip per feature."""
    if not isinstance(compare, Mapping):
        raise RulesError(f"{where}: expected a mapping")
    for key in ("features", "exclude_features"):
        value = compare.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise RulesError(f"{where}.{key}: expected a list of feature names")
    skip = compare.get("skip_levels") or {}
    if not isinstance(skip, Mapping) or not all(isinstance(v, list) for v in skip.values()):
        raise RulesError(f"{where}.skip_levels: expected feature: [categories]")
    if not isinstance(compare.get("names_up_to", 6), int):
        raise RulesError(f"{where}.names_up_to: expected a whole number")


def _check_condition(condition: Mapping, where: str) -> None:
    if not isinstance(condition, Mapping):
        raise RulesError(f"{where}: expected a mapping of metric: {{test: value}}")
    for key, test in condition.items():
        if key in ("any", "all"):
            for j, sub in enumerate(test):
                _check_condition(sub, f"{where}.{key}[{j}]")
            continue
        if key not in METRICS:
            raise RulesError(f"{where}: unknown metric '{key}' (known: {', '.join(sorted(METRICS))})")
        if not isinstance(test, Mapping) or not set(test) <= set(OPERATORS):
            raise RulesError(f"{where}.{key}: expected tests among {', '.join(OPERATORS)}")


def vocabulary(rules: Mapping, lang: str) -> dict:
    """The i18n vocabulary for one language, or a clear error naming those available."""
    try:
        return rules["i18n"][lang]
    except KeyError:
        available = ", ".join(sorted(rules.get("i18n", {}))) or "none"
        raise RulesError(f"no vocabulary for language '{lang}' (available: {available})") from None


# --- numbers -------------------------------------------------------------------------------


@dataclass(frozen=True)
class NumberFormat:
    """Numbers as the report's language writes them (separators, percent sign, lift)."""

    decimal: str = "."
    thousands: str = ","
    percent_template: str = "{value}%"
    lift_template: str = "×{value}"
    points_template: str = "{value} pts"
    plus: str = "+"
    minus: str = "−"
    missing: str = "–"

    @classmethod
    def from_vocabulary(cls, vocab: Mapping) -> NumberFormat:
        n = vocab.get("numbers", {})
        defaults = cls()
        return cls(
            decimal=n.get("decimal", defaults.decimal),
            thousands=n.get("thousands", defaults.thousands),
            percent_template=n.get("percent", defaults.percent_template),
            lift_template=n.get("lift", defaults.lift_template),
            points_template=n.get("points", defaults.points_template),
            plus=n.get("plus", defaults.plus),
            minus=n.get("minus", defaults.minus),
            missing=n.get("missing", defaults.missing),
        )

    def number(self, value: float | None, digits: int = 0) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return self.missing
        rounded = round(value, digits)
        text = f"{abs(rounded):,.{digits}f}".translate(str.maketrans({",": self.thousands, ".": self.decimal}))
        return self.minus + text if rounded < 0 else text

    def signed(self, value: float | None, digits: int = 0) -> str:
        """A difference, with its sign (+3, −2, and 0 without sign)."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return self.missing
        rounded = round(value, digits)
        if rounded == 0:
            return self.number(0, digits)
        return (self.plus if rounded > 0 else self.minus) + self.number(abs(rounded), digits)

    def percent(self, share: float | None, digits: int = 0) -> str:
        if share is None or (isinstance(share, float) and math.isnan(share)):
            return self.missing
        return fill(self.percent_template, {"value": self.number(share * 100, digits)})

    def points(self, difference: float | None) -> str:
        """A difference between two shares, in percentage points."""
        if difference is None:
            return self.missing
        return fill(self.points_template, {"value": self.signed(difference * 100, 0)})

    def lift(self, lift: float | None) -> str:
        if lift is None or (isinstance(lift, float) and math.isnan(lift)):
            return self.missing
        return fill(self.lift_template, {"value": self.number(lift, 0 if lift >= 10 else 1)})


# --- templates -------------------------------------------------------------------------------

_FORMATTER = string.Formatter()


def fill(template: str, fields: Mapping[str, Any]) -> str:
    """Fill a template from the rules/i18n files with plain named fields.

    Only ``{name}`` fields are allowed (no attribute or index access, no format spec):
    values are pre-formatted strings, and a template can never reach into objects.
    """
    names = [name for _, name, spec, conv in _FORMATTER.parse(template) if name is not None]
    for name in names:
        if not name.isidentifier():
            raise RulesError(f"template {template!r}: field {{{name}}} must be a plain name")
        if name not in fields:
            raise RulesError(f"template {template!r}: unknown field {{{name}}} (known: {', '.join(sorted(fields))})")
    return template.format_map({name: fields[name] for name in names})


def capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def _texts(node: Mapping, lang: str, where: str) -> Any:
    """The language's entry of a per-language mapping ({en: ..., fr: ...})."""
    if not isinstance(node, Mapping) or lang not in node:
        raise RulesError(f"{where}: no text for language '{lang}'")
    return node[lang]


# --- metrics -------------------------------------------------------------------------------


def _ratio(value: float | None, base: float | None) -> float | None:
    if value is None or base is None or base == 0:
        return None
    return value / base


def base_profile(profiles: Sequence[Mapping]) -> dict[str, float | None]:
    """The whole base's value of each profile measure: segment values weighted by size."""
    base: dict[str, float | None] = {}
    for measure in PROFILE_MEASURES:
        pairs = [(p["customers"], p[measure]) for p in profiles if p.get(measure) is not None]
        weight = sum(c for c, _ in pairs)
        base[measure] = sum(c * v for c, v in pairs) / weight if weight else None
    return base


def segment_metrics(profile: Mapping, base: Mapping, mix: Sequence[Mapping]) -> dict[str, Any]:
    """Everything the rules may test, for one segment (see the header of persona_rules.yml)."""
    metrics: dict[str, Any] = {
        "segment_id": int(profile["segment_id"]),
        "customers": profile["customers"],
        "share_of_customers": profile.get("share_of_customers"),
        "share_of_high_spenders": profile.get("share_of_high_spenders"),
    }
    for measure in PROFILE_MEASURES:
        value, base_value = profile.get(measure), base.get(measure)
        metrics[measure] = value
        metrics[f"base_{measure}"] = base_value
        metrics[f"{measure}_vs_base"] = None if value is None or base_value is None else value - base_value
        metrics[f"{measure}_lift"] = _ratio(value, base_value)
    ranked = sorted(mix, key=lambda r: (r.get("profession_rank") or 0, -(r.get("share") or 0)))
    top = ranked[0] if ranked else {}
    metrics["top_profession"] = top.get("profession")
    metrics["top_profession_share"] = top.get("share")
    metrics["top_profession_lift"] = top.get("lift")
    metrics["top2_profession_share"] = sum((r.get("share") or 0) for r in ranked[:2]) if ranked else None
    levels = {level: profile.get(f"share_spending_{level}") or 0 for level in SPENDING_LEVELS}
    metrics["dominant_spending_level"] = max(SPENDING_LEVELS, key=lambda level: levels[level])
    return metrics


def matches(condition: Mapping, metrics: Mapping[str, Any]) -> bool:
    """Whether a rule's `when` holds. A test on a missing (NULL) metric does not hold."""
    for key, test in condition.items():
        if key == "any":
            if not any(matches(sub, metrics) for sub in test):
                return False
            continue
        if key == "all":
            if not all(matches(sub, metrics) for sub in test):
                return False
            continue
        value = metrics[key]
        if value is None:
            return False
        for op, expected in test.items():
            if not OPERATORS[op](value, expected):
                return False
    return True


def profession_words(vocab: Mapping, profession: str | None) -> dict[str, str]:
    if profession is None:
        return {"label": vocab.get("numbers", {}).get("missing", "–"), "plural": ""}
    known = vocab.get("professions", {}).get(profession)
    if known:
        return known
    logger.warning("no vocabulary for profession %r; using the fallback wording", profession)
    fallback = vocab.get("profession_fallback", {"label": "{profession}", "plural": "{profession}"})
    return {key: fill(value, {"profession": profession}) for key, value in fallback.items()}


def _text_fields(metrics: Mapping, mix: Sequence[Mapping], vocab: Mapping, fmt: NumberFormat) -> dict[str, str]:
    """The segment's figures as text, for the rules' {placeholders}."""
    fields: dict[str, str] = {}
    for key, value in metrics.items():
        if isinstance(value, str):
            fields[key] = value
        elif key.endswith("_lift"):
            fields[key] = fmt.lift(value)
        elif key.startswith(("share_", "base_share_", "top_profession_share", "top2_")):
            fields[key] = fmt.percent(value)
        elif key.endswith("_vs_base"):
            fields[key] = fmt.points(value) if key.startswith("share_") else fmt.signed(value, 1)
        elif key in ("segment_id", "customers"):
            fields[key] = fmt.number(value, 0)
        else:  # means
            fields[key] = fmt.number(value, 0 if "age" in key else 1)
    words = profession_words(vocab, metrics["top_profession"])
    fields["top_profession"] = metrics["top_profession"] or ""
    fields["top_profession_label"] = words["label"]
    fields["top_profession_plural"] = words["plural"]
    ranked = sorted(mix, key=lambda r: r.get("profession_rank") or 0)[:3]
    fields["top_professions"] = vocab.get("list_separator", ", ").join(
        profession_words(vocab, r["profession"])["label"] for r in ranked
    )
    return fields


# --- slots and names -------------------------------------------------------------------------


def pick(slot: Mapping, metrics: Mapping, lang: str, where: str) -> dict[str, str]:
    """The texts of the first rule of a slot whose condition holds (unfilled templates)."""
    for i, rule in enumerate(slot.get("rules", [])):
        if matches(rule.get("when", {}), metrics):
            return dict(_texts(rule.get("text", {}), lang, f"{where}.rules[{i}].text") or {})
    return {}


def _distinctiveness(slot: Mapping, metrics: Mapping) -> float:
    """How far the segment sits from the base on the slot's metric: |ln(lift)|."""
    lift = metrics.get(f"{slot.get('metric')}_lift")
    if not lift or lift <= 0:
        return 0.0
    return abs(math.log(lift))


@dataclass
class _Draft:
    segment_id: int
    metrics: dict
    fields: dict
    slots: dict  # slot name -> filled texts
    name: str


def _draft(profile: Mapping, base: Mapping, mix: Sequence[Mapping], rules: Mapping, vocab: Mapping, lang: str):
    fmt = NumberFormat.from_vocabulary(vocab)
    metrics = segment_metrics(profile, base, mix)
    fields = _text_fields(metrics, mix, vocab, fmt)
    slots = {}
    for slot_name, slot in rules["slots"].items():
        raw = pick(slot, metrics, lang, f"slots.{slot_name}")
        # Texts are filled with the figures now; *_template texts are filled later with slot words.
        slots[slot_name] = {
            key: (value if key.endswith("_template") else fill(value, fields)) for key, value in raw.items()
        }
    name_template = _slot_override(slots, "name_template") or _texts(rules["name"]["template"], lang, "name.template")
    name = capitalise(fill(name_template, {s: slots[s].get("name", "") for s in NAME_SLOTS}).strip())
    return _Draft(int(profile["segment_id"]), metrics, fields, slots, name)


def _slot_override(slots: Mapping[str, Mapping], key: str) -> str | None:
    """A template set by one of the name slots' rules (e.g. French word order for young)."""
    for slot in NAME_SLOTS:
        if key in slots.get(slot, {}):
            return slots[slot][key]
    return None


def _ranked_slots(draft: _Draft, slot_names: Sequence[str], rules: Mapping) -> list[str]:
    known = [s for s in slot_names if s in rules["slots"]]
    return sorted(known, key=lambda s: -_distinctiveness(rules["slots"][s], draft.metrics))


def _disambiguate(drafts: list[_Draft], rules: Mapping, lang: str) -> dict[int, str]:
    """Unique names: a clash is resolved with each segment's most telling qualifier."""
    qualifier_slots = rules["name"].get("qualifier_slots", [])
    qualified = _texts(rules["name"]["qualified"], lang, "name.qualified")
    last_resort = _texts(rules["name"]["last_resort"], lang, "name.last_resort")
    names = {d.segment_id: d.name for d in drafts}
    groups: dict[str, list[_Draft]] = {}
    for d in drafts:
        groups.setdefault(d.name.casefold(), []).append(d)
    for group in groups.values():
        if len(group) < 2:
            continue
        for d in group:
            others = [o for o in group if o is not d]
            qualifier = None
            for slot in _ranked_slots(d, qualifier_slots, rules):
                short = d.slots[slot].get("short")
                if short and all(o.slots[slot].get("short") != short for o in others):
                    qualifier = short
                    break
            if qualifier is not None:
                names[d.segment_id] = fill(qualified, {"name": d.name, "qualifier": qualifier})
    # Anything still clashing (identical profiles, or a qualified name equal to another name).
    seen: dict[str, int] = {}
    for d in sorted(drafts, key=lambda d: d.segment_id):
        key = names[d.segment_id].casefold()
        clash = sum(1 for n in names.values() if n.casefold() == key) > 1
        if clash or key in seen:
            names[d.segment_id] = fill(last_resort, {"name": names[d.segment_id], "segment_id": str(d.segment_id)})
        seen[names[d.segment_id].casefold()] = d.segment_id
    return names


# --- traits and actions ----------------------------------------------------------------------


def distinguishing_traits(
    trait_rows: Sequence[Mapping], rules: Mapping, vocab: Mapping, fmt: NumberFormat
) -> list[dict]:
    """The 3–5 features (or categories) of one segment furthest from the base, labelled.

    Strength is |ln(lift)|. Categories too rare in both the segment and the base
    are ignored, and each feature contributes at most ``max_per_feature`` entries.
    """
    cfg = rules["traits"]
    share_features = set(cfg.get("share_features", []))
    excluded = set(cfg.get("exclude_features", []))
    excluded_numeric = set(cfg.get("exclude_numeric_features", []))
    floor = cfg.get("lift_floor", 0.02)
    candidates = []
    for row in trait_rows:
        feature, level, lift = row["feature"], row.get("level"), row.get("lift")
        value, base_value = row.get("segment_value"), row.get("base_value")
        if feature in excluded or (level is None and feature in excluded_numeric):
            continue
        if lift is None or value is None or not base_value:
            continue
        is_share = level is not None or feature in share_features
        if is_share and max(value, base_value) < cfg.get("min_share", 0.05):
            continue
        strength = abs(math.log(min(max(lift, floor), 1 / floor)))
        candidates.append({"row": row, "strength": strength, "is_share": is_share, "up": lift >= 1})

    min_strength = cfg.get("min_strength", 0)
    per_feature: dict[str, list[dict]] = {}
    for c in candidates:
        per_feature.setdefault(c["row"]["feature"], []).append(c)
    pool = []
    for items in per_feature.values():
        items.sort(key=lambda c: -c["strength"])
        if cfg.get("prefer_over_represented", True) and items[0]["row"].get("level") is not None:
            # Say what they are rather than what they are not, when that is itself telling.
            strong_up = [c for c in items if c["up"] and c["strength"] >= min_strength]
            items = strong_up + [c for c in items if c not in strong_up]
        pool.extend(items[: cfg.get("max_per_feature", 1)])
    pool.sort(key=lambda c: -c["strength"])
    picked = [c for c in pool if c["strength"] >= min_strength][: cfg.get("max_count", 5)]
    if len(picked) < cfg.get("min_count", 3):
        picked = pool[: cfg.get("min_count", 3)]
    return [_trait_entry(c, vocab, fmt) for c in picked]


def _feature_words(vocab: Mapping, feature: str) -> dict:
    known = vocab.get("features", {}).get(feature)
    if known:
        return {**vocab.get("feature_fallback", {}), **known, "label": known.get("label", feature)}
    fallback = vocab.get("feature_fallback", {"label": "{feature}", "value": "{value}", "digits": 1})
    return {**fallback, "label": fill(fallback.get("label", "{feature}"), {"feature": feature})}


def _trait_entry(candidate: Mapping, vocab: Mapping, fmt: NumberFormat) -> dict:
    row = candidate["row"]
    feature, level = row["feature"], row.get("level")
    words = _feature_words(vocab, feature)
    if level is not None:
        if feature == "profession":
            level_label = profession_words(vocab, level)["label"]
        else:
            level_label = vocab.get("levels", {}).get(feature, {}).get(level, level)
        label = fill(vocab["traits"]["level_label"], {"feature": words["label"], "level": level_label})
    else:
        label = words["label"]
    if candidate["is_share"]:
        seg_text, base_text = fmt.percent(row["segment_value"]), fmt.percent(row["base_value"])
    else:
        digits = int(words.get("digits", 1))
        template = words.get("value", "{value}")
        seg_text = fill(template, {"value": fmt.number(row["segment_value"], digits)})
        base_text = fill(template, {"value": fmt.number(row["base_value"], digits)})
    return {
        "label": label,
        "lift": float(row["lift"]),
        "lift_text": fmt.lift(row["lift"]),
        "segment_text": seg_text,
        "base_text": base_text,
        "direction": "up" if candidate["up"] else "down",
        "strength": candidate["strength"],
    }


def suggested_actions(metrics: Mapping, fields: Mapping, rules: Mapping, lang: str) -> tuple[list[str], list[str]]:
    """Actions and channels of every matching rule, in rule order, deduplicated, capped."""
    spec = rules["actions"]
    limits = spec.get("limits", {})
    actions: list[str] = []
    channels: list[str] = []
    matched = False
    for i, rule in enumerate(spec.get("rules", [])):
        if not matches(rule.get("when", {}), metrics):
            continue
        matched = True
        texts = _texts(rule.get("text", {}), lang, f"actions.rules[{i}].text")
        actions += [fill(t, fields) for t in texts.get("actions") or []]
        channels += [fill(t, fields) for t in texts.get("channels") or []]
    if not matched and "fallback" in spec:
        texts = _texts(spec["fallback"], lang, "actions.fallback")
        actions += [fill(t, fields) for t in texts.get("actions") or []]
        channels += [fill(t, fields) for t in texts.get("channels") or []]
    actions = list(dict.fromkeys(actions))[: limits.get("actions", 4)]
    channels = list(dict.fromkeys(channels))[: limits.get("channels", 4)]
    return actions, channels


# --- public entry point ----------------------------------------------------------------------


def build_personas(
    profiles: list[dict],
    traits: list[dict],
    profession_mix: list[dict],
    rules: dict,
    lang: str = "en",
) -> list[Persona]:
    """One persona per segment profile, in segment order, with unique names.

    profiles, traits, profession_mix: rows of marts.segment_profiles, segment_traits
    and segment_profession_mix (as dicts); rules: from load_rules().
    """
    vocab = vocabulary(rules, lang)
    fmt = NumberFormat.from_vocabulary(vocab)
    profiles = sorted(profiles, key=lambda p: p["segment_id"])
    base = base_profile(profiles)
    mix_by_segment: dict[int, list[dict]] = {}
    for row in profession_mix:
        mix_by_segment.setdefault(int(row["segment_id"]), []).append(row)
    traits_by_segment: dict[int, list[dict]] = {}
    for row in traits:
        traits_by_segment.setdefault(int(row["segment_id"]), []).append(row)

    drafts = [_draft(p, base, mix_by_segment.get(int(p["segment_id"]), []), rules, vocab, lang) for p in profiles]
    names = _disambiguate(drafts, rules, lang)
    separator = vocab.get("list_separator", ", ")
    personas = []
    for d in drafts:
        tail_slots = _ranked_slots(d, rules["name"].get("tail_slots", []), rules)
        tail = next((d.slots[s]["tail"] for s in tail_slots if d.slots[s].get("tail")), "")
        portrait_template = _slot_override(d.slots, "portrait_template") or _texts(
            rules["name"]["portrait_template"], lang, "name.portrait_template"
        )
        portrait_fields = {s: d.slots[s].get("portrait", "") for s in NAME_SLOTS} | {"tail": tail}
        lines = rules["lines"]
        parts = [d.slots[s]["phrase"] for s in lines["demographics"]["slots"] if d.slots.get(s, {}).get("phrase")]
        demographics = fill(
            _texts(lines["demographics"]["template"], lang, "lines.demographics.template"),
            {"parts": separator.join(parts)},
        )
        behaviour = fill(
            _texts(lines["behaviour"]["template"], lang, "lines.behaviour.template"),
            {s: d.slots[s].get("phrase", "") for s in ("spending", "profession")},
        )
        actions, channels = suggested_actions(d.metrics, d.fields, rules, lang)
        personas.append(
            Persona(
                segment_id=d.segment_id,
                name=names[d.segment_id],
                portrait=capitalise(fill(portrait_template, portrait_fields)),
                demographics=capitalise(demographics),
                behaviour=capitalise(behaviour),
                traits=distinguishing_traits(traits_by_segment.get(d.segment_id, []), rules, vocab, fmt),
                actions=actions,
                channels=channels,
            )
        )
        logger.debug("segment %d: %s", d.segment_id, names[d.segment_id])
    return personas
