"""One page per persona: who they are, their key figures against all customers, the mix of
their most telling category, what sets them apart, and what to do."""

from __future__ import annotations

import math
from collections.abc import Mapping

from segmentation import charts
from segmentation.personas import Persona, Trait
from segmentation.personas.traits import trait_label, trait_texts
from segmentation.report.common import PageInputs
from segmentation.report.figures import map_view
from segmentation.report.i18n import NumberFormat, fill

BAR_FULL_SD = 2.5  # a trait bar reaches the edge at this many standard deviations


def difference_text(trait: Trait, fmt: NumberFormat) -> str:
    """Segment − base: percentage points for shares, the unit's difference for means."""
    trait = trait.shown
    if trait.segment_value is None or trait.base_value is None:
        return fmt.missing
    difference = trait.segment_value - trait.base_value
    if trait.kind == "share":
        return fmt.points(difference)
    digits = fmt.digits_for(trait.base_value, trait.feature.data_type)
    return fmt.with_unit(fmt.signed(difference, digits), trait.feature.unit)


def lift_text(trait: Trait, fmt: NumberFormat) -> str:
    """The lift where it means something (a positive base), else the standardised difference."""
    trait = trait.shown
    if trait.lift is not None and (trait.base_value or 0) > 0 and math.isfinite(trait.lift):
        return fmt.lift(trait.lift)
    return fmt.sd(trait.std_diff)


def _key_figures(persona: Persona, inputs: PageInputs, threshold: float) -> list[dict]:
    count = int(inputs.rules["traits"].get("key_figures", 6))
    level_template = inputs.vocab["traits"]["level_label"]
    rows = []
    for trait in persona.traits[:count]:
        segment, base = trait_texts(trait, inputs.fmt)
        rows.append(
            {
                "label": trait_label(trait, level_template),
                "segment": segment,
                "base": base,
                "difference": difference_text(trait, inputs.fmt),
                "direction": trait.direction,
                "notable": trait.score >= threshold,
            }
        )
    return rows


def _trait_rows(persona: Persona, inputs: PageInputs) -> list[dict]:
    count = int(inputs.rules["traits"].get("shown", 5))
    level_template = inputs.vocab["traits"]["level_label"]
    rows = []
    for trait in persona.traits[:count]:
        segment, base = trait_texts(trait, inputs.fmt)
        width = min(50.0, 50.0 * trait.score / BAR_FULL_SD)
        rows.append(
            {
                "label": trait_label(trait, level_template),
                "segment_text": segment,
                "base_text": base,
                "lift_text": lift_text(trait, inputs.fmt),
                "direction": "up" if trait.up else "down",
                "bar_width": f"{max(width, 1.5):.1f}",
            }
        )
    return rows


def _stats(persona: Persona, inputs: PageInputs) -> list[dict]:
    t, fmt = inputs.vocab["persona"], inputs.fmt
    stats = [
        {"value": fmt.number(persona.customers), "label": t["customers"]},
        {"value": fmt.share(persona.share_of_customers), "label": t["of_customers"]},
    ]
    if persona.traits:
        top = persona.traits[0]
        segment, base = trait_texts(top, fmt)
        label = trait_label(top, inputs.vocab["traits"]["level_label"])
        stats.append({"value": segment, "label": fill(t["top_trait"], {"label": label, "base": base})})
    return stats


def build(persona: Persona, inputs: PageInputs) -> dict:
    t, fmt = inputs.vocab["persona"], inputs.fmt
    colour = inputs.colours[persona.segment_id]
    view = map_view(inputs.data.projection)
    mix = inputs.catalog.get(persona.mix_feature) if persona.mix_feature else None
    threshold = float(inputs.rules["traits"].get("min_std_diff", 0.5))
    return {
        "anchor": f"segment-{persona.segment_id}",
        "segment_id": persona.segment_id,
        "colour": colour,
        "text_colour": charts.text_colour(colour),
        "kicker": fill(t["kicker"], {"segment_id": str(persona.segment_id), "k": str(len(inputs.personas))}),
        "name": persona.name,
        "portrait": persona.profile,
        "behaviour": persona.behaviour,
        "stats": _stats(persona, inputs),
        "figures": _key_figures(persona, inputs, threshold),
        "mix_title": fill(t["mix_title"], {"feature": mix.label}) if mix else None,
        "mix_chart": inputs.chart.get(f"mix_{persona.segment_id}"),
        "locator_chart": inputs.chart.get(f"locator_{persona.segment_id}"),
        "locator_caption": fill(t["locator_caption"], {"view": inputs.vocab["compare"]["views"][view]}) if view else "",
        "traits": _trait_rows(persona, inputs),
        "actions": persona.actions,
        "channels": persona.channels,
        "customers": fill(inputs.vocab["summary"]["customers"], {"customers": fmt.number(persona.customers)}),
        "share_of_customers": fmt.share(persona.share_of_customers),
    }


def build_all(inputs: PageInputs) -> list[Mapping]:
    return [build(p, inputs) for p in inputs.personas]
