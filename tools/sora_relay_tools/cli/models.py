"""`models`: the model catalogue the stack validates requests against."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from sora_relay.domain.catalogue import Catalogue
from sora_relay_tools.cli.session import Session, out, shown, user_command


def describe(catalogue: Catalogue) -> list[dict[str, Any]]:
    """Each model with its family, the fields it takes (values and defaults), its references,
    whether it can be extended, and its typical generation time."""
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
            }
        )
    return models


@click.command()
@user_command
def models(session: Session) -> None:
    """The models the stack knows, with their families' fields, values and defaults."""
    described = describe(Catalogue.bundled())
    if session.as_json:
        session.emit({"models": described})
        return
    table = Table("model", "family", "fields (default first)", "references", "extend", "typical")
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
        )
    out.print(table)
    out.print("Sora is served while the provider serves it; ExtraModels allows more models of these families.")


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
