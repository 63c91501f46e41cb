"""`models`: the model catalogue the stack validates requests against."""

from __future__ import annotations

from typing import Any

import click
from botocore.exceptions import BotoCoreError, ClientError
from rich.table import Table

from sora_relay.domain.catalogue import Catalogue
from sora_relay.domain.events import iso_utc
from sora_relay.domain.ports import BreakerState
from sora_relay_tools.cli.session import Session, out, shown, user_command
from sora_relay_tools.client import StackNotFound


def describe(catalogue: Catalogue, breakers: dict[str, BreakerState] | None = None) -> list[dict[str, Any]]:
    """Each model with its family, the fields it takes (values and defaults), its references,
    whether it can be extended, its typical generation time, and (`breakers`, when the stack was
    read) its state: `ok`, `failing` (failures in a row) or `open` (its breaker)."""
    models = []
    for spec in catalogue.models.values():
        family = catalogue.family_of(spec)
        defaults = catalogue.defaults(spec)
        fields = {
            name: {"values": catalogue.allowed(spec, name), **({"default": defaults[name]} if name in defaults else {})}
            for name in family.fields
        }
        models.append(
            {
                "model": spec.name,
                "family": family.name,
                "fields": fields,
                "references": {"field": family.references.field, "most": catalogue.most_references(spec)},
                "extendable": family.extendable,
                "typical_seconds": spec.typical_seconds,
                **({"state": _state(breakers.get(spec.name))} if breakers is not None else {}),
            }
        )
    return models


def _state(breaker: BreakerState | None) -> dict[str, Any]:
    if breaker is None or not breaker.failures:
        return {"breaker": "ok"}
    if breaker.opened_at is None:
        return {"breaker": "failing", "failures": breaker.failures}
    return {"breaker": "open", "failures": breaker.failures, "opened_at": iso_utc(breaker.opened_at)}


@click.command()
@user_command
def models(session: Session) -> None:
    """The models the stack knows, with their families' fields, values and defaults, and each
    one's state at the provider (a breaker opens after failures in a row)."""
    try:
        breakers: dict[str, BreakerState] | None = session.relay.breakers()
    except (StackNotFound, ClientError, BotoCoreError):
        breakers = None  # the catalogue is still worth showing without a stack
    described = describe(Catalogue.bundled(), breakers)
    if session.as_json:
        session.emit({"models": described})
        return
    table = Table("model", "family", "fields (default first)", "references", "extend", "typical", "state")
    for column in table.columns:
        column.overflow = "fold"  # every value whole, however narrow the terminal
    for model in described:
        fields = "\n".join(f"{name} {_values(spec)}" for name, spec in model["fields"].items())
        references = f"{model['references']['field']} ≤ {model['references']['most']}"
        table.add_row(
            shown(model["model"]),
            model["family"],
            shown(fields),
            references,
            "yes" if model["extendable"] else "no",
            f"~{model['typical_seconds']} s",
            _shown_state(model.get("state")),
        )
    out.print(table)
    out.print("Sora is served while the provider serves it; ExtraModels allows more models of these families.")


def _shown_state(state: dict[str, Any] | None) -> str:
    if state is None:
        return "?"
    if state["breaker"] == "open":
        return f"[red]breaker open[/] since {state['opened_at']} ({state['failures']} failures)"
    return "ok" if state["breaker"] == "ok" else f"{state['failures']} failures in a row"


def _values(spec: dict[str, Any]) -> str:
    values = [str(value) for value in spec["values"] or []]
    default = spec.get("default")
    if default is not None and str(default) in values:
        values.remove(str(default))
        values.insert(0, f"[{default}]")
    if len(values) > 6 and all(value.strip("[]").isdigit() for value in values):
        numbers = sorted(int(value.strip("[]")) for value in values)
        return f"{numbers[0]}-{numbers[-1]}" + (f" [{default}]" if default is not None else "")
    return "|".join(values)
