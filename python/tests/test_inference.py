"""What `make init` decides on tricky columns, measured by the real profiler on real files."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pytest

from segmentation.errors import UserError
from segmentation.inference import infer_declaration
from segmentation.profiles import ColumnProfile, TableProfile
from segmentation.profiling import profile_file

TODAY = date(2030, 1, 15)


def _write(path: Path, columns: dict[str, list[str]], separator: str = ",") -> Path:
    names = list(columns)
    rows = zip(*(columns[name] for name in names), strict=True)
    path.write_text("\n".join([separator.join(names), *(separator.join(row) for row in rows)]) + "\n", "utf-8")
    return path


def _infer(tmp_path: Path, columns: dict[str, list[str]], separator: str = ","):
    draft = infer_declaration(profile_file(_write(tmp_path / "t.csv", columns, separator)), TODAY)
    by_column = {c["column"]: c for c in draft.declaration["columns"]}
    reasons = {d.column: d for d in draft.decisions}
    return draft.declaration, by_column, reasons


N = 400
RNG = np.random.default_rng(3)
IDS = [str(i) for i in RNG.choice(np.arange(1000, 9000), N, replace=False)]
AMOUNTS = [str(int(v)) for v in RNG.lognormal(3, 1.2, N)]


def test_numeric_ids_are_the_identifier_and_amounts_are_not(tmp_path):
    _, columns, reasons = _infer(tmp_path, {"amount": AMOUNTS, "client_no": IDS})
    assert columns["client_no"] == {"column": "client_no", "type": "identifier"}
    assert columns["amount"]["type"] == "integer"
    assert "identifier" in reasons["client_no"].reason


def test_an_unnamed_first_column_of_unique_codes_is_the_identifier(tmp_path):
    codes = [f"K{i:04d}" for i in range(N)]
    _, columns, _ = _infer(tmp_path, {"x": codes, "amount": AMOUNTS})
    assert columns["x"]["type"] == "identifier"


def test_no_identifier_is_one_clear_error(tmp_path):
    with pytest.raises(UserError, match="identifier"):
        _infer(tmp_path, {"colour": ["red", "blue"] * (N // 2), "amount": AMOUNTS})


def test_a_birth_year_derives_an_age_at_the_latest_date(tmp_path):
    years = [str(y) for y in RNG.integers(1940, 2000, N)]
    dates = [f"2013-0{1 + i % 9}-1{i % 10}" for i in range(N)]
    declaration, columns, reasons = _infer(tmp_path, {"id": IDS, "Year_Birth": years, "signup_date": dates})
    assert columns["Year_Birth"]["role"] == "ignored"
    age = next(d for d in declaration["derived"] if d["derive"] == {"years_since": "year_birth"})
    assert age["range"] == [16, 110] and age["role"] == "numeric"
    assert age["label"]["fr"] != age["label"]["en"]
    assert "birth year" in reasons["Year_Birth"].reason and "16–110" in reasons["Year_Birth"].reason
    assert declaration["as_of"] == date(2013, 9, 19)


def test_zero_one_flags_are_booleans_and_a_rare_one_is_profiled(tmp_path):
    flag = ["1" if i % 3 == 0 else "0" for i in range(N)]
    rare = ["1" if i == 7 else "0" for i in range(N)]
    _, columns, reasons = _infer(tmp_path, {"id": IDS, "promo": flag, "flagged": rare})
    assert columns["promo"]["type"] == "boolean" and columns["promo"]["role"] == "categorical"
    assert columns["flagged"]["type"] == "boolean" and columns["flagged"]["role"] == "profile"
    assert "100% one value" in reasons["flagged"].reason or "one value" in reasons["flagged"].reason


def test_a_99_percent_one_value_category_is_kept_for_profiling(tmp_path):
    values = ["FR"] * (N - 2) + ["BE", "BE"]
    _, columns, reasons = _infer(tmp_path, {"id": IDS, "country": values})
    assert columns["country"]["role"] == "profile"
    assert "99% one value" in reasons["country"].reason or "holds 100%" in reasons["country"].reason


def test_a_constant_column_is_ignored(tmp_path):
    _, columns, reasons = _infer(tmp_path, {"id": IDS, "Z_Cost": ["3"] * N})
    assert columns["Z_Cost"]["role"] == "ignored"
    assert "one value only" in reasons["Z_Cost"].reason


def test_free_text_is_ignored(tmp_path):
    words = ["great", "service", "slow", "delivery", "price", "friendly", "again", "never"]
    text = [" ".join(RNG.choice(words, 7)) + f" order {i}" for i in range(N)]
    _, columns, _ = _infer(tmp_path, {"id": IDS, "comment": text})
    assert columns["comment"]["type"] == "text" and columns["comment"]["role"] == "ignored"


def test_a_company_segmentation_is_a_label_not_required(tmp_path):
    _, columns, _ = _infer(tmp_path, {"id": IDS, "Segmentation": list("ABCD" * (N // 4))})
    assert columns["Segmentation"]["role"] == "label" and columns["Segmentation"]["required"] is False


def test_decimal_commas_french_headers_and_oui_non(tmp_path):
    money = [f"{v:.2f}".replace(".", ",") for v in RNG.lognormal(8, 0.4, N)]
    ages = [str(a) for a in RNG.integers(18, 80, N)]
    yes = ["Oui" if i % 4 else "Non" for i in range(N)]
    columns_in = {"Identifiant client": [f"CL-{i}" for i in IDS], "Âge": ages, "Revenu annuel": money, "Fidèle": yes}
    _, columns, _ = _infer(tmp_path, columns_in, separator=";")
    assert columns["Revenu annuel"]["type"] == "number"
    assert columns["Revenu annuel"]["label"] == {"en": "annual income", "fr": "revenu annuel"}
    assert columns["Âge"]["name"] == "age" and columns["Âge"]["range"] == [16, 110]
    assert columns["Âge"]["label"]["fr"] == "âge"
    assert columns["Fidèle"]["type"] == "boolean"
    assert columns["Identifiant client"]["type"] == "identifier"


def test_dates_in_two_formats_give_both_formats_tenure_and_the_dedupe_order(tmp_path):
    days = RNG.integers(0, 700, N)
    as_dates = [date.fromordinal(date(2012, 1, 1).toordinal() + int(d)) for d in days]
    written = [d.strftime("%d/%m/%Y") if i % 3 == 0 else d.isoformat() for i, d in enumerate(as_dates)]
    declaration, columns, _ = _infer(tmp_path, {"id": IDS, "Dt_Customer": written})
    assert columns["Dt_Customer"]["type"] == "date"
    assert columns["Dt_Customer"]["formats"] == ["%Y-%m-%d", "%d/%m/%Y"]
    assert declaration["deduplicate"] == {"latest_first": [{"column": "dt_customer", "order": "desc"}]}
    assert declaration["as_of"] == max(as_dates)
    tenure = next(d for d in declaration["derived"] if "days_since" in d["derive"])
    assert tenure["derive"] == {"days_since": "dt_customer"}


def test_without_a_date_as_of_is_today_written_literally(tmp_path):
    declaration, _, _ = _infer(tmp_path, {"id": IDS, "amount": AMOUNTS})
    assert declaration["as_of"] == TODAY and "deduplicate" not in declaration


def test_categories_get_canonical_spellings_missing_tokens_and_an_order(tmp_path):
    level = (["High"] * 5 + ["high"] + ["Low"] * 4 + ["Medium"] * 5 + ["unknown"]) * (N // 16)
    _, columns, reasons = _infer(tmp_path, {"id": IDS, "value_level": level})
    column = columns["value_level"]
    assert column["ordered"] is True and column["role"] == "ordinal"
    assert column["levels"][0]["value"] == "Low" and column["levels"][-1] == {
        "value": "High",
        "spellings": ["high"],
        "fr": "Élevé",
    }
    assert column["missing"] == ["unknown"]
    assert "unknown" in reasons["value_level"].review


def test_skewed_spend_columns_are_summed_into_a_clustered_total(tmp_path):
    more = [str(int(v)) for v in RNG.lognormal(2, 1.3, N)]
    declaration, columns, _ = _infer(tmp_path, {"id": IDS, "MntWines": AMOUNTS, "MntFruits": more})
    assert columns["MntWines"]["skewed"] is True and columns["MntWines"]["role"] == "profile"
    total = next(d for d in declaration["derived"] if d["name"] == "total_spend")
    assert total["derive"] == {"sum": ["mnt_wines", "mnt_fruits"]} and total["role"] == "numeric"
    assert total["words"]["high"]["en"] == "big spenders"


def test_a_high_cardinality_category_is_profiled_without_levels():
    profile = ColumnProfile(
        name="city", position=1, rows=1000, missing=0, distinct=40, top=tuple((f"c{i}", 25) for i in range(40))
    )
    ident = ColumnProfile(name="id", position=0, rows=1000, missing=0, distinct=1000, share_integer=1, share_number=1)
    draft = infer_declaration(TableProfile("t.csv", 1000, (ident, profile)), TODAY)
    city = draft.declaration["columns"][1]
    assert city["role"] == "profile" and "levels" not in city
