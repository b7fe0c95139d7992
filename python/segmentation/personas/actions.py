"""Suggested actions and channels, from generic patterns of a segment's traits.

A trait whose feature reads like spend, income, frequency or recency (its label, words or
name hold one of the theme's keywords in persona_rules.yml) gets that theme's actions for
a high or a low value; any other trait gets the generic action worded with its label.
All texts are in persona_rules.yml; nothing here knows a column.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from segmentation.personas.naming import Word
from segmentation.personas.traits import Trait
from segmentation.report.i18n import fill, texts


def theme_of(trait: Trait, themes: Sequence[Mapping]) -> Mapping | None:
    feature = trait.feature
    haystack = " ".join(
        str(x).casefold() for x in (feature.name.replace("_", " "), feature.label, feature.high, feature.low) if x
    )
    for theme in themes:
        if any(keyword.casefold() in haystack for keyword in theme.get("keywords", [])):
            return theme
    return None


def suggest(traits: Sequence[Trait], words: Sequence[Word], rules: Mapping, lang: str) -> tuple[list[str], list[str]]:
    """Actions and channels for the segment's named traits (in rank order), within the limits."""
    cfg = rules["actions"]
    limits = cfg.get("limits", {})
    actions: list[str] = []
    channels: list[str] = []
    for trait, word in zip(traits, words, strict=False):
        direction = "high" if trait.up else "low"
        theme = theme_of(trait, cfg.get("themes", [])) if trait.level is None else None
        if theme is not None and direction in theme:
            text = texts(theme[direction], lang, f"actions.themes.{theme.get('name', '?')}.{direction}")
        elif trait.level is not None:
            text = texts(cfg["level"], lang, "actions.level")
        else:
            text = texts(cfg["generic"][direction], lang, f"actions.generic.{direction}")
        fields = {
            "label": trait.feature.label,
            "word": word.text,
            "level": trait.feature.level_label(trait.level) if trait.level is not None else "",
        }
        actions += [fill(t, fields) for t in text.get("actions", [])]
        channels += [fill(t, fields) for t in text.get("channels", [])]
    if not actions:
        fallback = texts(cfg["fallback"], lang, "actions.fallback")
        actions, channels = list(fallback.get("actions", [])), list(fallback.get("channels", []))
    return (
        list(dict.fromkeys(actions))[: int(limits.get("actions", 4))],
        list(dict.fromkeys(channels))[: int(limits.get("channels", 4))],
    )
