"""Tools: the :class:`Tool` base class, the :func:`tool` decorator and the tool registry.

A tool has a ``name``, a ``description`` and a JSON-schema ``parameters`` object. The
decorator builds all three from a typed function and its docstring::

    @tool
    def get_weather(city: str, unit: Literal["C", "F"] = "C") -> str:
        '''Current weather of a city.

        Args:
            city: the city's name, e.g. "Paris".
            unit: temperature unit.
        '''

Arguments are validated against the schema before the call; a call that fails validation
raises :class:`~qwen_agent.errors.ToolCallError`, which the agent shows to the model.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable
from functools import cached_property
from typing import Any, ClassVar, get_type_hints, overload

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator

from qwen_agent.errors import ConfigError, ToolCallError, ToolDefinitionError
from qwen_agent.messages import FileItem, ImageItem, TextItem, ToolResult
from qwen_agent.registry import LazyRegistry

__all__ = [
    "Tool",
    "Toolset",
    "ToolSpec",
    "FunctionTool",
    "tool",
    "TOOLS",
    "register_tool",
    "get_tool",
    "as_tool",
    "to_result",
]

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")


#: the longest timeout a tool may have: a day (``inf`` would never time out)
MAX_TIMEOUT = 86_400.0


def check_timeout(value: Any, what: str = "timeout") -> float | None:
    """``value`` as a tool timeout in seconds: None (the agent's default) or a finite
    number over 0 and at most a day; a ConfigError otherwise (``inf``, ``nan``, ``0``,
    negatives, strings)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{what} must be a number of seconds, got {value!r:.40}")
    if not 0 < value <= MAX_TIMEOUT:  # also false for nan
        raise ConfigError(f"{what} must be over 0 and at most {MAX_TIMEOUT:g} s, got {value!r}")
    return float(value)


# in descriptions (an MCP server's, say): control and bidi characters go, lines and tabs stay
_DESC_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]")


# type names some tool collections write, and the JSON Schema types they mean
TYPE_ALIASES = {
    "float": "number",
    "double": "number",
    "int": "integer",
    "str": "string",
    "bool": "boolean",
    "dict": "object",
    "list": "array",
    "tuple": "array",
    "none": "null",
}


def normalize_types(schema: Any, depth: int = 0) -> Any:
    """``schema`` with Python-style type names (``"float"``, ``"dict"``, ...) written as
    JSON Schema's (``"number"``, ``"object"``, ...); other values as they are."""
    if depth > 64:
        return schema
    if isinstance(schema, dict):
        out = {}
        for k, v in schema.items():
            if k == "type" and isinstance(v, str):
                v = TYPE_ALIASES.get(v.lower(), v)
            elif k == "type" and isinstance(v, list):
                v = [TYPE_ALIASES.get(t.lower(), t) if isinstance(t, str) else t for t in v]
            else:
                v = normalize_types(v, depth + 1)
            out[k] = v
        return out
    if isinstance(schema, list):
        return [normalize_types(v, depth + 1) for v in schema]
    return schema


def _clean_descriptions(schema: Any, depth: int = 0) -> Any:
    """``schema`` with control characters removed from every description and title."""
    if depth > 64:
        return schema
    if isinstance(schema, dict):
        return {
            k: _DESC_CONTROL.sub("", v)
            if k in ("description", "title") and isinstance(v, str)
            else _clean_descriptions(v, depth + 1)
            for k, v in schema.items()
        }
    if isinstance(schema, list):
        return [_clean_descriptions(v, depth + 1) for v in schema]
    return schema


