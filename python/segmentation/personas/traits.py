"""What sets a segment apart: its features ranked by how far it sits from all customers.

Means and yes/no shares rank by the standardised difference (segment − base, in
standard deviations of the base); a category contributes its most telling level
(the over-represented one with the largest lift × share). One trait per feature, so
a segment is described by several features rather than by several levels of one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from segmentation.personas.catalog import Catalog, Feature
from segmentation.report.i18n import NumberFormat, fill


@dataclass(frozen=True)
class Trait:
    feature: Feature
    level: str | None
    kind: str  # mean | share
    segment_value: float | None
    base_value: float | None
    lift: float | None
    std_diff: float | None
    nameable: bool  # far enough from the base to be worded in the persona's name
    detail: Trait | None = None  # how it is shown, when not as itself (an ordered category's top level)

    @property
    def shown(self) -> Trait:
        """The trait as printed: an ordered category's code mean reads as its telling level."""
        return self.detail or self

    @property
    def score(self) -> float:
        return abs(self.std_diff or 0.0)

    @property
    def up(self) -> bool:
        return (self.std_diff or 0.0) >= 0

    @property
    def direction(self) -> str:
        if not self.std_diff:
            return "flat"
        return "up" if self.std_diff > 0 else "down"


@dataclass(frozen=True)
class TraitSettings:
    min_std_diff: float = 0.5  # a mean or a yes/no share named "high"/"low" from here
    min_level_share: float = 0.4  # a level named when it holds this share of the segment…
    min_level_lift: float = 1.3  # …and is this much more common than in the base
    min_share: float = 0.05  # a level rarer than this in both segment and base is never shown

    @classmethod
    def from_rules(cls, rules: Mapping) -> TraitSettings:
        cfg = rules.get("traits", {})
        d = cls()
        return cls(
            min_std_diff=float(cfg.get("min_std_diff", d.min_std_diff)),
            min_level_share=float(cfg.get("min_level_share", d.min_level_share)),
            min_level_lift=float(cfg.get("min_level_lift", d.min_level_lift)),
            min_share=float(cfg.get("min_share", d.min_share)),
        )


def _float(value) -> float | None:
    return None if value is None else float(value)


def _trait(feature: Feature, row: Mapping, settings: TraitSettings) -> Trait:
    value, std_diff, lift = _float(row.get("segment_value")), _float(row.get("std_diff")), _float(row.get("lift"))
    far = std_diff is not None and abs(std_diff) >= settings.min_std_diff
    if row.get("level") is not None:
        nameable = (value or 0) >= settings.min_level_share and (lift or 0) >= settings.min_level_lift
    elif feature.is_boolean and far:
        # "married" only when most are; "single" only when few are
        nameable = (
            (value or 0) >= settings.min_level_share if std_diff > 0 else (value or 0) <= 1 - settings.min_level_share
        )
    else:
        nameable = far
    return Trait(
        feature=feature,
        level=None if row.get("level") is None else str(row["level"]),
        kind=str(row.get("kind") or ("mean" if feature.data_type in ("number", "integer") else "share")),
        segment_value=value,
        base_value=_float(row.get("base_value")),
        lift=lift,
        std_diff=std_diff,
        nameable=nameable,
    )


def _best_level(levels: list[Trait], settings: TraitSettings) -> Trait | None:
    """The level that says most about who they are: over-represented, largest lift × share."""
    shown = [t for t in levels if max(t.segment_value or 0, t.base_value or 0) >= settings.min_share]
    over = [t for t in shown if (t.std_diff or 0) > 0 and t.lift is not None]
    if over:
        return max(over, key=lambda t: ((t.lift or 0) * (t.segment_value or 0), t.score))
    return max(shown, key=lambda t: t.score, default=None)


def rank_traits(
    rows: Iterable[Mapping], catalog: Catalog, settings: TraitSettings, excluded: Iterable[str] = ()
) -> list[Trait]:
    """One segment's traits (rows of marts.segment_traits), most distinctive first, one per feature.

    An ordered category that also has its `<name>_level` mean is ranked through that mean
    (its words say "high"/"low"), not through its levels.
    """
    skip = set(excluded)
    plain: list[Trait] = []
    levels: dict[str, list[Trait]] = {}
    for row in rows:
        feature = catalog.get(row["feature"])
        if feature is None or feature.name in skip or (feature.companion_of or "") in skip:
            continue
        trait = _trait(feature, row, settings)
        if trait.level is None:
            plain.append(trait)
        else:
            levels.setdefault(feature.name, []).append(trait)
    for name, items in levels.items():
        best = _best_level(items, settings)
        if best is not None and not catalog.has_companion(name):
            plain.append(best)
    shown = {name: _best_level(items, settings) for name, items in levels.items() if catalog.has_companion(name)}
    plain = [replace(t, detail=shown.get(t.feature.companion_of or "")) for t in plain]
    return sorted(plain, key=lambda t: (-t.score, t.feature.position, t.feature.name))


def by_segment(rows: Iterable[Mapping]) -> dict[int, list[Mapping]]:
    out: dict[int, list[Mapping]] = {}
    for row in rows:
        out.setdefault(int(row["segment_id"]), []).append(row)
    return out


def value_text(
    feature: Feature, kind: str, value: float | None, fmt: NumberFormat, reference: float | None = None
) -> str:
    """A trait's value as printed: a share in %, a mean with its digits and unit."""
    if kind == "share":
        return fmt.percent(value)
    digits = fmt.digits_for(reference if reference is not None else value, feature.data_type)
    return fmt.with_unit(fmt.number(value, digits), feature.unit)


def trait_label(trait: Trait, level_template: str) -> str:
    """A level as "<feature>: <level>" (the language's template), else the feature's label."""
    trait = trait.shown
    if trait.level is None:
        return trait.feature.label
    return fill(level_template, {"feature": trait.feature.label, "level": trait.feature.level_label(trait.level)})


def trait_texts(trait: Trait, fmt: NumberFormat) -> tuple[str, str]:
    """(segment, base) values as printed, with the same digits for both."""
    trait = trait.shown
    reference = trait.base_value if trait.base_value is not None else trait.segment_value
    return (
        value_text(trait.feature, trait.kind, trait.segment_value, fmt, reference),
        value_text(trait.feature, trait.kind, trait.base_value, fmt, reference),
    )
