"""Persona names composed from a segment's most distinctive traits, in the report's language.

Each trait becomes a word: the declared word for high or low values ("affluent", "no
children"), a level's name, or a default from the rules ("high {label}"). Words are
sorted into adjectives, nouns (people) and phrases by the language's rules in
persona_rules.yml, then composed: "{adjective} {noun}" first (with the language's word
order), the rest after commas: "Affluent catalogue buyers, no children".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from segmentation.personas.traits import Trait
from segmentation.report.i18n import capitalise, fill


@dataclass(frozen=True)
class Word:
    text: str
    kind: str  # adjective | noun | phrase
    people: bool = False  # a noun naming who they are (a refined level: "lawyers"), preferred as the head


def classify(text: str, cfg: Mapping) -> str:
    """Adjective, noun (people) or phrase, by the language's plain rules (persona_rules.yml name.<lang>)."""
    tokens = text.split()
    if not tokens:
        return "phrase"
    if tokens[0].casefold() in {w.casefold() for w in cfg.get("phrase_starts", [])}:
        return "phrase"
    if tokens[0].casefold() in {w.casefold() for w in cfg.get("adjective_starts", [])}:
        return "adjective"  # "plus âgés", "very active"
    endings = tuple(cfg.get("noun_endings", ["s"]))
    nouns = {w.casefold() for w in cfg.get("plural_nouns", [])}
    if len(tokens) == 1:
        word = tokens[0].casefold()
        if cfg.get("single_word_nouns", True) and (word.endswith(endings) or word in nouns):
            return "noun"
        return "adjective"
    head = tokens[-1] if cfg.get("noun_token", "last") == "last" else tokens[0]
    return "noun" if head.casefold().endswith(endings) or head.casefold() in nouns else "phrase"


def at_end_of_scale(trait: Trait) -> bool:
    """For an ordered category named by its level mean: is its telling level the top (or bottom) one?

    "big spenders" fits a segment of mostly High spenders, not one of mostly Average ones.
    """
    if trait.detail is None:
        return True
    levels = list(trait.detail.feature.levels)
    if not levels:
        return True
    return trait.detail.level == (levels[-1] if trait.up else levels[0])


def trait_word(trait: Trait, cfg: Mapping, refinements: Mapping, lang: str) -> Word:
    """The word of one trait: a refinement, else the declared word, else the rules' default."""
    if not at_end_of_scale(trait):
        trait = trait.detail
    feature = trait.feature
    if trait.level is not None:
        refined = refinements.get("levels", {}).get(feature.name, {}).get(trait.level, {})
        if lang in refined:
            kind = refined.get("kind", "noun")
            return Word(refined[lang], kind, people=kind == "noun")
        if feature.is_ordered:  # "average spending": a level of a scale, not a name
            level = feature.level_label(trait.level).casefold()
            return Word(
                fill(cfg.get("ordered_level", cfg["level"]), {"level": level, "label": feature.label}), "phrase"
            )
        return Word(fill(cfg["level"], {"level": feature.level_label(trait.level), "label": feature.label}), "phrase")
    declared = feature.high if trait.up else feature.low
    if declared:
        return Word(declared, classify(declared, cfg))
    key = ("true" if trait.up else "false") if feature.is_boolean else ("high" if trait.up else "low")
    return Word(fill(cfg[key], {"label": feature.label}), "phrase")


def compose(words: Sequence[Word], cfg: Mapping) -> str:
    """One name from ranked words: adjective + noun first, then the rest, in rank order."""
    if not words:
        return cfg["average"]
    adjectives = [w for w in words if w.kind == "adjective"]
    nouns = sorted((w for w in words if w.kind == "noun"), key=lambda w: not w.people)
    if adjectives:
        adjective = adjectives[0]
        noun = nouns[0].text if nouns else cfg["default_noun"]
        prenominal = adjective.text.split()[0].casefold() in {w.casefold() for w in cfg.get("prenominal", [])}
        template = cfg.get("prenominal_template", cfg["adjective_noun"]) if prenominal else cfg["adjective_noun"]
        head = fill(template, {"adjective": adjective.text, "noun": noun})
        used = {id(adjective), id(nouns[0])} if nouns else {id(adjective)}
    else:
        first = nouns[0] if nouns and nouns[0].people else words[0]
        head, used = first.text, {id(first)}
    rest = [w.text for w in words if id(w) not in used]
    return capitalise(cfg.get("separator", ", ").join([head, *rest]))


def distinct_names(candidates: Mapping[int, Sequence[Word]], counts: Mapping[int, int], cfg: Mapping) -> dict[int, str]:
    """Names that differ between segments: a clash takes each segment's next trait, then its number.

    candidates: segment → its words, best first (the named ones, then the next ones);
    counts: how many of them its name uses to start with.
    """
    used = dict(counts)
    names = {s: compose(candidates[s][: used[s]], cfg) for s in candidates}
    for _ in range(3):
        clashing = _clashing(names)
        grown = [s for s in clashing if used[s] < len(candidates[s])]
        if not grown:
            break
        for s in grown:
            used[s] += 1
            names[s] = compose(candidates[s][: used[s]], cfg)
    for s in _clashing(names):
        names[s] = fill(cfg["last_resort"], {"name": names[s], "segment_id": str(s)})
    return names


def _clashing(names: Mapping[int, str]) -> list[int]:
    seen: dict[str, list[int]] = {}
    for segment, name in names.items():
        seen.setdefault(name.casefold(), []).append(segment)
    return sorted(s for group in seen.values() if len(group) > 1 for s in group)
