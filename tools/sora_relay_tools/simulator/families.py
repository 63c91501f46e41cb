"""What the provider's endpoints take, family by family, as its public clients show it: the
simulator's own table, kept apart from the relay's catalogue so that the relay's tests meet the
provider's rules, not the relay's reading of them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sora_relay_tools.simulator.shapes import error, validation_error


@dataclass(frozen=True)
class FamilyRules:
    models: frozenset[str]
    fields: dict[str, frozenset[str]]
    references: str  # the part name of its reference images
    extend_fields: frozenset[str] | None = None  # None: no extend endpoint
    price: int = 40
    defaults: tuple[tuple[str, str], ...] = ()  # what a generation is made with when not told
    takes_model: bool = True  # an endpoint of one model takes no `model` field

    @property
    def default_model(self) -> str:
        """The model of a submission that names none."""
        return min(self.models)


def _range(first: int, last: int) -> frozenset[str]:
    return frozenset(str(n) for n in range(first, last + 1))


FAMILIES: dict[str, FamilyRules] = {
    "sora": FamilyRules(
        frozenset({"sora-2", "sora-2-pro", "sora-2-pro-hd"}),
        {
            "duration": frozenset({"10", "15", "25"}),
            "resolution": frozenset({"small", "large"}),
            "aspect_ratio": frozenset({"landscape", "portrait"}),
        },
        "files",
        price=30,
        defaults=(("duration", "10"), ("resolution", "small"), ("aspect_ratio", "landscape")),
    ),
    "veo": FamilyRules(
        frozenset({"veo-3.1", "veo-3.1-fast", "veo-3.1-lite", "veo-2", "omni-flash"}),
        {
            "duration": frozenset({"4", "6", "8", "10"}),
            "resolution": frozenset({"720p", "1080p"}),
            "aspect_ratio": frozenset({"16:9", "9:16"}),
            "mode_image": frozenset({"frame", "ingredient"}),
        },
        "ref_images",
        extend_fields=frozenset(),
        price=60,
        defaults=(("duration", "8"), ("resolution", "720p"), ("aspect_ratio", "16:9")),
    ),
    "kling": FamilyRules(
        frozenset(
            {
                "kling-video-3-0",
                "kling-video-2-6",
                "kling-video-2-5",
                "kling-video-o1",
                "kling-video-2-1-5s",
                "kling-video-2-1-10s",
                "kling-video-1-6-5s",
                "kling-video-1-6-10s",
            }
        ),
        {
            "duration": _range(3, 15),
            "mode": frozenset({"standard", "professional", "professional_audio", "relax"}),
            "aspect_ratio": frozenset({"16:9", "9:16", "1:1"}),
        },
        "ref_images",
        extend_fields=frozenset({"duration"}),
        price=50,
        defaults=(("duration", "5"), ("mode", "standard"), ("aspect_ratio", "16:9")),
    ),
    "seedance": FamilyRules(
        frozenset({"seedance-2", "seedance-2-omni", "seedance-2-mini", "seedance-2-5-omni"}),
        {
            "duration": _range(4, 30),
            "mode": frozenset({"fast", "pro", "fast-vip", "pro-vip", "cheap", "business_mini"}),
            "resolution": frozenset({"720p"}),
            "aspect_ratio": frozenset({"16:9", "9:16", "1:1", "3:4", "4:3", "21:9"}),
        },
        "ref_images",
        extend_fields=frozenset({"duration", "mode"}),
        price=45,
        defaults=(("duration", "5"), ("mode", "fast"), ("resolution", "720p"), ("aspect_ratio", "16:9")),
    ),
    "grok": FamilyRules(
        frozenset({"grok-3"}),
        {
            "duration": frozenset({"6", "10", "15"}),
            "resolution": frozenset({"480p", "720p"}),
            "aspect_ratio": frozenset({"landscape", "portrait", "square"}),
            "mode": frozenset({"normal", "custom", "extremely-crazy", "extremely-spicy-or-crazy"}),
            "skip_audio": frozenset({"true", "false"}),
        },
        "files",
        extend_fields=frozenset({"duration"}),
        price=20,
        defaults=(("duration", "6"), ("resolution", "480p"), ("aspect_ratio", "landscape"), ("mode", "normal")),
    ),
    # December 2026 (public clients built from the provider's docs).
    "minimax": FamilyRules(
        frozenset({"minimax-h3"}),
        {"duration": _range(5, 15), "mode": frozenset({"standard"})},
        "ref_images",
        price=45,
        defaults=(("duration", "6"), ("mode", "standard")),
    ),
    "flux": FamilyRules(
        frozenset({"flux-3"}),
        {
            "duration": _range(5, 20),
            "mode": frozenset({"vip"}),
            "aspect_ratio": frozenset({"16:9", "9:16", "1:1", "2:1", "21:9"}),
        },
        "ref_images",
        price=55,
        defaults=(("duration", "5"), ("mode", "vip"), ("aspect_ratio", "16:9")),
    ),
    "grok-lower": FamilyRules(
        frozenset({"grok-lower"}),
        {
            "duration": frozenset({"6", "10", "15"}),
            "resolution": frozenset({"480p", "720p", "1080p"}),
            "aspect_ratio": frozenset({"16:9", "9:16", "1:1", "3:2", "2:3"}),
        },
        "files",
        price=15,
        defaults=(("duration", "6"), ("resolution", "720p"), ("aspect_ratio", "16:9")),
        takes_model=False,
    ),
}


def check_submission(family: str, form: dict[str, str]) -> tuple[int, dict[str, Any]] | None:
    """FastAPI's 422 for a missing field, the provider's 400 INVALID_INPUT for a field or value
    its endpoint does not take; None when the submission is one it takes."""
    rules = FAMILIES[family]
    if "prompt" not in form:
        return 422, validation_error("prompt", "field required", "missing")
    if not form["prompt"].strip():
        return 400, error("INVALID_INPUT", "The prompt must not be empty.")
    if "model" in form and not rules.takes_model:
        return 400, error("INVALID_INPUT", "model is not a field of this endpoint")
    model = form.get("model", rules.default_model)
    # A model of the family the provider added (a name of the family's) is served too.
    if model not in rules.models and not model.startswith(f"{family}-"):
        return 400, error("INVALID_INPUT", f"model must be one of {', '.join(sorted(rules.models))}")
    return _check_fields(rules.fields, form, {"prompt", "model"})


def check_extension(family: str, form: dict[str, str]) -> tuple[int, dict[str, Any]] | None:
    rules = FAMILIES[family]
    for name in ("prompt", "ref_history"):
        if name not in form:
            return 422, validation_error(name, "field required", "missing")
    assert rules.extend_fields is not None
    takes = {name: rules.fields[name] for name in rules.extend_fields}
    return _check_fields(takes, form, {"prompt", "ref_history"})


def _check_fields(
    takes: dict[str, frozenset[str]], form: dict[str, str], always: set[str]
) -> tuple[int, dict[str, Any]] | None:
    for name, value in form.items():
        if name in always:
            continue
        if name not in takes:
            return 400, error("INVALID_INPUT", f"{name} is not a field of this endpoint")
        if value not in takes[name]:
            return 400, error("INVALID_INPUT", f"{name} must be one of {', '.join(sorted(takes[name]))}")
    return None
