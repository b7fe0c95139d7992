"""`make init ORDERS=f [DATA=c]`: profile the order lines (and the customer table), write
one declaration with its `orders:` section.

The declaration is written even when a required role cannot be told, with that role
left for the user to set; the run then stops with one line naming the candidates and
the key, so that the fix is one edit.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from .dialect import CsvOptions
from .errors import UserError
from .inference import Decision, infer_declaration
from .orders_inference import infer_orders, unresolved_message
from .profiling import profile_file
from .starter import HEADER, default_output, flow, render, write_declaration

ORDERS_HEADER = """
# Order lines ({source}): which column plays which role. Each is a header of the file;
# recency, frequency, monetary value, tenure, average order value, return rate and the
# shares of spend below become the customers' behaviour (docs/declaration.md, "Order lines").
# The reference date of recency is the last order date unless orders.as_of (or AS_OF=) is set.
"""


def render_orders(orders: dict, decisions: list[Decision], source: str, unresolved: dict[str, list[str]]) -> str:
    notes = {d.column: d.reason for d in decisions}
    lines = [ORDERS_HEADER.format(source=source).rstrip("\n"), "orders:"]
    for key, value in orders.items():
        column = value["column"] if isinstance(value, dict) else value
        note = notes.get(key) or notes.get(str(column))
        if note:
            lines.append(f"  # {note}")
        lines.append(f"  {key}: {flow(value)}")
    for role, candidates in unresolved.items():
        lines.append(f"  # review: could not tell the {role} column; candidates: {', '.join(candidates[:6]) or 'none'}")
        lines.append(f"  # {role}: {{column: ...}}")
    return "\n".join(lines) + "\n"


def init_orders_declaration(
    orders_file: Path, customers: Path | None, output: Path | None = None, force: bool = False
) -> tuple[Path, list[Decision]]:
    """Write the declaration of the order lines (and of the customer table, when given)."""
    output = Path(output) if output else default_output(Path(customers or orders_file))
    if output.exists() and not force:
        write_declaration("", output, force)  # refuses with the usual message, before any profiling
    options = CsvOptions.from_environment()
    profile = profile_file(Path(orders_file), options)
    draft = infer_orders(profile)
    decisions = list(draft.decisions)
    if customers is not None:
        table = infer_declaration(profile_file(Path(customers), options), date.today())
        text = render(table, str(customers))
        decisions = table.decisions + decisions
    else:
        text = HEADER.format(source=Path(orders_file).name, data=f"ORDERS={orders_file}").rstrip("\n") + "\n"
        text = text.replace("DATA=ORDERS=", "ORDERS=")
        text += (
            "version: 1\n"
            f"description: {flow(f'Order lines {profile.source} ({profile.rows:,} lines), declared by make init.')}\n"
        )
    text += render_orders(draft.orders, draft.decisions, profile.source, draft.unresolved)
    write_declaration(text, output, force)
    if draft.unresolved:
        raise UserError(f"wrote {output}, but " + unresolved_message(draft, profile.source))
    return output, decisions
