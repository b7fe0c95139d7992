"""Persona naming from the shipped rules (reports/persona_rules.yml and reports/i18n)."""

from __future__ import annotations

import math
import shutil

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segmentation.config import load_settings
from segmentation.personas import NumberFormat, RulesError, build_personas, load_rules

RULES_PATH = load_settings().persona_rules_path
BASE_PROFESSIONS = {
    "Artist": 0.30,
    "Engineer": 0.09,
    "Executive": 0.08,
    "Healthcare": 0.16,
    "Lawyer": 0.08,
    "Homemaker": 0.03,
    "Doctor": 0.09,
    "Entertainment": 0.12,
    "Marketing": 0.05,
}


@pytest.fixture(scope="module")
def rules():
    return load_rules(RULES_PATH)


def profile(segment_id, customers=1000, age=45.0, married=0.6, graduated=0.6, female=0.45, family=2.9,
            spend=(0.6, 0.25, 0.15), share_of_high_spenders=None, total=4000):  # fmt: skip
    return {
        "segment_id": segment_id,
        "customers": customers,
        "share_of_customers": customers / total,
        "mean_age": age,
        "share_married": married,
        "share_graduated": graduated,
        "share_female": female,
        "mean_family_size": family,
        "mean_work_experience": 2.6,
        "share_spending_low": spend[0],
        "share_spending_average": spend[1],
        "share_spending_high": spend[2],
        "share_of_high_spenders": share_of_high_spenders if share_of_high_spenders is not None else 0.25,
    }


def mix(segment_id, shares: dict[str, float]):
    ranked = sorted(shares.items(), key=lambda kv: -kv[1])
    return [
        {
            "segment_id": segment_id,
            "profession": name,
            "customers": round(share * 1000),
            "share": share,
            "base_share": BASE_PROFESSIONS.get(name, 0.05),
            "lift": share / BASE_PROFESSIONS.get(name, 0.05),
            "profession_rank": rank,
        }
        for rank, (name, share) in enumerate(ranked, start=1)
    ]


def traits_for(segment_id, shares: dict[str, float], p: dict, base_age=45.0):
    rows = [
        {"segment_id": segment_id, "feature": "profession", "level": name, "segment_value": shares.get(name, 0.0),
         "base_value": base, "lift": shares.get(name, 0.0) / base}
        for name, base in BASE_PROFESSIONS.items()
    ]  # fmt: skip
    rows += [
        {"segment_id": segment_id, "feature": "age", "level": None, "segment_value": p["mean_age"],
         "base_value": base_age, "lift": p["mean_age"] / base_age},
        {"segment_id": segment_id, "feature": "is_married", "level": None, "segment_value": p["share_married"],
         "base_value": 0.6, "lift": p["share_married"] / 0.6},
        {"segment_id": segment_id, "feature": "spending_score", "level": "High",
         "segment_value": p["share_spending_high"], "base_value": 0.15, "lift": p["share_spending_high"] / 0.15},
        {"segment_id": segment_id, "feature": "spending_level", "level": None, "segment_value": 1.9,
         "base_value": 0.6, "lift": 1.9 / 0.6},
        {"segment_id": segment_id, "feature": "var_1", "level": "Cat_6", "segment_value": 0.9,
         "base_value": 0.1, "lift": 9.0},
        {"segment_id": segment_id, "feature": "gender", "level": "Female", "segment_value": p["share_female"],
         "base_value": 0.45, "lift": p["share_female"] / 0.45},
        {"segment_id": segment_id, "feature": "gender", "level": "Male", "segment_value": 1 - p["share_female"],
         "base_value": 0.55, "lift": (1 - p["share_female"]) / 0.55},
    ]  # fmt: skip
    return rows


SEED_LIKE = [
    (profile(1, 1600, 47, 0.8, 0.8, 0.45, 2.7, (0.2, 0.65, 0.15), 0.3),
     {"Artist": 0.35, "Engineer": 0.2, "Executive": 0.15, "Entertainment": 0.15, "Doctor": 0.15}),
    (profile(2, 1100, 27, 0.08, 0.25, 0.4, 4.4, (0.93, 0.05, 0.02), 0.05),
     {"Healthcare": 0.45, "Artist": 0.2, "Doctor": 0.15, "Entertainment": 0.2}),
    (profile(3, 700, 76, 0.92, 0.6, 0.45, 2.0, (0.15, 0.15, 0.7), 0.5), {"Lawyer": 1.0}),
    (profile(4, 600, 38, 0.85, 0.5, 0.9, 2.6, (0.6, 0.3, 0.1), 0.15), {"Homemaker": 1.0}),
]  # fmt: skip


def personas_for(cases, rules, lang="en"):
    profiles = [p for p, _ in cases]
    mixes = [row for p, shares in cases for row in mix(p["segment_id"], shares)]
    traits = [row for p, shares in cases for row in traits_for(p["segment_id"], shares, p)]
    return build_personas(profiles, traits, mixes, rules, lang)


# --- names ---------------------------------------------------------------------------------


