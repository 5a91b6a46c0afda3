"""The workflow's config checked against config/schema.yaml, with errors that fit on a screen.

Snakemake's `validate` reports one error followed by the whole schema and the whole config (a misspelt top-level
key printed over 400 lines). Here each error is one line: the key's full path, what is wrong with it and, for an
unknown key, the closest valid one; the header names the config file(s) in use. Defaults are filled in as
`snakemake.utils.validate(set_default=True)` fills them: the workflow reads them without `.get`.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError

MAX_ERRORS = 5  # enough to fix a config in one pass; past this, the rest is usually the same mistake again
MAX_MESSAGE = 160  # characters of one jsonschema message (some quote the whole offending value)
UNKNOWN_KEY_VALIDATORS = ("additionalProperties", "unevaluatedProperties")


class ConfigError(ValueError):
    """The config does not match the schema; the message names every offending key (up to MAX_ERRORS)."""


def check_config(config: dict[str, Any], schema_path: str | Path, sources: list[str]) -> None:
    """Validate `config` in place (filling defaults); raise ConfigError naming `sources` and each bad key."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = _filling_defaults(Draft202012Validator)(schema)
    errors = sorted(validator.iter_errors(config), key=lambda error: [str(part) for part in error.absolute_path])
    if not errors:
        return
    lines = [line for error in errors for line in _describe(error, schema)]
    shown = lines[:MAX_ERRORS]
    if len(lines) > len(shown):
        shown.append(f"... and {len(lines) - len(shown)} more")
    header = f"Invalid config in {', '.join(sources)} (checked against {schema_path}):"
    raise ConfigError("\n".join([header, *(f"  {line}" for line in shown)]))


def _filling_defaults(validator_class):
    """`validator_class` that also sets each absent property that has a `default` (the jsonschema FAQ recipe,
    which Snakemake's validate uses too)."""
    check_properties = validator_class.VALIDATORS["properties"]

    def properties(validator, declared, instance, schema):
        if validator.is_type(instance, "object"):
            for key, subschema in declared.items():
                if "default" in subschema:
                    instance.setdefault(key, subschema["default"])
        yield from check_properties(validator, declared, instance, schema)

    return validators.extend(validator_class, {"properties": properties})


def _key_path(parts) -> str:
    """`training.gradient_checkpointing`, `sampling.self.n`, `models.qwen.stop_tokens[0]`."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _describe(error: ValidationError, root: dict[str, Any]) -> Iterator[str]:
    """One line per problem of `error`: an unknown key (with the closest valid key), or jsonschema's message."""
    where = _key_path(error.absolute_path)
    if error.validator in UNKNOWN_KEY_VALIDATORS:
        valid = sorted(_declared_keys(error.schema, root))
        for key in error.instance:
            if key not in valid:
                yield f"{_key_path([*error.absolute_path, key])}: unknown key; {_suggestion(key, valid)}"
        return
    if error.validator == "required":
        missing = error.message.split("'")[1] if error.message.count("'") >= 2 else error.message
        yield f"{where or '(top level)'}: missing required key {missing!r}"
        return
    if error.validator in ("oneOf", "anyOf") and all(set(option) == {"required"} for option in error.validator_value):
        forms = " or ".join("+".join(option["required"]) for option in error.validator_value)
        yield f"{where}: needs exactly one of {forms}"
        return
    if error.validator == "not" and set(error.validator_value) == {"required"}:  # a key allowed elsewhere only
        keys = ", ".join(error.validator_value["required"])
        yield f"{where}: {keys} not allowed here ({error.schema.get('description', 'see the schema')})"
        return
    message = error.message if len(error.message) <= MAX_MESSAGE else error.message[:MAX_MESSAGE] + "..."
    yield f"{where or '(top level)'}: {message}"


def _suggestion(key: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    return "valid keys here: " + ", ".join(valid)


def _declared_keys(schema: dict[str, Any], root: dict[str, Any]) -> set[str]:
    """The property names a schema declares, through its local `$ref`s and `allOf` parts."""
    keys = set(schema.get("properties", {}))
    if "$ref" in schema:
        keys |= _declared_keys(_resolve(schema["$ref"], root), root)
    for part in schema.get("allOf", []):
        keys |= _declared_keys(part, root)
    return keys


def _resolve(ref: str, root: dict[str, Any]) -> dict[str, Any]:
    if not ref.startswith("#/"):
        raise ValueError(f"only local $refs are supported in the config schema, got {json.dumps(ref)}")
    node = root
    for part in ref[2:].split("/"):
        node = node[part]
    return node