class ToolSpec(BaseModel):
    """A tool as a model sees it: name, description and a JSON-schema ``parameters``
    object. This is what crosses the model boundary (see
    :class:`~qwen_agent.llm.ModelRequest`); :meth:`of` accepts a :class:`Tool`, a bare
    ``{"name", "description", "parameters"}`` dict or OpenAI's
    ``{"type": "function", "function": {...}}``."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)
    name: str = Field(min_length=1, max_length=64)
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})
    #: OpenAI's ``strict`` flag, kept so a native backend can pass it on
    strict: bool | None = None

    @classmethod
    def of(cls, obj: Any) -> ToolSpec:
        """Coerce a tool, a spec or a tool dict (either shape); ConfigError otherwise."""
        if isinstance(obj, ToolSpec):
            return obj
        if isinstance(obj, Tool) or (
            not isinstance(obj, dict) and callable(getattr(obj, "spec", None))
        ):
            obj = obj.spec()
        if not isinstance(obj, dict):
            raise ConfigError(f"a tool must be a Tool, a ToolSpec or a dict, not {obj!r:.80}")
        if obj.get("type") == "function" or "function" in obj:
            if obj.get("type", "function") != "function" or not isinstance(
                obj.get("function"), dict
            ):
                raise ConfigError(
                    'an OpenAI tool dict is {"type": "function", "function": {"name": ..., '
                    f'"description": ..., "parameters": {{...}}}}}}, got {obj!r:.200}'
                )
            obj = obj["function"]
        if not isinstance(obj.get("name"), str):
            raise ConfigError(
                'a tool dict needs a "name" (bare: {"name", "description", "parameters"}, or '
                f'OpenAI\'s {{"type": "function", "function": {{...}}}}), got {obj!r:.200}'
            )
        fields = {
            k: v for k, v in obj.items() if k in ("name", "description", "parameters", "strict")
        }
        if fields.get("parameters") is None:
            fields.pop("parameters", None)
        if fields.get("description") is None:
            fields.pop("description", None)
        try:
            spec = cls.model_validate(fields)
        except ValidationError as exc:
            problem = exc.errors()[0]
            where = ".".join(map(str, problem["loc"]))
            raise ConfigError(f"tool {obj.get('name')!r}: {where}: {problem['msg']}") from None
        if spec.parameters.get("type", "object") != "object":
            raise ConfigError(f"tool {spec.name!r}: parameters must be a JSON object schema")
        return spec

    @field_validator("description")
    @classmethod
    def _plain_description(cls, value: str) -> str:
        return _DESC_CONTROL.sub("", value)

    @field_validator("parameters")
    @classmethod
    def _plain_parameter_descriptions(cls, value: dict[str, Any]) -> dict[str, Any]:
        return normalize_types(_clean_descriptions(value))

    def as_dict(self) -> dict[str, Any]:
        """``{"name", "description", "parameters"}``, what the formats render."""
        return {"name": self.name, "description": self.description, "parameters": self.parameters}

    @cached_property
    def parameters_json(self) -> str:
        """The ``parameters`` schema as JSON, made once (ReAct lists it)."""
        return json.dumps(self.parameters, ensure_ascii=False)

    @cached_property
    def as_json(self) -> str:
        """:meth:`as_dict` as JSON, made once: every prompt that lists the tool writes it
        (the spec is frozen)."""
        return json.dumps(self.as_dict(), ensure_ascii=False)

    def openai(self) -> dict[str, Any]:
        """OpenAI's ``{"type": "function", "function": {...}}``."""
        fn = self.as_dict()
        if self.strict is not None:
            fn["strict"] = self.strict
        return {"type": "function", "function": fn}


