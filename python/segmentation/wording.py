"""How `make init` reads a header and names a column, in English and French.

Headers are reduced to keys (no accents, camelCase split, lower case, `_` between words)
and matched against the concepts of `vocabulary.yml` (an identifier, a birth year, an
amount spent…); labels are the header written out, translated word by word with that
file's small dictionary, both ways. The vocabulary is data, not code: teaching init a new
word is one line there.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from pathlib import Path

import yaml

VOCABULARY = Path(__file__).with_name("vocabulary.yml")
Text = dict[str, str]  # {en: …, fr: …}


@cache
def vocabulary() -> dict:
    """The vocabulary file, read once (it ships with the package, like a template)."""
    return yaml.safe_load(VOCABULARY.read_text(encoding="utf-8"))


def plain(text: str) -> str:
    """Lower case without accents: how levels and words are compared."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold().strip()


def words_of(header: str) -> list[str]:
    """The words of a header, as written: camelCase, digits, brackets and separators split."""
    text = re.sub(r"\(.*?\)", " ", header)
    text = re.sub(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=[A-Za-z])(?=\d)", " ", text)
    return [w for w in re.split(r"[^\w]+|_", text) if w]


def header_key(header: str) -> str:
    """`NumWebPurchases` → num_web_purchases, `Ancienneté (mois)` → anciennete_mois."""
    text = re.sub(r"[()\[\]]", " ", header)
    text = re.sub(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=[A-Za-z])(?=\d)", " ", text)
    return "_".join(w for w in re.split(r"[^a-z0-9]+", plain(text)) if w)


def snake_case(header: str) -> str:
    """The warehouse name of a column: `[a-z][a-z0-9_]*`."""
    key = header_key(header) or "column"
    return key if key[0].isalpha() else f"c_{key}"


def is_concept(concept: str, header: str) -> bool:
    return re.search(vocabulary()["concepts"][concept], header_key(header)) is not None


def concept_of(header: str, concepts: tuple[str, ...]) -> str | None:
    """The first of `concepts` the header belongs to."""
    return next((c for c in concepts if is_concept(c, header)), None)


def bracket_unit(header: str) -> Text | None:
    """A unit written between brackets in the header: `Ancienneté (mois)`, `Income (k$)`."""
    units = vocabulary()["bracket_units"]
    for inside in re.findall(r"\((.*?)\)", header):
        found = units.get(plain(inside))
        if found:
            return dict(found)
    return None


def bracket_range(header: str) -> tuple[float, float] | None:
    """A scale written in the header: `Spending Score (1-100)` → (1, 100)."""
    match = re.search(r"\(\s*(\d+)\s*[-–à]\s*(\d+)\s*\)", header)
    return (float(match.group(1)), float(match.group(2))) if match else None


def _is_french(words: list[str]) -> bool:
    translations = vocabulary()["translations"]
    french = {plain(v) for v in translations.values()}
    english = set(translations)
    lowered = [plain(w) for w in words]
    return any(w.casefold() != plain(w) for w in words) or sum(w in french and w not in english for w in lowered) > sum(
        w in english and w not in french for w in lowered
    )


def label(header: str) -> Text:
    """{en, fr} label of a column from its header: written out and translated word by word."""
    vocab = vocabulary()
    phrase = vocab["phrases"].get(header_key(header))
    if phrase:
        return dict(phrase)
    abbreviations = vocab["abbreviations"]
    words: list[str] = []
    for word in words_of(header):
        expanded = abbreviations.get(word.casefold(), word)
        words.extend(expanded.split())
    if not words:
        return {"en": header.strip() or "column", "fr": header.strip() or "colonne"}
    translations = vocab["translations"]
    heads = set(vocab["heads"])
    if _is_french(words):
        back = {plain(fr): en for en, fr in translations.items()}
        fr_words = [w.casefold() for w in words]
        en_words = [back.get(plain(w), w.casefold()) for w in words]
        if len(en_words) > 1 and en_words[0] in heads:  # "revenu annuel" → "annual income"
            en_words = [*en_words[1:], en_words[0]]
    else:
        en_words = [w.casefold() for w in words]
        fr_words = []
        for chunk in re.split(r"\b(on|of|per|at)\b", " ".join(en_words)):
            chunk_words = [translations.get(w, w) for w in chunk.split()]
            if len(chunk_words) > 1 and chunk.split()[-1] in heads:  # "web purchases" → "achats web"
                chunk_words = [chunk_words[-1], *chunk_words[:-1]]
            fr_words.extend(chunk_words)
    return {"en": " ".join(_dedupe(en_words)), "fr": " ".join(_dedupe(fr_words))}


def _dedupe(words: list[str]) -> list[str]:
    return [w for i, w in enumerate(words) if i == 0 or w != words[i - 1]]


def words_for(concept: str | None, text: Text) -> dict[str, Text]:
    """The words for high and low values: the concept's, else "high X" / "low X"."""
    known = vocabulary()["words"].get(concept or "")
    if known:
        return {side: dict(known[side]) for side in ("high", "low")}
    return {
        "high": {"en": f"high {text['en']}", "fr": f"{text['fr']} élevé"},
        "low": {"en": f"low {text['en']}", "fr": f"{text['fr']} faible"},
    }


def yes_no_words(text: Text) -> dict[str, Text]:
    """Words for the true and false values of a yes/no column."""
    return {
        "high": {"en": text["en"], "fr": text["fr"]},
        "low": {"en": f"no {text['en']}", "fr": f"sans {text['fr']}"},
    }


def unit_for(concept: str | None) -> Text | None:
    found = vocabulary()["units"].get(concept or "")
    return dict(found) if found else None


def level_fr(value: str) -> str | None:
    """French name of a category level, when the vocabulary knows it and it differs."""
    found = vocabulary()["levels"].get(plain(value))
    return found.capitalize() if found and plain(found) != plain(value) else None


def scale_order(values: list[str]) -> list[str] | None:
    """`values` from low to high when they are the levels of a known scale, else None."""
    keys = {plain(v): v for v in values}
    if len(keys) < 2:
        return None
    for scale in vocabulary()["scales"]:
        order = [plain(level) for level in scale]
        if set(keys) <= set(order):
            return [keys[level] for level in order if level in keys]
    return None
