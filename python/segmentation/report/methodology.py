"""The methodology page: how the segments were built, which model and why, the choice of k,
what changed since the previous run, and the run's details."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence

from segmentation.report.common import PageInputs, crosstab, segment_columns
from segmentation.report.i18n import date_text, fill

logger = logging.getLogger(__name__)

# Criteria of the choice of k that the report knows, in panel and table order, with table digits.
# Any other numeric column of segment_model_selection is shown after them.
KNOWN_CRITERIA = {
    "inertia": 0,
    "silhouette": 3,
    "calinski_harabasz": 0,
    "davies_bouldin": 2,
    "stability": 2,
    "bic": 0,
    "icl": 0,
    "log_likelihood": 0,
    "mixture_stability": 2,
    "smallest_segment_share": 3,
}
WIDE_TABLE_COLUMNS = 7  # beyond this many measures the table is set tighter, to stay within the page
NOT_CRITERIA = {"run_id", "k", "is_knee", "is_chosen"}
LOWER_IS_BETTER = {"davies_bouldin", "bic", "icl"}


def criteria(selection: Sequence[Mapping]) -> list[tuple[str, int]]:
    """(column, digits) of every criterion present in this run's selection with at least one value."""
    present = [c for c in dict.fromkeys(c for row in selection for c in row) if c not in NOT_CRITERIA]
    measured = [
        c
        for c in present
        if any(isinstance(row.get(c), int | float) and not isinstance(row.get(c), bool) for row in selection)
    ]
    known = [(c, d) for c, d in KNOWN_CRITERIA.items() if c in measured]
    return known + [(c, 2) for c in measured if c not in KNOWN_CRITERIA]


def criterion_label(vocab: Mapping, column: str) -> str:
    return vocab["methodology"]["criteria"].get(column, column.replace("_", " "))


def parameters(run: Mapping) -> dict:
    try:
        value = json.loads(run.get("parameters") or "{}")
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def stability_threshold(run: Mapping) -> float | None:
    """The stability a k needs to count as stable, when the run recorded it."""
    selection = parameters(run).get("selection")
    value = selection.get("stability_threshold") if isinstance(selection, dict) else None
    return float(value) if isinstance(value, int | float) else None


def chosen_and_knee(inputs: PageInputs) -> tuple[int | None, int | None]:
    data = inputs.data
    chosen = next((r["k"] for r in data.selection if r.get("is_chosen")), data.run.get("k"))
    knee = next((r["k"] for r in data.selection if r.get("is_knee")), data.run.get("knee_k"))
    return chosen, knee


def choice_sentence(inputs: PageInputs) -> str:
    """Why this k, as one plain sentence (segmentation_runs.selection_rule)."""
    templates = inputs.vocab["methodology"]["choice"]
    fmt, run = inputs.fmt, inputs.data.run
    chosen, knee = chosen_and_knee(inputs)
    by_k = {r["k"]: r for r in inputs.data.selection}
    rule = parameters(run).get("k_rule") or run.get("selection_rule") or "other"
    stability = by_k.get(chosen, {}).get("stability")
    if rule == "elbow" and stability is not None:
        rule = "elbow_unstable"  # with stability measured, "elbow" means no k was stable enough
    if rule not in templates:
        logger.warning("no sentence for the selection rule %r in the vocabulary; using a plain one", rule)
        rule = "other"
    mixture = parameters(run).get("mixture")
    min_share = mixture.get("min_segment_share") if isinstance(mixture, dict) else None
    if run.get("k_source") == "icl" and rule == "bic_stable":
        rule = "icl_stable"
    fields = {
        "k": str(chosen if chosen is not None else len(inputs.personas)),
        "min_share": fmt.percent(min_share) if isinstance(min_share, int | float) else fmt.missing,
        "knee": str(knee) if knee is not None else fmt.missing,
        "stability": fmt.number(stability, 2),
        "knee_stability": fmt.number(by_k.get(knee, {}).get("stability"), 2),
        "silhouette": fmt.number(by_k.get(chosen, {}).get("silhouette"), 2),
    }
    return fill(templates[rule], fields)