class Tool:
    """Base class for tools, stateful ones included.

    Subclasses set ``name``, ``description`` and either ``Params`` (a pydantic model) or
    ``parameters`` (a JSON schema object), and implement ``call(**arguments)``, sync or
    ``async``. ``call`` may return text, a number, a JSON-serializable dict or list, a
    content item (:class:`~qwen_agent.messages.ImageItem`, ...) or a list of them.
    """

    name: str = ""
    description: str = ""
    parameters: dict[str, Any] = {"type": "object", "properties": {}}
    Params: ClassVar[type[BaseModel] | None] = None
    #: seconds a call may take before the agent reports a timeout; None: the agent's default
    timeout: float | None = None

    def __init__(self) -> None:
        if self.Params is not None:
            self.parameters = _clean_schema(self.Params.model_json_schema())
        _check_name(self.name, type(self).__name__)
        if self.parameters.get("type") != "object":
            raise ToolDefinitionError(
                f"tool {self.name!r}: parameters must be a JSON object schema"
            )
        self._validator: Any = None

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.call)

    def call(self, **arguments: Any) -> Any:
        raise NotImplementedError(f"tool {self.name!r} does not implement call()")

    def spec(self) -> dict[str, Any]:
        """The tool as the model sees it: ``{"name", "description", "parameters"}``."""
        return {"name": self.name, "description": self.description, "parameters": self.parameters}

    def validate(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """Check ``arguments`` against the schema; return the arguments to call with."""
        if not isinstance(arguments, dict):
            raise ToolCallError(
                f"arguments for tool {self.name!r} must be a JSON object, "
                f"got {type(arguments).__name__}"
            )
        if self.Params is not None:
            return _validate_model(self.name, self.Params, arguments)
        if self._validator is None:
            import jsonschema

            schema = normalize_types(self.parameters)
            cls = jsonschema.validators.validator_for(schema)
            try:
                cls.check_schema(schema)
            except jsonschema.SchemaError as exc:
                raise ToolCallError(
                    f"tool {self.name!r} cannot be called: its parameters schema is not valid "
                    f"JSON Schema ({exc.message})"
                ) from None
            self._validator = cls(schema)
        errors = sorted(self._validator.iter_errors(arguments), key=lambda e: list(e.path))
        if errors:
            lines = [f"{'/'.join(map(str, e.path)) or '(root)'}: {e.message}" for e in errors[:5]]
            raise ToolCallError(f"invalid arguments for tool {self.name!r}: " + "; ".join(lines))
        return arguments

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


class Toolset:
    """A source of several tools that share something: a connection, a process (an MCP
    server). :class:`~qwen_agent.agent.Agent` takes a toolset wherever it takes a tool, lists
    :meth:`tools` once when it is made, and calls :meth:`close` when it is closed."""

    def tools(self) -> list[Tool]:
        raise NotImplementedError(f"{type(self).__name__} does not implement tools()")

    def close(self) -> None:
        """Release what the tools hold (processes, connections); safe to call twice."""

    def __enter__(self) -> Toolset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def borrowed(self) -> Toolset:
        """This toolset for an agent that must not close it (one shared by many)."""
        return _Borrowed(self)


class _Borrowed(Toolset):
    def __init__(self, inner: Toolset) -> None:
        self.inner = inner

    def tools(self) -> list[Tool]:
        return self.inner.tools()

    def __repr__(self) -> str:
        return f"<borrowed {self.inner!r}>"


class FunctionTool(Tool):
    """A tool made from a plain (or ``async``) function by :func:`tool`."""

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        timeout: float | None = None,
    ) -> None:
        if not callable(fn):
            raise ToolDefinitionError(f"@tool needs a function, got {type(fn).__name__}")
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "")
        summary, arg_docs = _parse_docstring(inspect.getdoc(fn) or "")
        self.description = description if description is not None else summary
        self.timeout = check_timeout(timeout, f"tool {self.name!r}: timeout")
        self._model = _model_from_signature(fn, self.name, arg_docs)
        self.Params = self._model  # type: ignore[misc]
        super().__init__()
        self._async = inspect.iscoroutinefunction(fn)

    @property
    def is_async(self) -> bool:
        return self._async

    def call(self, **arguments: Any) -> Any:
        return self.fn(**arguments)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the wrapped function directly, as if it were not decorated."""
        return self.fn(*args, **kwargs)


@overload
def tool(fn: Callable[..., Any], /) -> FunctionTool: ...
@overload
def tool(
    *, name: str | None = None, description: str | None = None, timeout: float | None = None
) -> Callable[[Callable[..., Any]], FunctionTool]: ...


def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
) -> FunctionTool | Callable[[Callable[..., Any]], FunctionTool]:
    """Turn a typed function into a :class:`Tool`: ``@tool`` or ``@tool(name=..., ...)``.

    The schema comes from the type hints and defaults; the description from the docstring's
    first paragraph, and each parameter's description from its ``Args:`` section (Google
    style) or ``:param x:`` lines. The decorated object can still be called directly.
    """

    def wrap(f: Callable[..., Any]) -> FunctionTool:
        return FunctionTool(f, name=name, description=description, timeout=timeout)

    return wrap(fn) if fn is not None else wrap


# -- registry -----------------------------------------------------------------------------

#: name -> Tool instance, Tool subclass or "module:attr" (imported on first use).
TOOLS: LazyRegistry[Any] = LazyRegistry(
    "tool",
    {
        "code_interpreter": "qwen_agent.tools.code_interpreter:CodeInterpreter",
        "image_gen": "qwen_agent.tools.image_gen:ImageGen",
        "retrieval": "qwen_agent.tools.retrieval:Retrieval",
        "pipeline": "qwen_agent.tools.pipeline:PipelineTool",
    },
)


def register_tool(
    obj: Tool | type[Tool] | Callable[..., Any] | str,
    name: str | None = None,
    *,
    replace: bool = False,
) -> None:
    """Register a tool (instance, class, function or ``"module:attr"``) by name."""
    if isinstance(obj, str):
        if not name:
            raise ConfigError("register_tool('module:attr') needs a name")
        TOOLS.register(name, obj, replace=replace)
        return
    if isinstance(obj, type) and issubclass(obj, Tool):
        TOOLS.register(name or obj.name, obj, replace=replace)
        return
    if name and not isinstance(obj, Tool) and callable(obj):
        obj = FunctionTool(obj, name=name)  # the model sees the name it is registered under
    instance = as_tool(obj)
    TOOLS.register(name or instance.name, instance, replace=replace)


def get_tool(name: str) -> Tool:
    """The registered tool ``name``; a registered class is instantiated."""
    return as_tool(TOOLS.get(name))


def as_tool(obj: Tool | type[Tool] | Callable[..., Any] | str) -> Tool:
    """Coerce a tool, tool class, plain function or registered name into a :class:`Tool`."""
    if isinstance(obj, Tool):
        return obj
    if isinstance(obj, str):
        return get_tool(obj)
    if isinstance(obj, type) and issubclass(obj, Tool):
        return obj()
    if callable(obj):
        return FunctionTool(obj)
    raise ConfigError(f"not a tool: {obj!r}")


# -- results ------------------------------------------------------------------------------

_ITEMS = (TextItem, ImageItem, FileItem)


def to_result(value: Any, *, call_id: str = "", name: str = "") -> ToolResult:
    """Turn what a tool returned into a :class:`ToolResult` for the model."""
    if isinstance(value, ToolResult):
        return value.model_copy(
            update={"call_id": call_id or value.call_id, "name": name or value.name}
        )
    if isinstance(value, str):
        items: list[Any] = [TextItem(text=value)]
    elif isinstance(value, _ITEMS):
        items = [value]
    elif isinstance(value, (list, tuple)) and value and all(isinstance(v, _ITEMS) for v in value):
        items = list(value)
    elif value is None:
        items = [TextItem(text="(no output)")]
    else:
        try:
            text = json.dumps(value, ensure_ascii=False, default=_reject)
        except (TypeError, ValueError) as exc:
            return ToolResult.error(
                f"Error: tool {name!r} returned a value that cannot be shown to the model ({exc})",
                call_id=call_id,
                name=name,
            )
        items = [TextItem(text=text)]
    return ToolResult(call_id=call_id, name=name, content=items)


def _reject(obj: Any) -> Any:
    raise TypeError(f"unsupported result type {type(obj).__name__}")


# -- schema helpers -----------------------------------------------------------------------


def _check_name(name: str, where: str) -> None:
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ToolDefinitionError(
            f"{where}: tool name {name!r} must start with a letter or '_' and contain only "
            "letters, digits, '_', '-' or '.' (at most 64 characters)"
        )


_ARGS_HEADER = re.compile(r"^\s*(Args|Arguments|Parameters|Params)\s*:\s*$")
_SECTION = re.compile(r"^\s*[A-Z][A-Za-z ]*:\s*$")
# Google-style sections that end the summary when they appear outside ``Args:``.
_OTHER_SECTION = re.compile(
    r"^\s*(Returns?|Yields?|Raises|Examples?|Notes?|Warnings?|See Also|Attributes|Todo"
    r"|References)\s*:\s*$"
)
_ARG_LINE = re.compile(r"^\s*\*{0,2}([A-Za-z_]\w*)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_SPHINX = re.compile(r"^\s*:param\s+(?:[^:]*\s)?([A-Za-z_]\w*)\s*:\s*(.*)$")


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """Split a docstring into its summary and per-argument descriptions.

    The summary is the text before the first section (``Args:``, ``Returns:``, ...) or
    Sphinx field (``:param x:``); nothing from a later section leaks into it.
    """
    summary_lines: list[str] = []
    args: dict[str, str] = {}
    current: str | None = None
    section: str | None = None  # None (summary), "args", "fields" (Sphinx) or "other"
    args_indent = _indent_of_args(doc)
    for line in doc.splitlines():
        if _ARGS_HEADER.match(line):
            section, current = "args", None
            continue
        m = _SPHINX.match(line)
        if m:
            section, current = "fields", m.group(1)
            args[current] = m.group(2).strip()
            continue
        if section == "args":
            if _SECTION.match(line):
                section, current = "other", None
                continue
            m = _ARG_LINE.match(line)
            if m and (current is None or len(line) - len(line.lstrip()) <= args_indent):
                current = m.group(1)
                args[current] = m.group(2).strip()
            elif current and line.strip():
                args[current] = (args[current] + " " + line.strip()).strip()
            continue
        if line.strip().startswith(":"):  # another Sphinx field: :returns:, :type x:, ...
            section, current = "fields", None
            continue
        if section == "fields":
            if current and line.strip():  # continuation of a multi-line :param x:
                args[current] = (args[current] + " " + line.strip()).strip()
            continue
        if _OTHER_SECTION.match(line):
            section, current = "other", None
            continue
        if section is None:
            summary_lines.append(line)
    summary = "\n".join(summary_lines).strip()
    return summary, args


def _indent_of_args(doc: str) -> int:
    """The indentation of the first argument line under ``Args:``."""
    lines = doc.splitlines()
    for i, line in enumerate(lines):
        if _ARGS_HEADER.match(line):
            for nxt in lines[i + 1 :]:
                if nxt.strip():
                    return len(nxt) - len(nxt.lstrip())
            return 0
    return 0


def _model_from_signature(
    fn: Callable[..., Any], name: str, arg_docs: dict[str, str]
) -> type[BaseModel]:
    try:
        sig = inspect.signature(fn)
        hints = get_type_hints(fn, include_extras=True)
    except (TypeError, ValueError, NameError) as exc:
        raise ToolDefinitionError(f"tool {name!r}: cannot read the signature: {exc}") from exc
    fields: dict[str, Any] = {}
    for pname, param in sig.parameters.items():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise ToolDefinitionError(
                f"tool {name!r}: *args/**kwargs cannot be described to a model; "
                f"give {pname!r} explicit parameters"
            )
        if param.kind is param.POSITIONAL_ONLY:
            raise ToolDefinitionError(f"tool {name!r}: positional-only parameter {pname!r}")
        if pname not in hints:
            raise ToolDefinitionError(
                f"tool {name!r}: parameter {pname!r} needs a type hint so its schema is known"
            )
        default = ... if param.default is param.empty else param.default
        fields[pname] = (hints[pname], Field(default, description=arg_docs.get(pname)))
    try:
        model = create_model(  # type: ignore[call-overload]
            f"{name}_args", __config__=ConfigDict(extra="forbid"), **fields
        )
        model.model_json_schema()
    except Exception as exc:  # pydantic raises several types for unsupported hints
        raise ToolDefinitionError(f"tool {name!r}: cannot build a JSON schema: {exc}") from exc
    return model


def _validate_model(name: str, model: type[BaseModel], arguments: dict[str, Any]) -> dict[str, Any]:
    if model.model_config.get("extra") in (None, "ignore"):  # would drop unknown keys silently
        known = set(model.model_fields)
        known.update(f.alias for f in model.model_fields.values() if f.alias)
        unknown = sorted(k for k in arguments if k not in known)
        if unknown:
            raise ToolCallError(
                f"invalid arguments for tool {name!r}: unknown argument(s) "
                f"{', '.join(map(repr, unknown))}; expected: {', '.join(sorted(known)) or 'none'}"
            )
    try:
        inst = model.model_validate(arguments)
    except ValidationError as exc:
        problems = []
        for err in exc.errors()[:5]:
            where = ".".join(str(p) for p in err["loc"]) or "(root)"
            problems.append(f"{where}: {err['msg']}")
        raise ToolCallError(
            f"invalid arguments for tool {name!r}: " + "; ".join(problems)
        ) from None
    result = {k: getattr(inst, k) for k in type(inst).model_fields}
    result.update(inst.model_extra or {})  # kept only where the model says extra="allow"
    return result


#: schema keywords whose values are data (a default, enum members), not subschemas
_LITERAL_KEYS = frozenset({"default", "enum", "const", "examples"})


def _clean_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """Drop pydantic's ``title`` keys (noise for the model) but keep properties so named."""

    def walk(node: Any, in_properties: bool = False) -> Any:
        if isinstance(node, dict):
            return {
                k: v
                if k in _LITERAL_KEYS and not in_properties
                else walk(v, k == "properties" and not in_properties)
                for k, v in node.items()
                if in_properties or k != "title"
            }
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    cleaned = _canonical(walk(schema))
    if cleaned.get("additionalProperties") is False:  # enforced by validation; noise here
        del cleaned["additionalProperties"]
    cleaned.setdefault("properties", {})
    return cleaned


#: schema keys first in this order (as in Qwen's and OpenAI's examples); others follow
_KEY_ORDER = {"type": 0, "description": 1, "properties": 2, "required": 3}


def _canonical(node: Any, in_properties: bool = False) -> Any:
    """The schema with ``type``, ``description``, ``properties`` and ``required`` first in
    every subschema (the order models were trained on); property names keep their order."""
    if isinstance(node, list):
        return [_canonical(v) for v in node]
    if not isinstance(node, dict):
        return node
    if in_properties:
        return {k: _canonical(v) for k, v in node.items()}
    keys = sorted(node, key=lambda k: _KEY_ORDER.get(k, len(_KEY_ORDER)))
    return {
        k: node[k] if k in _LITERAL_KEYS else _canonical(node[k], k == "properties") for k in keys
    }
