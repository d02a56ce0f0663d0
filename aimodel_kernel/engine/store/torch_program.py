"""Reading a ``torch.export`` program (``model.pt2``) without running anything from the file.

``torch.export.load`` is not safe on a file someone else wrote: weights and constants marked
``use_pickle`` go through ``torch.load(weights_only=False)``, sample inputs fall back to it,
torchbind and opaque constants are unpickled, an AOTInductor package loads a shared library,
a failed read falls back to the pre-2.7 zip format (pickles again), symbolic shapes are parsed
with ``sympy.sympify`` (``eval``), the program's ``guards_code`` is ``exec``-uted into a guard
function, graph names are pasted into the Python source ``torch.fx`` generates, and a node's
target may resolve to any attribute reachable from the ``torch`` module (``torch.os.system``).

:func:`load_program` reads the archive itself and refuses any of that before torch sees it:

- members: only the program JSON, raw weight and constant tensors and their JSON configs (and
  the archive's own bookkeeping); a payload marked ``use_pickle``, a torchbind or opaque
  constant, a legacy ``.pt`` member, an AOTInductor or ExecuTorch payload is refused;
- sample inputs (a pickle) are never read; without them torch builds no guard function;
- every string of the program must be a plain name (letters, digits, ``_`` and ``.``), except
  node targets (``torch.ops.aten.*`` / ``torch.ops.prims.*`` overloads and the symbolic
  ``_operator`` / ``math`` / ``torch.sym_*`` functions), symbolic expressions (a small grammar
  of sympy constructors and names, no attribute access), pytree specs (JSON naming tuples,
  lists and dicts only) and string arguments of operators; node metadata (stack traces, module
  stacks) is dropped; ``guards_code`` must be empty;
- after deserializing, every ``call_function`` in the graph and its subgraphs must be an ATen
  or prims operator, a symbolic operator or a control-flow operator (``cond``, ``while_loop``,
  ``map``).

Anything else is a :class:`~.trust.TrustError` naming what was found. The check depends on
torch's archive layout (torch 2.13); a layout it does not know is refused, never loaded the
unsafe way.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

from .trust import TrustError

MODEL_NAME = "model"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_.]*$")
_STRING_ARG = re.compile(r"^[A-Za-z0-9_ ,.\->:]*$")
_VERSION = re.compile(r"^[A-Za-z0-9_.+\-]*$")
_TARGET = re.compile(
    r"^(?:torch\.ops\.(?:aten|prims|higher_order)\.[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)?"
    r"|_operator\.[a-z_]+|math\.[a-z_]+|torch\.(?:_?sym_[a-z_]+))$")
_BOOKKEEPING = {"archive_format", "archive_version", "byteorder", ".data/version",
                ".data/serialization_id", ".data/serialization_version", "version"}
_HIGHER_ORDER = {"cond", "while_loop", "map_impl", "wrap_with_set_grad_enabled",
                 "wrap_with_autocast"}
_DENIED_ATEN = ("from_file", "_load", "save")

# sympy constructors a symbolic shape may use (srepr form), torch's sympy functions, and the
# keyword arguments srepr writes; a name outside these is refused (``exec``, ``open`` ...)
_SYM_NAMES = frozenset({
    "Symbol", "Dummy", "Integer", "Rational", "Float", "Add", "Mul", "Pow", "Max", "Min", "Mod",
    "Abs", "floor", "ceiling", "sqrt", "Eq", "Ne", "Lt", "Le", "Gt", "Ge", "Equality",
    "Unequality", "StrictLessThan", "StrictGreaterThan", "LessThan", "GreaterThan", "And", "Or",
    "Not", "Xor", "Piecewise", "ExprCondPair", "BooleanTrue", "BooleanFalse", "true", "false",
    "True", "False", "None", "oo", "zoo", "nan", "Infinity", "NegativeInfinity", "NaN", "One",
    "Zero", "NegativeOne", "Half", "IntInfinity", "NegativeIntInfinity", "int_oo", "FloorDiv",
    "ModularIndexing", "Where", "PythonMod", "CleanDiv", "CeilToInt", "FloorToInt", "CeilDiv",
    "LShift", "RShift", "PowByNatural", "FloatPow", "FloatTrueDiv", "IntTrueDiv",
    "IsNonOverlappingAndDenseIndicator", "TruncToFloat", "TruncToInt", "RoundToInt",
    "RoundDecimal", "ToFloat", "Identity", "integer", "positive", "negative", "nonnegative",
    "nonpositive", "real", "finite", "commutative", "precision",
})
_SYM_SYMBOL = re.compile(r"^[a-z]{1,5}\d+$")
_SYM_TOKEN = re.compile(
    r"\s+|(?P<num>\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<str>'[A-Za-z0-9_.+\-]*')|(?P<op>\*\*|//|==|!=|<=|>=|[-+*/%(),<>=&|~])")
_SPEC_TYPES = {None, "builtins.tuple", "builtins.list", "builtins.dict",
               "collections.OrderedDict"}


def _refuse(what: str) -> TrustError:
    return TrustError(f"model.pt2 {what}; refusing to load it (load the weights into a module "
                      "of the same architecture with into=model)")


def check_sym_expr(text: str) -> None:
    """Refuse a symbolic-shape expression outside the grammar ``sympify`` may safely see."""
    pos = 0
    while pos < len(text):
        m = _SYM_TOKEN.match(text, pos)
        if m is None:
            raise _refuse(f"has a symbolic shape {text[:60]!r} that is not a plain expression")
        name = m.group("name")
        if name is not None and name not in _SYM_NAMES and not _SYM_SYMBOL.match(name):
            raise _refuse(f"has a symbolic shape naming {name!r}")
        pos = m.end()


def _check_spec(text: str, where: str) -> None:
    try:
        spec = json.loads(text)
    except ValueError:
        raise _refuse(f"has an unreadable {where}") from None

    def walk(obj: Any) -> None:
        if isinstance(obj, dict):
            if "type" in obj and obj["type"] not in _SPEC_TYPES:
                raise _refuse(f"has a {where} naming type {str(obj['type'])[:60]!r}")
            if isinstance(obj.get("context"), str):
                context = obj["context"]
                try:
                    walk_context(json.loads(context))
                except ValueError:
                    raise _refuse(f"has an unreadable {where} context") from None
            for key, value in obj.items():
                if key != "context":
                    walk(value)
        elif isinstance(obj, list):
            for value in obj:
                walk(value)

    def walk_context(obj: Any) -> None:
        if isinstance(obj, str):
            if not _SAFE_NAME.match(obj):
                raise _refuse(f"has a {where} key {obj[:60]!r}")
        elif isinstance(obj, list):
            for value in obj:
                walk_context(value)
        elif obj is not None and not isinstance(obj, int | float | bool):
            raise _refuse(f"has a {where} context that is not plain names")

    walk(spec)


def check_program_json(doc: Any) -> Any:
    """Check (and strip the metadata of) a program's JSON document; return it.

    Raises
    ------
    TrustError
        A string that is not a plain name where one is expected, a target that is not an
        operator, a symbolic expression outside the grammar, guard code.
    """
    if not isinstance(doc, dict):
        raise _refuse("holds no program")
    if doc.get("guards_code"):
        raise _refuse("carries guard code (Python source)")

    def walk(obj: Any, key: str, parent: dict | None) -> Any:
        if isinstance(obj, dict):
            out = {}
            for k, v in obj.items():
                if not isinstance(k, str) or not _SAFE_NAME.match(k):
                    raise _refuse(f"has a field named {str(k)[:60]!r}")
                if k == "metadata" and isinstance(v, dict):
                    out[k] = {}  # stack traces, module stacks: informative, and pasted into code
                    continue
                out[k] = walk(v, k, obj)
            return out
        if isinstance(obj, list):
            return [walk(v, key, parent) for v in obj]
        if isinstance(obj, str):
            _check_string(obj, key, parent)
        return obj

    return walk(doc, "", None)


def _check_string(text: str, key: str, parent: dict | None) -> None:
    if key == "expr_str":
        check_sym_expr(text)
    elif key == "target" and parent is not None and "inputs" in parent:
        if not _TARGET.match(text):
            raise _refuse(f"calls {text[:80]!r}, which is not a torch operator")
        if text.startswith("torch.ops.aten.") and any(d in text for d in _DENIED_ATEN):
            raise _refuse(f"calls {text[:80]!r}, which reads or writes files")
    elif key in ("in_spec", "out_spec"):
        _check_spec(text, key)
    elif key in ("as_string", "as_strings"):
        if not _STRING_ARG.match(text):
            raise _refuse(f"passes the string {text[:60]!r} to an operator")
    elif key == "torch_version":
        if not _VERSION.match(text):
            raise _refuse("has an unreadable torch version")
    elif not _SAFE_NAME.match(text):
        raise _refuse(f"has a {key or 'value'} {text[:60]!r} that is not a plain name")


def _check_payload_config(text: str, prefix: str, what: str) -> None:
    try:
        config = json.loads(text)["config"]
    except (ValueError, KeyError, TypeError):
        raise _refuse(f"has an unreadable {what} config") from None
    if not isinstance(config, dict):
        raise _refuse(f"has an unreadable {what} config")
    for name, meta in config.items():
        if not isinstance(meta, dict) or not _SAFE_NAME.match(str(name)):
            raise _refuse(f"has an unreadable {what} entry")
        if meta.get("use_pickle"):
            raise _refuse(f"stores {what} {name!r} as a pickle")
        path = str(meta.get("path_name", ""))
        if not re.fullmatch(rf"{prefix}\d+", path):
            raise _refuse(f"stores {what} {name!r} as {path[:40]!r} (not a raw tensor)")
        if meta.get("tensor_meta") is None:
            raise _refuse(f"stores {what} {name!r} without its tensor layout")


def _check_members(names: list[str]) -> None:
    from torch.export.pt2_archive import constants as c

    weights = re.compile(rf"^{re.escape(c.WEIGHTS_DIR)}{c.WEIGHT_FILENAME_PREFIX}\d+$")
    tensors = re.compile(rf"^{re.escape(c.CONSTANTS_DIR)}{c.TENSOR_CONSTANT_FILENAME_PREFIX}\d+$")
    known = {c.MODELS_FILENAME_FORMAT.format(MODEL_NAME),
             c.WEIGHTS_CONFIG_FILENAME_FORMAT.format(MODEL_NAME),
             c.CONSTANTS_CONFIG_FILENAME_FORMAT.format(MODEL_NAME),
             c.SAMPLE_INPUTS_FILENAME_FORMAT.format(MODEL_NAME)}  # present, never read
    for name in names:
        if name in _BOOKKEEPING or name in known or weights.match(name) or tensors.match(name):
            continue
        if name.startswith(c.EXTRA_DIR) and not name.endswith((".so", ".pt", ".pkl")):
            continue  # extra files: text, never read
        raise _refuse(f"holds {name[:80]!r}, which is not a plain tensor or the program")
    for needed in (c.MODELS_FILENAME_FORMAT.format(MODEL_NAME),
                   c.WEIGHTS_CONFIG_FILENAME_FORMAT.format(MODEL_NAME),
                   c.CONSTANTS_CONFIG_FILENAME_FORMAT.format(MODEL_NAME)):
        if needed not in names:
            raise _refuse(f"has no {needed}")


def _allowed_target(target: Any) -> bool:
    import operator

    import torch
    from torch._export.serde.serialize import _SYM_OPS

    if isinstance(target, torch._ops.OpOverload):
        namespace = target.namespace
        return namespace in ("aten", "prims") and not any(
            d in target.name() for d in _DENIED_ATEN)
    if isinstance(target, torch._ops.HigherOrderOperator):
        return target.name() in _HIGHER_ORDER
    return target in _SYM_OPS or target is operator.getitem


def _check_graph(program: Any) -> None:
    import torch

    for module in program.graph_module.modules():
        if not isinstance(module, torch.fx.GraphModule):
            continue
        for node in module.graph.nodes:
            if node.op in ("call_module", "call_method"):
                raise _refuse(f"has a {node.op} node")
            if node.op == "call_function" and not _allowed_target(node.target):
                raise _refuse(f"calls {getattr(node.target, '__name__', node.target)!s:.80}, "
                              "which is not a torch operator")


def load_program(path: str | Path) -> Any:
    """The ``torch.export`` program in ``path`` as a module, read without pickle or code.

    Raises
    ------
    TrustError
        The archive holds anything :mod:`this module <.torch_program>` does not read safely.
    """
    import torch
    from torch._export.serde import schema
    from torch._export.serde.serialize import ExportedProgramDeserializer, _dict_to_dataclass
    from torch.export.pt2_archive import _package as package
    from torch.export.pt2_archive import constants as c

    data = Path(path).read_bytes()  # one read: what is checked is what is loaded
    try:
        reader_cm = package.PT2ArchiveReader(io.BytesIO(data))
    except Exception:  # not a zip / not a torch archive
        raise _refuse("is not a torch.export archive") from None
    with reader_cm as reader:
        names = list(reader.get_file_names())
        _check_members(names)
        try:
            version = reader.read_string(c.ARCHIVE_VERSION_PATH)
        except Exception:
            version = None
        if version != c.ARCHIVE_VERSION_VALUE:
            raise _refuse(f"has archive version {str(version)[:20]!r}, not "
                          f"{c.ARCHIVE_VERSION_VALUE!r}")
        _check_payload_config(
            reader.read_string(c.WEIGHTS_CONFIG_FILENAME_FORMAT.format(MODEL_NAME)),
            c.WEIGHT_FILENAME_PREFIX, "weight")
        _check_payload_config(
            reader.read_string(c.CONSTANTS_CONFIG_FILENAME_FORMAT.format(MODEL_NAME)),
            c.TENSOR_CONSTANT_FILENAME_PREFIX, "constant")
        try:
            doc = json.loads(reader.read_bytes(c.MODELS_FILENAME_FORMAT.format(MODEL_NAME)))
        except ValueError:
            raise _refuse("has an unreadable program") from None
        doc = check_program_json(doc)
        state_dict = package._load_state_dict(reader, MODEL_NAME)
        constants = package._load_constants(reader, MODEL_NAME)
    if not isinstance(state_dict, dict) or not isinstance(constants, dict):
        raise _refuse("stores its weights in the legacy pickle format")
    try:
        serialized = _dict_to_dataclass(schema.ExportedProgram, doc)
        program = ExportedProgramDeserializer(None).deserialize(
            serialized, state_dict, constants, None)
    except TrustError:
        raise
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise _refuse(f"could not be read ({type(exc).__name__}: {first})") from None
    _check_graph(program)
    with torch.no_grad():
        return program.module()