def _model(inputs: PageInputs) -> tuple[str, str | None]:
    """The algorithm's name and why it was used, worded from the run's recorded figures."""
    m, fmt, run = inputs.vocab["methodology"], inputs.fmt, inputs.data.run
    params = parameters(run)
    code = str(params.get("algorithm") or run.get("algorithm") or "kmeans")
    mixture = params.get("mixture") if isinstance(params.get("mixture"), dict) else {}
    compared = mixture.get("compared_with_kmeans") if isinstance(mixture.get("compared_with_kmeans"), dict) else {}
    if code == "mixture" and compared:
        fields = {
            "kmeans_k": str(compared.get("kmeans_k", fmt.missing)),
            "mixture_bic": fmt.number(compared.get("mixture_classification_bic")),
            "kmeans_bic": fmt.number(compared.get("kmeans_classification_bic")),
            "agreement": fmt.number(compared.get("agreement_ari"), 2),
            "ambiguous": fmt.number(run.get("ambiguous_customers")),
            "threshold": fmt.number(run.get("ambiguous_probability") or params.get("ambiguous_probability"), 1),
        }
        return m["algorithms"].get(code, code), fill(m["reasons"]["mixture"], fields)
    reason = params.get("reason")
    reason = m["reasons"].get(reason) if isinstance(reason, str) and reason else None
    return m["algorithms"].get(code, code), reason


def _selection_table(inputs: PageInputs) -> dict:
    m = inputs.vocab["methodology"]
    chosen, knee = chosen_and_knee(inputs)
    columns = criteria(inputs.data.selection)
    return {
        "wide": len(columns) > WIDE_TABLE_COLUMNS,
        "headers": [criterion_label(inputs.vocab, column) for column, _ in columns],
        "rows": [
            {
                "k": str(r["k"]),
                "chosen": r["k"] == chosen,
                "tags": [{"text": m["chosen_tag"], "kind": "chosen"}] * (r["k"] == chosen)
                + [{"text": m["knee_tag"], "kind": "knee"}] * (r["k"] == knee),
                "cells": [inputs.fmt.number(r.get(column), digits) for column, digits in columns],
            }
            for r in inputs.data.selection
        ],
    }


def _migration(inputs: PageInputs) -> dict | None:
    data, m = inputs.data, inputs.vocab["methodology"]
    if not data.migration or not data.run.get("previous_run_id"):
        return None
    previous = sorted({r["previous_segment_id"] for r in data.migration if r["previous_segment_id"] is not None})
    row_order = [*previous, None] if any(r["previous_segment_id"] is None for r in data.migration) else previous
    labels = {s: fill(m["previous_segment"], {"segment_id": str(s)}) for s in previous} | {None: m["new_customers"]}
    columns = segment_columns(inputs, len(inputs.personas) <= 6)
    column_ids: list = [p.segment_id for p in inputs.personas]
    if any(r["segment_id"] is None for r in data.migration):
        columns.append({"badge": None, "colour": None, "text_colour": None, "name": m["gone"], "title": m["gone"]})
        column_ids.append(None)
    return {
        "lead": fill(m["migration_lead"], {"previous_run_id": str(data.run["previous_run_id"])}),
        "columns": columns,
        "rows": crosstab(
            data.migration, "previous_segment_id", row_order, labels, column_ids, inputs.fmt, diagonal=True
        ),
    }


def _label_agreement(inputs: PageInputs) -> dict | None:
    data, m, fmt = inputs.data, inputs.vocab["methodology"], inputs.fmt
    if not data.label_crosstab:
        return None
    labels = sorted({str(r["label"]) for r in data.label_crosstab if r["label"] is not None})
    rows = [{**r, "label": str(r["label"]) if r["label"] is not None else fmt.missing} for r in data.label_crosstab]
    if any(r["label"] is None for r in data.label_crosstab):
        labels.append(fmt.missing)
    fields = {
        "label_column": str(data.run.get("label_column") or fmt.missing),
        "ari": fmt.number(data.run.get("label_ari"), 2),
    }
    return {
        "lead": fill(m["labels_lead"], fields),
        "columns": segment_columns(inputs, len(inputs.personas) <= 6),
        "rows": crosstab(
            rows, "label", labels, {label: label for label in labels}, [p.segment_id for p in inputs.personas], fmt
        ),
    }


