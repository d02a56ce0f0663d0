"""The REST API's response bodies, as ``api.v1.schema.json`` beside this module defines them.

Three bodies, one ``$defs`` entry each: ``models`` (``GET /aimodel/api/models``), ``diff``
(``GET /aimodel/api/diff``, whose ``payload`` is a report envelope of kind ``diff``, see
``aimodel_kernel/display/report.v1.schema.json``) and ``error`` (every 4xx/5xx answer). The
TypeScript side is ``labextension/src/apitypes.ts``; both are tested against the example files
in ``docs/api-examples/`` (written by ``scripts/make_api_examples.py``).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any, Literal

SCHEMA_FILE = "api.v1.schema.json"
Body = Literal["models", "diff", "error"]
BODIES: tuple[Body, ...] = ("models", "diff", "error")


@cache
def schema() -> dict[str, Any]:
    """The JSON Schema of the API's response bodies (``api.v1.schema.json``).

    Returns
    -------
    dict
        The parsed schema; its ``$defs`` hold one entry per body in :data:`BODIES`.
    """
    text = resources.files(__package__).joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    return json.loads(text)


@cache
def registry() -> Any:
    """The schemas ``$ref`` reaches by ``$id``: this one and the report envelope's.

    Returns
    -------
    referencing.Registry
        For ``jsonschema`` validators (``Draft202012Validator(schema(), registry=registry())``).
    """
    from referencing import Registry
    from referencing.jsonschema import DRAFT202012

    from ..display import view

    return Registry().with_resources(
        (s["$id"], DRAFT202012.create_resource(s)) for s in (schema(), view.schema()))


@cache
def _validator(body: Body) -> Any:
    import jsonschema

    subschema = {"$ref": f"{schema()['$id']}#/$defs/{body}"}
    return jsonschema.Draft202012Validator(subschema, registry=registry())


def validate(value: Any, body: Body) -> None:
    """Check a parsed response body against the schema.

    Parameters
    ----------
    value
        The parsed JSON body.
    body : {"models", "diff", "error"}
        Which response it should be.

    Raises
    ------
    jsonschema.ValidationError
        ``value`` is not a valid ``body`` (the most relevant error of all found).
    ValueError
        ``body`` is not one of :data:`BODIES`.
    """
    if body not in BODIES:
        raise ValueError(f"unknown body {body!r}: one of {', '.join(BODIES)}")
    import jsonschema

    error = jsonschema.exceptions.best_match(_validator(body).iter_errors(value))
    if error is not None:
        raise error
