"""Persona naming, descriptions and actions from a declared catalog and the shipped rules."""

from __future__ import annotations

import shutil

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segmentation.config import load_settings
from segmentation.personas import Catalog, build_personas
from segmentation.personas.naming import classify
from segmentation.report.i18n import NumberFormat, RulesError, load_rules, vocabulary

RULES_PATH = load_settings().persona_rules_path


@pytest.fixture(scope="module")
def rules():
    return load_rules(RULES_PATH)


def feature(name, data_type="number", label=None, high=None, low=None, unit=None, position=1, **extra):
    label = label or (name.replace("_", " "), name.replace("_", " "))
    return {
        "feature": name, "position": position, "data_type": data_type, "role": extra.get("role", "numeric"),
        "is_ordered": extra.get("is_ordered", False), "label_en": label[0], "label_fr": label[1],
        "unit_en": unit, "unit_fr": unit,
        "high_en": high[0] if high else None, "high_fr": high[1] if high else None,
        "low_en": low[0] if low else None, "low_fr": low[1] if low else None,
    }  # fmt: skip


def mean(segment, name, value, base, sd):
    return {"segment_id": segment, "feature": name, "level": None, "kind": "mean", "segment_value": value,
            "base_value": base, "lift": value / base if base else None, "std_diff": (value - base) / sd}  # fmt: skip


def share(segment, name, value, base, level=None):
    sd = (base * (1 - base)) ** 0.5
    return {"segment_id": segment, "feature": name, "level": level, "kind": "share", "segment_value": value,
            "base_value": base, "lift": value / base if base else None,
            "std_diff": (value - base) / sd if sd else None}  # fmt: skip


def profiles(*sizes):
    total = sum(sizes)
    return [{"segment_id": i, "customers": n, "share_of_customers": n / total} for i, n in enumerate(sizes, start=1)]


RETAIL = [
    feature("income", high=("affluent", "aisés"), low=("modest", "modestes"), unit="€", position=1),
    feature("num_catalog_purchases", "integer", ("catalogue purchases", "achats sur catalogue"),
            high=("catalogue buyers", "acheteurs catalogue"), position=2),
    feature("kidhome", "integer", ("children at home", "enfants au foyer"), high=("with children", "avec enfants"),
            low=("no children", "sans enfants"), position=3),
    feature("visits", "integer", position=4),
    feature("region", "category", position=5, role="categorical"),
]  # fmt: skip


def retail_traits(segment, income, catalogue, kids, visits=5.0, north=0.5):
    return [
        mean(segment, "income", income, 50_000, 15_000),
        mean(segment, "num_catalog_purchases", catalogue, 3, 2),
        mean(segment, "kidhome", kids, 0.7, 0.6),
        mean(segment, "visits", visits, 5, 2),
        share(segment, "region", north, 0.5, "North"),
        share(segment, "region", 1 - north, 0.5, "South"),
    ]


def names(rules, catalog_rows, traits, sizes, lang="en", levels=()):
    catalog = Catalog.from_rows(catalog_rows, levels, lang)
    return [p.name for p in build_personas(profiles(*sizes), traits, catalog, rules, lang)]


def test_names_compose_the_declared_words_of_the_top_traits(rules):
    traits = retail_traits(1, 80_000, 7, 0.05) + retail_traits(2, 30_000, 2.5, 1.5)
    assert names(rules, RETAIL, traits, (100, 100)) == [
        "Affluent catalogue buyers, no children",
        "Modest customers, with children",
    ]
    assert names(rules, RETAIL, traits, (100, 100), "fr") == [
        "Acheteurs catalogue aisés, sans enfants",
        "Clients modestes, avec enfants",
    ]


def test_features_without_words_get_the_languages_default_wording(rules):
    traits = retail_traits(1, 50_000, 3, 0.7, visits=9) + retail_traits(2, 50_000, 3, 0.7, visits=1)
    assert names(rules, RETAIL, traits, (100, 100)) == ["High visits", "Low visits"]
    assert names(rules, RETAIL, traits, (100, 100), "fr") == [
        "Visits au-dessus de la moyenne",
        "Visits sous la moyenne",
    ]


