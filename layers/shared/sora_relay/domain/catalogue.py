"""The model catalogue: which models the relay serves, their families (the provider's endpoints)
and each family's fields, as data (`sora_relay/catalogue.json`, docs/models.md). Operators allow
more models of a known family with `ExtraModels`, without a release."""

from __future__ import annotations

import functools
import json
from importlib.resources import files
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Setting = bool | int | str


class FieldSpec(BaseModel):
    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    type: Literal["integer", "string", "boolean"]
    values: list[Setting]
    # Only with reference images (Veo's `mode_image`: how its images are used).
    needs_references: bool = False


class References(BaseModel):
    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    field: Literal["files", "ref_images"]  # the provider's part name, and the request's field
    most: int = Field(ge=0)


class Family(BaseModel):
    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    name: str = ""
    fields: dict[str, FieldSpec]
    defaults: dict[str, Setting]
    # The words the provider's full records use for a request's values, where they are not
    # the values themselves (a field: a value: its words).
    record_words: dict[str, dict[str, list[str]]] = {}
    references: References
    # The fields its extend endpoint takes besides prompt and ref_history; None: it has none.
    extend_fields: list[str] | None
    shortest_prompt: int = 1
    # Whether its endpoint takes a `model` field (one serves a single model and takes none).
    sends_model: bool = True
    # The frames its settings make, by the HTTP API's `size` (`1280x720`): the settings that make each.
    sizes: dict[str, dict[str, Setting]] = {}

    @property
    def extendable(self) -> bool:
        return self.extend_fields is not None


class ModelSpec(BaseModel):
    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")

    name: str = ""
    family: str
    typical_seconds: int = Field(default=180, ge=1)  # at its default duration
    typical_seconds_by_duration: dict[int, int] = {}  # at other durations, where known
    values: dict[str, list[Setting]] = {}  # narrower than the family's
    defaults: dict[str, Setting] = {}  # over the family's
    most_references: int | None = None
    history_names: list[str] = []
    # Allowed by ExtraModels: its fields are checked by type and family only.
    extra: bool = False


class Catalogue(BaseModel):
    model_config = ConfigDict(defer_build=True, frozen=True, extra="ignore")

    families: dict[str, Family]
    models: dict[str, ModelSpec]

    @classmethod
    @functools.cache
    def bundled(cls) -> Catalogue:
        text = files("sora_relay").joinpath("catalogue.json").read_text()
        raw = json.loads(text)
        families = {name: {**spec, "name": name} for name, spec in raw["families"].items()}
        models = {name: {**spec, "name": name} for name, spec in raw["models"].items()}
        return cls.model_validate({"families": families, "models": models})

    def with_extra(self, extra_models: str) -> Catalogue:
        """This catalogue and the models an operator allows: comma-separated names whose prefix
        is their family's (`veo-3.2-preview`), or `family:model`. Raises ValueError for one of
        no known family."""
        added: dict[str, ModelSpec] = {}
        for entry in (part.strip() for part in extra_models.split(",")):
            if not entry:
                continue
            family, _, name = entry.rpartition(":") if ":" in entry else (self._family_by_prefix(entry), "", entry)
            if family not in self.families or not name:
                known = ", ".join(self.families)
                raise ValueError(f"ExtraModels: {entry!r} is of no known family ({known}); write it family:model")
            if name not in self.models:
                typical = max(m.typical_seconds for m in self.models.values() if m.family == family)
                added[name] = ModelSpec(name=name, family=family, typical_seconds=typical, extra=True)
        return self.model_copy(update={"models": {**self.models, **added}}) if added else self

    def _family_by_prefix(self, name: str) -> str:
        return next((family for family in self.families if name.startswith(f"{family}-")), "")

    def model(self, name: str) -> ModelSpec | None:
        return self.models.get(name)

    def family_of(self, model: ModelSpec) -> Family:
        return self.families[model.family]

    def allowed(self, model: ModelSpec, field: str) -> list[Setting] | None:
        """The values `model` takes for `field`; None when any value of the field's type goes (a
        model allowed by ExtraModels, which the catalogue does not describe)."""
        if model.extra:
            return None
        return model.values.get(field, self.families[model.family].fields[field].values)

    def defaults(self, model: ModelSpec) -> dict[str, Setting]:
        return {**self.families[model.family].defaults, **model.defaults}

    def most_references(self, model: ModelSpec) -> int:
        family = self.families[model.family]
        return family.references.most if model.most_references is None else model.most_references

    def history_names(self, model_name: str) -> set[str]:
        """What the account's history may call a model: its own name, and its aliases."""
        spec = self.models.get(model_name)
        return {model_name, *(spec.history_names if spec else [])}

    def recorded_as(self, family: str, field: str, stated: Setting, value: Setting) -> bool | None:
        """Whether a record that states `stated` for `field` says the request's `value`: True
        when it is the value or one of its record words; False when it is another value of the
        field (or one of that value's words); None when the catalogue does not know the word,
        so it cannot tell."""
        spec = self.families.get(family)
        if spec is None:
            return None
        words = spec.record_words.get(field, {})
        if stated == value or str(stated) in words.get(str(value), []):
            return True
        field_spec = spec.fields.get(field)
        others = [other for other in (field_spec.values if field_spec else []) if other != value]
        if any(stated == other or str(stated) in words.get(str(other), []) for other in others):
            return False
        return None

    def known_names(self) -> set[str]:
        return {name for spec in self.models.values() for name in (spec.name, *spec.history_names)}

    def setting_fields(self) -> set[str]:
        """Every family's setting fields (the request's union)."""
        return {field for family in self.families.values() for field in family.fields}
