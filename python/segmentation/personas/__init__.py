"""Personas: each segment named and described from its most distinctive traits.

Everything is worded from the declaration (labels, units, words for high and low values,
level names in ``marts.feature_catalog``/``feature_levels``) and from
``reports/persona_rules.yml`` (thresholds, word order per language, default words,
actions). Nothing here names a column: any declared table gets its personas.

- ``catalog``: the declared features in one language;
- ``traits``: a segment's features ranked by how far it sits from all customers;
- ``naming``: names from the top traits, distinct between segments;
- ``actions``: suggested actions and channels from trait patterns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from segmentation.personas.actions import suggest
from segmentation.personas.catalog import Catalog, Feature
from segmentation.personas.naming import Word, at_end_of_scale, distinct_names, trait_word
from segmentation.personas.traits import Trait, TraitSettings, by_segment, rank_traits, trait_label, trait_texts
from segmentation.report.i18n import NumberFormat, fill, texts, vocabulary

__all__ = ["Catalog", "Feature", "Persona", "Trait", "build_personas"]


@dataclass(frozen=True)
class Persona:
    """A segment described for marketing; every text already in the report's language."""

    segment_id: int
    name: str
    customers: int
    share_of_customers: float
    profile: str  # size and main figures against all customers
    behaviour: str  # the telling shares (levels, yes/no) against all customers
    traits: list[Trait]  # every feature, most distinctive first
    named: list[Trait]  # the traits its name is made of
    actions: list[str]
    channels: list[str]
    mix_feature: str | None  # the category whose mix tells most about it (for its chart)


def _figures(traits: Sequence[Trait], template: str, level_template: str, fmt: NumberFormat) -> list[str]:
    out = []
    for t in traits:
        value, base = trait_texts(t, fmt)
        fields = {"label": trait_label(t, level_template), "value": value, "base": base, "lift": fmt.lift(t.lift)}
        out.append(fill(template, fields))
    return out


def _mix_feature(traits: Sequence[Trait]) -> str | None:
    """The most distinctive category of the segment (ranked by its best level)."""
    return next((t.feature.name for t in traits if t.level is not None), None)


def build_personas(
    profiles: Sequence[Mapping],
    trait_rows: Sequence[Mapping],
    catalog: Catalog,
    rules: Mapping,
    lang: str = "en",
) -> list[Persona]:
    """One persona per row of marts.segment_profiles, in segment order, with distinct names."""
    vocab = vocabulary(rules, lang)
    fmt = NumberFormat.from_vocabulary(vocab)
    name_cfg = texts(rules["name"], lang, "name")
    lines = texts(rules["lines"], lang, "lines")
    settings = TraitSettings.from_rules(rules)
    refinements = rules.get("refinements") or {}
    excluded = [f for f in refinements.get("exclude_features", []) if f in catalog]
    most = int(rules["traits"].get("name_traits", 3))
    level_template = vocab["traits"]["level_label"]
    rows = by_segment(trait_rows)

    ranked: dict[int, list[Trait]] = {}
    candidates: dict[int, list[Word]] = {}
    counts: dict[int, int] = {}
    for p in profiles:
        segment = int(p["segment_id"])
        traits = rank_traits(rows.get(segment, []), catalog, settings, excluded)
        ranked[segment] = traits
        named = [t for t in traits if t.nameable]
        # to tell apart two segments whose names clash: the next traits that lean one way at least
        spare = [t for t in traits if not t.nameable and t.score >= settings.min_std_diff / 2][:2]
        words = [trait_word(t, name_cfg, refinements, lang) for t in named + spare]
        # two features may share their word ("big spenders" for two amounts): a name says it once
        seen: set[str] = set()
        candidates[segment] = [w for w in words if not (w.text.casefold() in seen or seen.add(w.text.casefold()))]
        counts[segment] = min(len(named), most, len(candidates[segment]))
    names = distinct_names(candidates, counts, name_cfg)

    personas = []
    for p in profiles:
        segment = int(p["segment_id"])
        traits = ranked[segment]
        named = [t for t in traits if t.nameable][: max(counts[segment], 1)]
        means = [t for t in traits if t.shown.kind == "mean"][:3]
        shares = [t for t in traits if t.shown.kind == "share"][:3] or [t for t in traits if t.shown.kind == "mean"][
            3:5
        ]
        share = float(p.get("share_of_customers") or 0.0)
        profile = fill(
            lines["profile"],
            {
                "customers": fmt.number(p["customers"]),
                "share": fmt.share(share),
                "figures": lines.get("separator", "; ").join(_figures(means, lines["figure"], level_template, fmt)),
            },
        )
        behaviour = (
            fill(
                lines["behaviour"],
                {
                    "figures": lines.get("separator", "; ").join(
                        _figures(shares, lines["share_figure"], level_template, fmt)
                    )
                },
            )
            if shares
            else lines["nothing"]
        )
        # an ordered category whose telling level is a middle one ("average") acts as that level
        acting = [t if at_end_of_scale(t) else t.detail for t in traits if t.nameable][:4]
        actions, channels = suggest(acting, candidates[segment][:4], rules, lang)
        personas.append(
            Persona(
                segment_id=segment,
                name=names[segment],
                customers=int(p["customers"]),
                share_of_customers=share,
                profile=profile,
                behaviour=behaviour,
                traits=traits,
                named=named,
                actions=actions,
                channels=channels,
                mix_feature=_mix_feature(traits),
            )
        )
    return personas