@pytest.mark.parametrize("north, named", [(0.64, False), (0.66, True)])
def test_a_level_is_named_from_its_share_and_lift(rules, north, named):
    """North is named at ≥ 40 % of the segment and ×1.3 the base (0.5 × 1.3 = 0.65)."""
    traits = retail_traits(1, 50_000, 3, 0.7, north=north) + retail_traits(2, 50_000, 3, 0.7, north=1 - north)
    persona = build_personas(profiles(100, 100), traits, Catalog.from_rows(RETAIL, [], "en"), rules, "en")[0]
    assert [t.level for t in persona.named] == (["North"] if named else [])


def test_level_labels_come_from_the_declaration(rules):
    levels = [{"feature": "region", "level": "North", "position": 0, "label_en": "the north", "label_fr": "le Nord"}]
    traits = retail_traits(1, 50_000, 3, 0.7, north=0.9) + retail_traits(2, 50_000, 3, 0.7, north=0.1)
    assert names(rules, RETAIL, traits, (100, 100), "fr", levels)[0] == "Le Nord (region)"


def test_identical_segments_still_get_distinct_names(rules):
    traits = retail_traits(1, 80_000, 3, 0.7) + retail_traits(2, 80_000, 3, 0.7) + retail_traits(3, 20_000, 3, 0.7)
    got = names(rules, RETAIL, traits, (100, 100, 100))
    assert got == ["Affluent customers (segment 1)", "Affluent customers (segment 2)", "Modest customers"]


def test_a_clash_takes_the_next_trait_first(rules):
    traits = retail_traits(1, 90_000, 4.5, 0.7) + retail_traits(2, 90_000, 1.5, 0.7)  # 0.75 sd: not named, next
    got = names(rules, RETAIL, traits, (100, 100))
    assert got[0] != got[1] and all(name.startswith("Affluent") for name in got) and "segment" not in "".join(got)


def test_the_seed_refinement_applies_only_to_a_feature_of_that_name(rules):
    """persona_rules.yml words 'Lawyer' of `profession` as 'lawyers'; another feature's 'Lawyer' keeps its name."""
    for name, expected in (("profession", "Lawyers"), ("job", "Lawyer (job)")):
        rows = [feature(name, "category", role="categorical")]
        traits = [share(1, name, 0.9, 0.3, "Lawyer"), share(2, name, 0.0, 0.3, "Lawyer")]
        assert names(rules, rows, traits, (100, 200))[0] == expected


def test_ordered_categories_are_named_by_their_level_mean_and_shown_by_their_level(rules):
    rows = [
        feature("spending", "category", position=1, role="ordinal", is_ordered=True),
        feature("spending_level", "integer", ("spending", "dépenses"), high=("big spenders", "gros dépensiers"),
                low=("small spenders", "petits dépensiers"), position=1, role="ordinal"),
    ]  # fmt: skip
    traits = [
        mean(1, "spending_level", 1.8, 1.0, 0.8), share(1, "spending", 0.85, 0.3, "High"),
        share(1, "spending", 0.05, 0.3, "Low"), mean(2, "spending_level", 0.2, 1.0, 0.8),
        share(2, "spending", 0.05, 0.3, "High"), share(2, "spending", 0.8, 0.3, "Low"),
    ]  # fmt: skip
    personas = build_personas(profiles(100, 100), traits, Catalog.from_rows(rows, [], "en"), rules, "en")
    assert [p.name for p in personas] == ["Big spenders", "Small spenders"]
    assert "spending: High 85% (all: 30%)" in personas[0].behaviour  # the level, not a mean of codes


def test_profile_and_behaviour_lines_give_values_with_units(rules):
    traits = retail_traits(1, 80_000, 7, 0.05, north=0.8) + retail_traits(2, 30_000, 1.5, 1.5, north=0.2)
    persona = build_personas(profiles(300, 100), traits, Catalog.from_rows(RETAIL, [], "en"), rules, "en")[0]
    assert persona.profile.startswith("300 customers (75% of all); ")
    assert "income 80,000 € (all: 50,000 €)" in persona.profile
    assert persona.behaviour == "region: North 80% (all: 50%)."
    assert persona.mix_feature == "region"