def test_seed_like_segments_get_the_personas_marketing_expects(rules):
    personas = personas_for(SEED_LIKE, rules)
    names = [p.name for p in personas]
    assert names == [
        "Mid-life mixed professionals, average spenders",
        "Young mixed professionals, budget-conscious",
        "Senior lawyers, high spenders",
        "Mid-life homemakers, careful spenders",
    ]
    senior = personas[2]
    assert senior.portrait == (
        "Senior lawyers who spend freely and bring in 50% of all high spenders, often living alone or as a couple."
    )
    assert senior.demographics.startswith("Senior (average age 76), mostly married")
    assert senior.behaviour == "High spending (70% high spenders); 100% lawyers."
    assert personas[3].demographics == "Mid-life (average age 38), mostly married, mostly women (90%)."


def test_french_names_follow_french_word_order(rules):
    names = [p.name for p in personas_for(SEED_LIKE, rules, "fr")]
    assert names[1] == "Jeunes profils variés, petits budgets"
    assert names[2] == "Avocats seniors, gros budgets"


@pytest.mark.parametrize("offset, dominant", [(-0.01, False), (0.0, True), (0.2, True)])
def test_profession_is_named_only_from_the_dominance_threshold(rules, offset, dominant):
    threshold = rules["thresholds"]["dominant_profession_share"]
    top = round(threshold + offset, 4)
    shares = {"Engineer": top, "Artist": (1 - top) / 2, "Doctor": (1 - top) / 2}
    (persona,) = personas_for([(profile(1), shares)], rules)
    assert ("engineers" in persona.name) is dominant
    assert ("mixed professionals" in persona.name) is not dominant


def test_different_profiles_get_different_names(rules):
    base = dict(married=0.6, graduated=0.6, female=0.45, family=2.9)
    cases = [
        (profile(1, age=25, spend=(0.9, 0.08, 0.02), **base), {"Artist": 0.4, "Doctor": 0.3, "Engineer": 0.3}),
        (profile(2, age=25, spend=(0.1, 0.3, 0.6), **base), {"Artist": 0.4, "Doctor": 0.3, "Engineer": 0.3}),
        (profile(3, age=70, spend=(0.9, 0.08, 0.02), **base), {"Artist": 0.4, "Doctor": 0.3, "Engineer": 0.3}),
        (profile(4, age=70, spend=(0.9, 0.08, 0.02), **base), {"Doctor": 0.8, "Artist": 0.2}),
    ]
    names = [p.name for p in personas_for(cases, rules)]
    assert len(set(names)) == 4, names


def test_a_name_clash_is_resolved_with_the_most_telling_difference(rules):
    shares = {"Artist": 0.4, "Doctor": 0.3, "Engineer": 0.3}
    cases = [
        (profile(1, married=0.9), shares),
        (profile(2, married=0.1), shares),
    ]
    names = [p.name for p in personas_for(cases, rules)]
    assert names == ["Mid-life mixed professionals, careful spenders (married)",
                     "Mid-life mixed professionals, careful spenders (single)"]  # fmt: skip


def test_identical_profiles_still_get_unique_names(rules):
    shares = {"Artist": 0.4, "Doctor": 0.3, "Engineer": 0.3}
    names = [p.name for p in personas_for([(profile(1), shares), (profile(2), shares), (profile(3), shares)], rules)]
    assert len(set(names)) == 3
    assert names[0].endswith("(segment 1)")


profiles_strategy = st.lists(
    st.tuples(
        st.floats(18, 90),  # age
        st.floats(0, 1),  # married
        st.floats(0, 1),  # graduated
        st.floats(0, 1),  # female
        st.floats(1, 9),  # family size
        st.floats(0.01, 1),
        st.floats(0.01, 1),
        st.floats(0.01, 1),  # spending weights
        st.floats(0.05, 1),  # top profession share
        st.sampled_from(list(BASE_PROFESSIONS)),
    ),
    min_size=2,
    max_size=10,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=profiles_strategy)
def test_any_segmentation_gets_unique_complete_personas(rules, rows):
    cases = []
    for i, (age, married, graduated, female, family, lo, avg, hi, top, top_name) in enumerate(rows, start=1):
        total = lo + avg + hi
        p = profile(i, 100 * i, age, married, graduated, female, family, (lo / total, avg / total, hi / total))
        others = [name for name in BASE_PROFESSIONS if name != top_name][:3]
        shares = {top_name: top, **{name: (1 - top) / 3 for name in others}}
        cases.append((p, shares))
    for lang in ("en", "fr"):
        personas = personas_for(cases, rules, lang)
        names = [p.name.casefold() for p in personas]
        assert len(set(names)) == len(names)
        for persona in personas:
            assert persona.name and persona.portrait.endswith(".") and persona.demographics and persona.behaviour
            assert 3 <= len(persona.traits) <= 5
            assert 1 <= len(persona.actions) <= rules["actions"]["limits"]["actions"]
            assert len(persona.channels) <= rules["actions"]["limits"]["channels"]
            assert "{" not in persona.name + persona.portrait + persona.demographics + persona.behaviour


