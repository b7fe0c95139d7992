"""The declared features in one language: labels, units, words for high and low, level names.

Read from ``marts.feature_catalog`` and ``marts.feature_levels`` (generated from the
declaration), so every name the report prints for a feature is the user's own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

LEVEL_SUFFIX = "_level"  # the integer companion of an ordered category (declaration.md)


@dataclass(frozen=True)
class Feature:
    name: str
    position: int
    data_type: str  # number | integer | boolean | category
    role: str  # numeric | ordinal | categorical | profile
    is_ordered: bool
    label: str
    unit: str | None = None
    high: str | None = None  # booleans: the word for true
    low: str | None = None  # booleans: the word for false
    levels: dict[str, str] = field(default_factory=dict)  # value -> label, in declared order
    companion_of: str | None = None  # `<name>_level`: the ordered category it codes

    @property
    def is_category(self) -> bool:
        return self.data_type == "category"

    @property
    def is_boolean(self) -> bool:
        return self.data_type == "boolean"

    def level_label(self, level: str) -> str:
        return self.levels.get(level, level)


class Catalog:
    """Features by name, in declaration order, for one language."""

    def __init__(self, features: Iterable[Feature], lang: str) -> None:
        self.lang = lang
        self._features = {f.name: f for f in sorted(features, key=lambda f: (f.position, f.name))}

    @classmethod
    def from_rows(cls, catalog: Iterable[Mapping], levels: Iterable[Mapping], lang: str) -> Catalog:
        rows = list(catalog)
        names = {r["feature"] for r in rows}
        ordered = {r["feature"] for r in rows if r.get("is_ordered") and r.get("data_type") == "category"}
        level_labels: dict[str, list[tuple[int, str, str]]] = {}
        for r in levels:
            label = r.get(f"label_{lang}") or r.get("label_en") or r["level"]
            level_labels.setdefault(r["feature"], []).append((int(r.get("position") or 0), str(r["level"]), label))

        def companion(name: str) -> str | None:
            parent = name[: -len(LEVEL_SUFFIX)] if name.endswith(LEVEL_SUFFIX) else None
            return parent if parent in ordered and parent in names else None

        features = [
            Feature(
                name=r["feature"],
                position=int(r.get("position") or 0),
                data_type=str(r.get("data_type") or "number"),
                role=str(r.get("role") or "numeric"),
                is_ordered=bool(r.get("is_ordered")),
                label=r.get(f"label_{lang}") or r.get("label_en") or r["feature"],
                unit=r.get(f"unit_{lang}"),
                high=r.get(f"high_{lang}"),
                low=r.get(f"low_{lang}"),
                levels={value: label for _, value, label in sorted(level_labels.get(r["feature"], []))},
                companion_of=companion(r["feature"]),
            )
            for r in rows
        ]
        return cls(features, lang)

    def __contains__(self, name: object) -> bool:
        return name in self._features

    def __iter__(self):
        return iter(self._features.values())

    def __len__(self) -> int:
        return len(self._features)

    def get(self, name: str) -> Feature | None:
        return self._features.get(name)

    def label(self, name: str) -> str:
        feature = self._features.get(name)
        return feature.label if feature else name.replace("_", " ")

    def has_companion(self, name: str) -> bool:
        """Whether an ordered category is also profiled as its `<name>_level` mean."""
        return any(f.companion_of == name for f in self._features.values())