def test_actions_follow_generic_trait_patterns(rules):
    rows = [
        *RETAIL,
        feature("recency", "integer", ("days since last purchase", "jours depuis le dernier achat"), position=6),
    ]
    traits = retail_traits(1, 80_000, 3, 0.7) + retail_traits(2, 50_000, 3, 0.7, visits=9)
    traits += [mean(1, "recency", 50, 50, 20), mean(2, "recency", 90, 50, 20)]
    personas = build_personas(profiles(100, 100), traits, Catalog.from_rows(rows, [], "en"), rules, "en")
    assert "premium ranges" in " ".join(personas[0].actions)  # income: high
    assert any("Win them back" in a for a in personas[1].actions)  # recency: high
    assert any("(visits)" in a for a in personas[1].actions)  # frequency, worded with the label


def test_a_segment_like_everyone_gets_the_fallback_actions(rules):
    traits = retail_traits(1, 50_000, 3, 0.7) + retail_traits(2, 50_500, 3, 0.7)
    personas = build_personas(profiles(100, 100), traits, Catalog.from_rows(RETAIL, [], "en"), rules, "en")
    assert personas[0].name == "Typical customers (segment 1)"
    assert personas[0].actions == [rules["actions"]["fallback"]["en"]["actions"][0]]


@pytest.mark.parametrize(
    "lang, text, kind",
    [
        ("en", "affluent", "adjective"),
        ("en", "seniors", "noun"),
        ("en", "catalogue buyers", "noun"),
        ("en", "no children", "phrase"),
        ("en", "high wine spend", "phrase"),
        ("fr", "aisés", "adjective"),
        ("fr", "acheteurs catalogue", "noun"),
        ("fr", "sans enfants", "phrase"),
    ],
)
def test_declared_words_are_sorted_by_the_languages_rules(rules, lang, text, kind):
    assert classify(text, rules["name"][lang]) == kind


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.floats(10_000, 100_000), st.floats(0, 8), st.floats(0, 2)), min_size=2, max_size=8))
def test_any_segmentation_gets_distinct_complete_names(rules, segments):
    traits = [row for i, (inc, cat, kids) in enumerate(segments, start=1) for row in retail_traits(i, inc, cat, kids)]
    for lang in ("en", "fr"):
        got = names(rules, RETAIL, traits, [100] * len(segments), lang)
        assert len({n.casefold() for n in got}) == len(got)
        assert all(n and "{" not in n and n[0].isupper() for n in got)


def test_data_is_never_treated_as_a_template(rules):
    rows = [feature("x", high=("{customers} {0.__class__}", "{customers}"))]
    got = names(rules, rows, [mean(1, "x", 9, 5, 1), mean(2, "x", 1, 5, 1)], (100, 100))
    assert got[0] == "{customers} {0.__class__}"


def test_a_missing_section_fails_at_load(tmp_path):
    shutil.copytree(RULES_PATH.parent / "i18n", tmp_path / "i18n")
    broken = yaml.safe_load(RULES_PATH.read_text(encoding="utf-8"))
    del broken["name"]["fr"]
    (tmp_path / "persona_rules.yml").write_text(yaml.safe_dump(broken, allow_unicode=True), encoding="utf-8")
    with pytest.raises(RulesError, match="name: no texts for language 'fr'"):
        load_rules(tmp_path / "persona_rules.yml")


def test_unknown_language_names_the_available_ones(rules):
    with pytest.raises(RulesError, match=r"available: en, fr"):
        vocabulary(rules, "de")


def test_no_rules_file_names_a_column_outside_the_optional_refinements():
    text = RULES_PATH.read_text(encoding="utf-8").split("\nrefinements:")[0]
    for column in ("profession", "spending_score", "var_1", "ever_married", "family_size", "work_experience"):
        assert column not in text


def test_numbers_are_written_the_language_way(rules):
    en = NumberFormat.from_vocabulary(vocabulary(rules, "en"))
    fr = NumberFormat.from_vocabulary(vocabulary(rules, "fr"))
    assert (en.number(12345.678, 1), fr.number(12345.678, 1)) == ("12,345.7", "12\u202f345,7")
    assert (en.percent(0.256), fr.percent(0.256)) == ("26%", "26\u00a0%")
    assert (en.signed(-2.5, 1), en.signed(0.0), en.lift(2.34), en.lift(12.3)) == ("−2.5", "0", "×2.3", "×12")
    assert (en.sd(1.23), fr.sd(-0.5)) == ("+1.2 sd", "−0,5\u00a0é.-t.")
    assert (en.with_unit("3", "€"), en.with_unit("3", None)) == ("3 €", "3")
    assert en.share(0.998) == "99.8%" and en.share(0.5) == "50%"