# --- traits --------------------------------------------------------------------------------------


def test_traits_are_the_largest_log_lifts_with_support(rules):
    persona = personas_for([SEED_LIKE[2]], rules)[0]
    labels = [t["label"] for t in persona.traits]
    assert labels[0] == "Profession: Lawyer"
    assert persona.traits[0]["lift_text"] == "×12"  # 1.00 / 0.08 = 12.5, rounded half to even
    strengths = [abs(math.log(t["lift"])) for t in persona.traits]
    assert strengths == sorted(strengths, reverse=True)
    assert 3 <= len(labels) <= 5
    assert not any(label.startswith("Customer category") for label in labels)  # excluded feature
    assert "Spending" not in labels  # the numeric code of the spending category is excluded
    assert sum(label.startswith("Profession") for label in labels) == 1  # one per feature
    assert persona.traits[1]["label"] == "Spending: High"
    assert persona.traits[1]["segment_text"] == "70%" and persona.traits[1]["base_text"] == "15%"


def test_traits_prefer_what_a_segment_is_over_what_it_is_not(rules):
    persona = personas_for([SEED_LIKE[3]], rules)[0]  # 90% women
    labels = [t["label"] for t in persona.traits]
    assert "Gender: Women" in labels and "Gender: Men" not in labels


def test_rare_categories_are_not_traits(rules):
    p = profile(1)
    shares = {"Artist": 0.97, "Marketing": 0.03}  # Marketing: 3% of segment, 5% of base: below support
    trait_rows = traits_for(1, shares, p)
    persona = build_personas([p], trait_rows, mix(1, shares), rules)[0]
    assert not any("Marketing" in t["label"] for t in persona.traits)


# --- actions ---------------------------------------------------------------------------------------


def test_actions_follow_the_profile(rules):
    personas = personas_for(SEED_LIKE, rules)
    senior, young = personas[2], personas[1]
    assert any("premium" in a for a in senior.actions)
    assert any("lawyers" in a for a in senior.actions)  # filled from the dominant profession
    assert any("entry-price" in a for a in young.actions)
    assert any("Social media" in c for c in young.channels)
    assert any("Family" in a for a in young.actions)  # large households


# --- safety and robustness ---------------------------------------------------------------------------


def test_data_is_never_treated_as_a_template(rules):
    hostile = "{top_profession_plural.__class__} {0}"
    (persona,) = personas_for([(profile(1), {hostile: 1.0})], rules)
    assert hostile in persona.name


def test_unknown_metric_in_rules_fails_at_load(tmp_path):
    shutil.copytree(RULES_PATH.parent / "i18n", tmp_path / "i18n")
    data = yaml.safe_load(RULES_PATH.read_text(encoding="utf-8"))
    data["slots"]["age"]["rules"][0]["when"] = {"mean_agee": {"lt": 30}}
    path = tmp_path / "persona_rules.yml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(RulesError, match="unknown metric 'mean_agee'"):
        load_rules(path)


@pytest.mark.parametrize(
    "compare, message",
    [
        ({"features": "age"}, "compare.features: expected a list"),
        ({"skip_levels": {"gender": "Male"}}, "compare.skip_levels"),
        ({"names_up_to": "six"}, "compare.names_up_to"),
    ],
)
def test_a_malformed_compare_section_fails_at_load(tmp_path, compare, message):
    shutil.copytree(RULES_PATH.parent / "i18n", tmp_path / "i18n")
    data = yaml.safe_load(RULES_PATH.read_text(encoding="utf-8"))
    data["compare"] = compare
    path = tmp_path / "persona_rules.yml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(RulesError, match=message):
        load_rules(path)


def test_unknown_language_names_the_available_ones(rules):
    with pytest.raises(RulesError, match="available: en, fr"):
        personas_for(SEED_LIKE, rules, "de")


def _keys(node, prefix=""):
    if isinstance(node, dict):
        return {k for key, value in node.items() for k in _keys(value, f"{prefix}.{key}")} | {prefix}
    return {prefix}


def test_every_language_has_every_word(rules):
    en = rules["i18n"]["en"]
    for lang, vocab in rules["i18n"].items():
        assert _keys(vocab) == _keys(en), lang
    for slot, spec in rules["slots"].items():
        for rule in spec["rules"]:
            assert set(rule["text"]) >= set(rules["i18n"]), slot
    for rule in rules["actions"]["rules"]:
        assert set(rule["text"]) >= set(rules["i18n"])


def test_numbers_are_written_the_language_way():
    fr = NumberFormat(decimal=",", thousands="\u202f", percent_template="{value}\u00a0%")
    assert fr.number(12345.678, 1) == "12\u202f345,7"
    assert fr.percent(0.125) == "12\u00a0%"
    assert NumberFormat().signed(-0.04, 1) == "0.0"
    assert NumberFormat().signed(-3.0) == "−3"
    assert NumberFormat().lift(12.4) == "×12" and NumberFormat().lift(0.456) == "×0.5"