def _engine(run: Mapping, m: Mapping) -> str:
    """Which engine ran (ENGINE=spark: initialisation and silhouette sample differ from scikit-learn's)."""
    params = parameters(run)
    if params.get("engine") == "spark":
        key = (
            "engine_spark"
            if str(params.get("algorithm") or run.get("algorithm")) == "mixture"
            else "engine_spark_kmeans"
        )
        return fill(m[key], {"version": str(params.get("spark_version") or "")})
    return m["engine_duckdb"]


def build(inputs: PageInputs) -> dict:
    m, run, fmt = inputs.vocab["methodology"], inputs.data.run, inputs.fmt
    k = len(inputs.personas)
    ks = [r["k"] for r in inputs.data.selection] or [k]
    algorithm, reason = _model(inputs)
    code = str(parameters(run).get("algorithm") or run.get("algorithm") or "kmeans")
    steps = m["steps_mixture"] if code == "mixture" and "steps_mixture" in m else m["steps"]
    choice = choice_sentence(inputs)
    # an ordered category is clustered through its rank (a companion row of the catalog): named once
    clustered = list(dict.fromkeys(f.label for f in inputs.catalog if f.role != "profile"))
    fields = {
        "features": fmt.number(run.get("features")),
        "declared": str(len(clustered)),
        "labels": inputs.vocab.get("list_separator", ", ").join(clustered),
        "k": str(run.get("k") or k),
        "k_min": str(min(ks)),
        "k_max": str(max(ks)),
        "choice": choice,
        "algorithm": algorithm,
    }
    customers = inputs.customers
    sample = min(run.get("silhouette_sample") or customers, customers)
    threshold = stability_threshold(run)
    notes = m["criteria_notes"]
    details = [
        (m["run_id"], str(run["run_id"])),
        (m["finished_at"], date_text(run.get("finished_at") or run.get("started_at"), inputs.vocab)),
        (m["algorithm"], algorithm),
        (m["reason"], reason),
        (m["k"], str(run.get("k") or k)),
        (m["k_chosen_by"], m["rule_labels"].get(run.get("selection_rule"), run.get("selection_rule"))),
        (
            m["ambiguous"],
            fmt.number(run["ambiguous_customers"]) if run.get("ambiguous_customers") is not None else None,
        ),
        (
            m["categorical_weight"],
            m["weightings"].get(run.get("categorical_weighting"), run.get("categorical_weighting")),
        ),
        (m["random_state"], str(run.get("random_state"))),
        (m["engine"], _engine(run, m)),
        (m["customers"], fmt.number(customers)),
        (m["features"], fmt.number(run.get("features"))),
        (m["previous_run"], str(run["previous_run_id"]) if run.get("previous_run_id") else None),
        (m["label_column"], str(run["label_column"]) if run.get("label_column") else None),
        (m["label_ari"], fmt.number(run["label_ari"], 2) if run.get("label_ari") is not None else None),
        (m["source_file"], str(run.get("source_file") or fmt.missing)),
    ]
    caption = [m["selection_caption"]]
    for column, _ in criteria(inputs.data.selection):
        key = "stability_threshold" if column == "stability" and threshold is not None else column
        if key in notes:
            caption.append(fill(notes[key], {"sample": fmt.number(sample), "threshold": fmt.number(threshold, 2)}))
    return {
        "lead": fill(m["lead"], {"algorithm": algorithm}),
        "model": fill(m["model"], {"algorithm": algorithm, "reason": reason}) if reason else None,
        "steps": [{"title": step["title"], "text": fill(step["text"], fields)} for step in steps],
        "choice": choice,
        "selection_chart": inputs.chart.get("selection"),
        "selection_caption": caption,
        "selection_table": _selection_table(inputs) if inputs.data.selection else None,
        "migration": _migration(inputs),
        "labels": _label_agreement(inputs),
        "run": [{"label": label, "value": value} for label, value in details if value is not None],
    }
