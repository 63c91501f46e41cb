"""A message read against the model catalogue: its model known (or the stack's default), each
field one its model's family has, each value one the model takes, its references of the
family's field and number; an extension checked against the video it extends
(docs/contract.md, "The families and their fields")."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from pydantic import ValidationError

from sora_relay.domain.catalogue import Catalogue, Family, ModelSpec
from sora_relay.domain.request import (
    MAX_FALLBACKS,
    MAX_LISTED_PROBLEMS,
    REFERENCE_FIELDS,
    FallbackEntry,
    InvalidRequest,
    ParsedRequest,
    RequestMessage,
    VideoRequest,
    describe_errors,
    invalid_message,
)

# The model and family of an earlier request of this stack, by its request_id; None when the
# stack has read no valid request of that id.
EarlierRequests = Callable[[str], VideoRequest | None]


@dataclass(frozen=True)
class RequestRules:
    catalogue: Catalogue
    default_model: str = "sora-2"
    # The FallbackModels parameter: the models to try after each model, for requests naming none.
    fallback_chains: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    # The CallbacksAllowPrivate parameter: http callbacks too (a local stack's receivers).
    callbacks_allow_private: bool = False

    @classmethod
    def of(
        cls,
        extra_models: str = "",
        default_model: str = "sora-2",
        fallback_models: str = "",
        *,
        callbacks_allow_private: bool = False,
    ) -> RequestRules:
        catalogue = Catalogue.bundled().with_extra(extra_models)
        if catalogue.model(default_model) is None:
            raise ValueError(f"DefaultModel: {default_model!r} is neither in the catalogue nor in ExtraModels")
        chains = fallback_chains(fallback_models, catalogue)
        return cls(catalogue, default_model, chains, callbacks_allow_private)


def fallback_chains(text: str, catalogue: Catalogue) -> dict[str, tuple[str, ...]]:
    """`veo-3.1>kling-video-2-6,sora-2>veo-3.1-fast` as each model's chain; raises ValueError,
    naming the parameter, for a model the stack does not know or a chain too long."""
    chains: dict[str, tuple[str, ...]] = {}
    for chain in (part.strip() for part in text.split(",")):
        if not chain:
            continue
        first, *rest = (name.strip() for name in chain.split(">"))
        unknown = [name for name in (first, *rest) if catalogue.model(name) is None]
        if unknown or not rest:
            raise ValueError(f"FallbackModels: {chain!r} must be model>fallback[>fallback] of known models")
        if len(rest) > MAX_FALLBACKS or first in chains:
            raise ValueError(f"FallbackModels: {chain!r}: one chain per model, of at most {MAX_FALLBACKS} fallbacks")
        chains[first] = tuple(rest)
    return chains


def _no_earlier(_: str) -> VideoRequest | None:
    return None


def parse_request(
    body: str, message_id: str, rules: RequestRules | None = None, earlier: EarlierRequests = _no_earlier
) -> ParsedRequest | InvalidRequest:
    """The message as a valid request, or why it is not one."""
    rules = rules or RequestRules(Catalogue.bundled())
    try:
        message = RequestMessage.model_validate_json(body)
    except ValidationError as error:
        return invalid_message(body, message_id, describe_errors(error))
    checked = _extension(message, rules, earlier) if message.extend else _generation(message, rules)
    if message.callback_url and message.callback_url.startswith("http:") and not rules.callbacks_allow_private:
        http = ["callback_url: must be an https:// address"]
        checked = [*checked, *http] if isinstance(checked, list) else http
    if isinstance(checked, list):
        listed = checked[:MAX_LISTED_PROBLEMS]
        if len(checked) > MAX_LISTED_PROBLEMS:
            listed.append(f"and {len(checked) - MAX_LISTED_PROBLEMS} more problems")
        return invalid_message(body, message_id, "; ".join(listed))
    return ParsedRequest(request_id=message.request_id or message_id, request=checked)


def _generation(message: RequestMessage, rules: RequestRules, *, fallbacks: bool = True) -> VideoRequest | list[str]:
    catalogue = rules.catalogue
    name = message.model or rules.default_model
    model = catalogue.model(name)
    if model is None:
        return [f"model: unknown model {name!r} (this stack takes {', '.join(catalogue.models)})"]
    family = catalogue.family_of(model)
    problems = _settings_problems(message, model, family, catalogue, list(family.fields))
    problems += _reference_problems(message, model, family, catalogue)
    if len(message.prompt.strip()) < family.shortest_prompt:
        problems.append(f"prompt: {family.name} models take a prompt of at least {family.shortest_prompt} characters")
    if problems:
        return problems
    filled = {**catalogue.defaults(model), **message.settings()}
    chain = message.fallback
    if chain is None:
        # Stored only when there is one: a request without stays as requests were before fallbacks.
        chain = [FallbackEntry(model=fallback) for fallback in rules.fallback_chains.get(name, ())] or None
    request = VideoRequest.model_validate(
        {**message.model_dump(exclude_none=True), **filled, "model": name, "family": family.name, "fallback": chain}
    )
    # Each fallback is read now as it will be tried: a typo must fail the request before any credit is spent.
    for index in range(len(chain or []) if fallbacks else 0):
        attempt = _fallback_attempt(request, index, rules)
        if isinstance(attempt, list):
            problems += [f"fallback[{index}].{problem}" for problem in attempt]
    return problems or request


def next_attempt(request: VideoRequest, rules: RequestRules) -> VideoRequest | None:
    """The request its first fallback makes (with the rest of its chain), or None when it has none
    (or the stack no longer takes it: its ExtraModels changed since)."""
    if not request.fallback:
        return None
    attempt = _fallback_attempt(request, 0, rules)
    return None if isinstance(attempt, list) else attempt


def _fallback_attempt(request: VideoRequest, index: int, rules: RequestRules) -> VideoRequest | list[str]:
    """`request` as its fallback `index` makes it: the prompt, references, priority, metadata and
    callback carried over, the entry's own settings (else its model's defaults), the entries after it to
    try next."""
    assert request.fallback is not None
    entry = request.fallback[index]
    spec = rules.catalogue.model(entry.model)
    if spec is None:
        return [f"model: unknown model {entry.model!r} (this stack takes {', '.join(rules.catalogue.models)})"]
    field_name = rules.catalogue.family_of(spec).references.field
    uris = [uri for _, uri in request.references]
    message = RequestMessage.model_validate(
        {
            **({"request_id": request.request_id} if request.request_id else {}),
            "prompt": request.prompt,
            "priority": request.priority,
            "metadata": request.metadata,
            **({"callback_url": request.callback_url} if request.callback_url else {}),
            **entry.model_dump(exclude_none=True),
            **({field_name: uris} if uris else {}),
            "fallback": request.fallback[index + 1 :],
        }
    )
    return _generation(message, rules, fallbacks=False)  # the entries after it are read with the request


def _extension(message: RequestMessage, rules: RequestRules, earlier: EarlierRequests) -> VideoRequest | list[str]:
    assert message.extend is not None
    extended = earlier(message.extend.request_id)
    if extended is None:
        return [f"extend: this stack has read no valid request {message.extend.request_id!r} to extend"]
    catalogue = rules.catalogue
    family = catalogue.families[extended.family]
    if family.extend_fields is None:
        extendable = ", ".join(name for name, spec in catalogue.families.items() if spec.extendable)
        return [f"extend: {family.name} videos cannot be extended (the provider extends {extendable} videos)"]
    problems = []
    if message.model is not None:
        problems.append("model: an extension names no model (it follows the video it extends)")
    if message.fallback:
        problems.append("fallback: an extension continues its earlier video's model; it takes no fallback")
    model = catalogue.model(extended.model) or ModelSpec(name=extended.model, family=family.name, extra=True)
    problems += _settings_problems(message, model, family, catalogue, family.extend_fields, extending=True)
    problems += [f"{field}: an extension takes no references" for field in REFERENCE_FIELDS if getattr(message, field)]
    if problems:
        return problems
    return VideoRequest.model_validate(
        {**message.model_dump(exclude_none=True), "model": extended.model, "family": family.name}
    )


def _settings_problems(
    message: RequestMessage,
    model: ModelSpec,
    family: Family,
    catalogue: Catalogue,
    takes: list[str],
    *,
    extending: bool = False,
) -> list[str]:
    problems = []
    for field, value in message.settings().items():
        if field not in takes:
            what = f"an extension of a {family.name} video" if extending else f"{model.name} (family {family.name})"
            problems.append(f"{field}: not a field {what} takes (it takes {', '.join(takes) or 'none'})")
            continue
        spec = family.fields[field]  # its type the message's shape checked already
        allowed = catalogue.allowed(model, field)
        if allowed is not None and value not in allowed:
            values = ", ".join(str(choice) for choice in allowed)
            problems.append(f"{field}: {value!r} is not a value {model.name} takes (it takes {values})")
        if spec.needs_references and not getattr(message, family.references.field):
            problems.append(f"{field}: only with {family.references.field}")
    return problems


def _reference_problems(message: RequestMessage, model: ModelSpec, family: Family, catalogue: Catalogue) -> list[str]:
    problems = []
    for field in REFERENCE_FIELDS:
        given = getattr(message, field) or []
        if given and field != family.references.field:
            problems.append(
                f"{field}: not a field {model.name} (family {family.name}) takes; its references are"
                f" {family.references.field}"
            )
    most = catalogue.most_references(model)
    given = getattr(message, family.references.field) or []
    if len(given) > most:
        problems.append(f"{family.references.field}: {model.name} takes at most {most} reference images")
    return problems
