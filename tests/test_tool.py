"""Tests of the @tool decorator, the Tool base class, results and the tool registry."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Iterator
from typing import Annotated, Any, Literal, Optional

import pytest
from pydantic import BaseModel, ConfigDict, Field

from qwen_agent.errors import (
    ConfigError,
    QwenAgentError,
    RegistryError,
    ToolCallError,
    ToolDefinitionError,
    ToolError,
)
from qwen_agent.messages import FileItem, ImageItem, TextItem, ToolResult
from qwen_agent.registry import LazyRegistry
from qwen_agent.tool import (
    TOOLS,
    FunctionTool,
    Tool,
    as_tool,
    get_tool,
    register_tool,
    to_result,
    tool,
)

FIXTURE_MODULE = "tests._tools_fixture"


# -- helpers and module-level types (get_type_hints resolves names in module globals) -----


class Point(BaseModel):
    """A point on a labelled map."""

    x: int
    y: int = 0
    title: str = "origin"


class Unsupported:
    """A plain class pydantic cannot validate or describe."""


def title_keys_outside_properties(node: Any, in_properties: bool = False) -> list[str]:
    """Paths of every ``title`` key that is a schema keyword, not a property name."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "title" and not in_properties:
                found.append(key)
            child_in_props = key == "properties" and not in_properties
            found += title_keys_outside_properties(value, child_in_props)
    elif isinstance(node, list):
        for value in node:
            found += title_keys_outside_properties(value)
    return found


@pytest.fixture(autouse=True)
def clean_registry() -> Iterator[None]:
    """Unregister every tool a test registers, so that tests do not leak into each other."""
    before = set(TOOLS.names())
    yield
    for name in set(TOOLS.names()) - before:
        TOOLS.unregister(name)
    assert set(TOOLS.names()) == before


# -- schema from type hints ----------------------------------------------------------------


@tool
def kitchen_sink(
    text: str,
    count: int,
    ratio: float,
    flag: bool,
    ids: list[int],
    extra: dict[str, Any],
    maybe: Optional[int],  # noqa: UP045 - the typing spelling is what is under test
    maybe_too: int | None,
    unit: Literal["C", "F"],
    point: Point,
    size: Annotated[int, Field(ge=0)],
    title: str = "untitled",
    limit: int = 10,
    note: str | None = None,
) -> str:
    """Exercise every kind of parameter."""
    return text


def test_schema_of_scalar_types() -> None:
    props = kitchen_sink.parameters["properties"]
    assert props["text"] == {"type": "string"}
    assert props["count"] == {"type": "integer"}
    assert props["ratio"] == {"type": "number"}
    assert props["flag"] == {"type": "boolean"}


def test_schema_of_containers() -> None:
    props = kitchen_sink.parameters["properties"]
    assert props["ids"] == {"type": "array", "items": {"type": "integer"}}
    assert props["extra"] == {"type": "object", "additionalProperties": True}


def test_schema_of_optional_both_spellings() -> None:
    props = kitchen_sink.parameters["properties"]
    nullable_int = {"anyOf": [{"type": "integer"}, {"type": "null"}]}
    assert props["maybe"] == nullable_int
    assert props["maybe_too"] == nullable_int
    assert props["note"] == {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None}


def test_schema_of_literal_is_an_enum() -> None:
    assert kitchen_sink.parameters["properties"]["unit"] == {"type": "string", "enum": ["C", "F"]}


def test_schema_of_annotated_field_constraint() -> None:
    assert kitchen_sink.parameters["properties"]["size"] == {"type": "integer", "minimum": 0}


def test_schema_of_nested_model() -> None:
    params = kitchen_sink.parameters
    assert params["properties"]["point"] == {"$ref": "#/$defs/Point"}
    assert params["$defs"]["Point"] == {
        "type": "object",
        "description": "A point on a labelled map.",
        "properties": {
            "x": {"type": "integer"},
            "y": {"type": "integer", "default": 0},
            "title": {"type": "string", "default": "origin"},
        },
        "required": ["x"],
    }


def test_defaults_are_not_required_and_required_is_ordered() -> None:
    params = kitchen_sink.parameters
    assert params["type"] == "object"
    # the model sees type, properties, required (in that order); unknown keys are still
    # refused, by validation rather than by a schema keyword the model must read
    assert list(params)[:3] == ["type", "properties", "required"]
    assert "additionalProperties" not in params
    with pytest.raises(ToolCallError, match="unknown|extra"):
        kitchen_sink.validate({"nope": 1, "text": "a"})
    assert params["required"] == [
        "text",
        "count",
        "ratio",
        "flag",
        "ids",
        "extra",
        "maybe",
        "maybe_too",
        "unit",
        "point",
        "size",
    ]
    assert params["properties"]["limit"] == {"type": "integer", "default": 10}
    assert list(params["properties"]) == [
        "text",
        "count",
        "ratio",
        "flag",
        "ids",
        "extra",
        "maybe",
        "maybe_too",
        "unit",
        "point",
        "size",
        "title",
        "limit",
        "note",
    ]


def test_no_title_noise_but_a_property_named_title_is_kept() -> None:
    params = kitchen_sink.parameters
    assert title_keys_outside_properties(params) == []
    assert params["properties"]["title"] == {"type": "string", "default": "untitled"}
    assert "title" in params["$defs"]["Point"]["properties"]


def test_spec_is_name_description_parameters() -> None:
    spec = kitchen_sink.spec()
    assert set(spec) == {"name", "description", "parameters"}
    assert spec["name"] == "kitchen_sink"
    assert spec["description"] == "Exercise every kind of parameter."
    assert spec["parameters"] is kitchen_sink.parameters


def test_function_without_parameters_has_an_empty_object_schema() -> None:
    @tool
    def now() -> str:
        """The current time."""
        return "12:00"

    assert now.parameters == {"type": "object", "properties": {}}
    assert now.validate({}) == {}


# -- descriptions from docstrings ----------------------------------------------------------


def test_google_docstring_summary_and_args() -> None:
    @tool
    def search(query: str, top_k: int = 5, lang: str = "en") -> list[str]:
        """Search the knowledge base.

        Ranks passages by BM25 and returns the best ones.

        Args:
            query: what to look for; may span
                several lines, which are joined.
            top_k (int): how many passages to return.
            lang: language code, e.g. "en".
                note: a colon in a continuation line stays in the description.

        Returns:
            The passages, best first.
            Never leaks anywhere.

        Raises:
            ValueError: never, this is a test.
        """
        return []

    assert search.description == (
        "Search the knowledge base.\n\nRanks passages by BM25 and returns the best ones."
    )
    props = search.parameters["properties"]
    assert (
        props["query"]["description"]
        == "what to look for; may span several lines, which are joined."
    )
    assert props["top_k"]["description"] == "how many passages to return."
    assert props["lang"]["description"] == (
        'language code, e.g. "en". note: a colon in a continuation line stays in the description.'
    )
    assert set(props) == {"query", "top_k", "lang"}
    assert "leaks" not in str(search.spec())
    assert "ValueError" not in str(search.spec())


def test_returns_section_without_args_does_not_leak_into_summary() -> None:
    @tool
    def roll() -> int:
        """Roll a die.

        Returns:
            A number from 1 to 6.
        """
        return 4

    assert roll.description == "Roll a die."


def test_returns_right_after_args_does_not_leak() -> None:
    @tool
    def double(x: int) -> int:
        """Double a number.

        Args:
            x: the number.
        Returns:
            twice x.
        """
        return 2 * x

    assert double.description == "Double a number."
    assert double.parameters["properties"]["x"] == {"type": "integer", "description": "the number."}


def test_blank_line_after_args_header() -> None:
    @tool
    def pair(a: int, b: int) -> int:
        """Add.

        Args:

            a: first.
            b: second.
        """
        return a + b

    props = pair.parameters["properties"]
    assert props["a"]["description"] == "first."
    assert props["b"]["description"] == "second."


@pytest.mark.parametrize("header", ["Arguments:", "Parameters:", "Params:"])
def test_args_header_variants(header: str) -> None:
    def fn(a: int) -> int:
        return a

    fn.__doc__ = f"Summary.\n\n{header}\n    a: the a.\n"
    made = tool(fn)
    assert made.description == "Summary."
    assert made.parameters["properties"]["a"]["description"] == "the a."


def test_sphinx_docstring() -> None:
    @tool
    def convert(amount: float, currency: str = "EUR") -> float:
        """Convert an amount of money.

        :param amount: how much, in
            US dollars.
        :type amount: float
        :param str currency: the target currency.
        :returns: the converted amount.
        :rtype: float
        """
        return amount

    assert convert.description == "Convert an amount of money."
    props = convert.parameters["properties"]
    assert props["amount"]["description"] == "how much, in US dollars."
    assert props["currency"]["description"] == "the target currency."
    assert "converted amount" not in str(convert.spec())
    assert "rtype" not in str(convert.spec())


def test_no_docstring_gives_empty_description() -> None:
    @tool
    def bare(a: int) -> int:
        return a

    assert bare.description == ""
    assert bare.parameters["properties"]["a"] == {"type": "integer"}


def test_decorator_overrides_name_description_timeout() -> None:
    @tool(name="weather.now", description="Custom description.", timeout=2.5)
    def get_weather(city: str) -> str:
        """Docstring summary that the override replaces."""
        return city

    assert isinstance(get_weather, FunctionTool)
    assert get_weather.name == "weather.now"
    assert get_weather.description == "Custom description."
    assert get_weather.timeout == 2.5
    assert get_weather.spec()["name"] == "weather.now"


def test_decorator_defaults_and_explicit_empty_description() -> None:
    @tool(description="")
    def quiet(a: int) -> int:
        """Not used."""
        return a

    assert quiet.name == "quiet"
    assert quiet.description == ""
    assert quiet.timeout is None


# -- definition errors ---------------------------------------------------------------------


def test_missing_type_hint() -> None:
    def untyped(a: int, b) -> int:  # type: ignore[no-untyped-def]
        return a

    with pytest.raises(ToolDefinitionError, match=r"'untyped'.*parameter 'b' needs a type hint"):
        tool(untyped)


def test_var_positional_rejected() -> None:
    def star(*items: int) -> int:
        return 0

    with pytest.raises(ToolDefinitionError, match=r"\*args/\*\*kwargs.*'items'"):
        tool(star)


def test_var_keyword_rejected() -> None:
    def kw(a: int, **options: str) -> int:
        return a

    with pytest.raises(ToolDefinitionError, match=r"\*args/\*\*kwargs.*'options'"):
        tool(kw)


def test_positional_only_rejected() -> None:
    def pos(a: int, /, b: int) -> int:
        return a + b

    with pytest.raises(ToolDefinitionError, match=r"'pos'.*positional-only parameter 'a'"):
        tool(pos)


@pytest.mark.parametrize("bad", ["has space", "1starts_with_digit", "semi;colon", "x" * 65])
def test_invalid_tool_name(bad: str) -> None:
    def fn(a: int) -> int:
        return a

    with pytest.raises(ToolDefinitionError, match="must start with a letter") as info:
        tool(name=bad)(fn)
    assert repr(bad) in str(info.value)


@pytest.mark.parametrize("good", ["a", "_private", "web.search", "code-interpreter", "x" * 64])
def test_valid_tool_names(good: str) -> None:
    def fn(a: int) -> int:
        return a

    assert tool(name=good)(fn).name == good


def test_lambda_name_is_rejected() -> None:
    with pytest.raises(ToolDefinitionError, match="'<lambda>'"):
        tool(lambda: None)


def test_unsupported_plain_class_type() -> None:
    def use(thing: Unsupported) -> None:
        return None

    with pytest.raises(ToolDefinitionError, match=r"tool 'use': cannot build a JSON schema"):
        tool(use)


def test_unsupported_callable_type() -> None:
    def apply(fn: Callable[[int], int]) -> None:
        return None

    with pytest.raises(ToolDefinitionError, match=r"tool 'apply': cannot build a JSON schema"):
        tool(apply)


def test_unresolvable_annotation() -> None:
    def ghost(a: NoSuchType) -> None:  # type: ignore[name-defined]  # noqa: F821
        return None

    with pytest.raises(ToolDefinitionError, match=r"tool 'ghost': cannot read the signature"):
        tool(ghost)


def test_non_callable_rejected() -> None:
    with pytest.raises(ToolDefinitionError, match="@tool needs a function, got int"):
        tool(42)  # type: ignore[call-overload]


def test_definition_error_hierarchy() -> None:
    assert issubclass(ToolDefinitionError, ToolError)
    assert issubclass(ToolDefinitionError, QwenAgentError)
    assert issubclass(ToolDefinitionError, TypeError)
    assert issubclass(ToolCallError, ToolError)


# -- validate() ----------------------------------------------------------------------------


@tool
def book(
    guests: int,
    price: float,
    vip: bool,
    rooms: list[int],
    unit: Literal["C", "F"] = "C",
    stars: Annotated[int, Field(ge=0)] = 3,
    where: Point | None = None,
) -> str:
    """Book rooms."""
    return "ok"


def test_validate_coerces_like_pydantic_lax_mode() -> None:
    args = book.validate({"guests": "3", "price": 10, "vip": "true", "rooms": ["1", 2]})
    assert args == {
        "guests": 3,
        "price": 10.0,
        "vip": True,
        "rooms": [1, 2],
        "unit": "C",
        "stars": 3,
        "where": None,
    }
    assert type(args["guests"]) is int
    assert type(args["price"]) is float


def test_validate_builds_nested_models() -> None:
    args = book.validate(
        {"guests": 1, "price": 1.5, "vip": False, "rooms": [], "where": {"x": "4"}}
    )
    assert args["where"] == Point(x=4, y=0, title="origin")
    assert isinstance(args["where"], Point)


def test_validate_missing_required() -> None:
    with pytest.raises(ToolCallError) as info:
        book.validate({"guests": 1, "price": 1.0, "vip": True})
    assert str(info.value) == "invalid arguments for tool 'book': rooms: Field required"


def test_validate_wrong_type_names_tool_and_field() -> None:
    with pytest.raises(ToolCallError) as info:
        book.validate({"guests": "three", "price": 1.0, "vip": True, "rooms": []})
    message = str(info.value)
    assert message.startswith("invalid arguments for tool 'book': guests: ")
    assert "valid integer" in message


def test_validate_nested_error_location() -> None:
    with pytest.raises(ToolCallError, match=r"tool 'book': where\.x: Field required"):
        book.validate({"guests": 1, "price": 1.0, "vip": True, "rooms": [], "where": {}})


def test_validate_rejects_unknown_keys() -> None:
    with pytest.raises(ToolCallError) as info:
        book.validate({"guests": 1, "price": 1.0, "vip": True, "rooms": [], "color": "red"})
    assert str(info.value) == (
        "invalid arguments for tool 'book': color: Extra inputs are not permitted"
    )


def test_validate_rejects_literal_outside_enum_and_constraint() -> None:
    base = {"guests": 1, "price": 1.0, "vip": True, "rooms": []}
    with pytest.raises(ToolCallError, match=r"tool 'book': unit: Input should be 'C' or 'F'"):
        book.validate({**base, "unit": "K"})
    with pytest.raises(ToolCallError, match=r"tool 'book': stars: .*greater than or equal to 0"):
        book.validate({**base, "stars": -1})


def test_validate_reports_several_problems() -> None:
    with pytest.raises(ToolCallError) as info:
        book.validate({"guests": "x", "vip": True, "rooms": []})
    message = str(info.value)
    assert "guests: " in message
    assert "price: Field required" in message


@pytest.mark.parametrize("bad", [["guests", 1], "guests=1", None, 3])
def test_validate_rejects_non_dict_arguments(bad: Any) -> None:
    with pytest.raises(ToolCallError) as info:
        book.validate(bad)
    assert str(info.value) == (
        f"arguments for tool 'book' must be a JSON object, got {type(bad).__name__}"
    )


class Lookup(Tool):
    """A class-based tool with a raw JSON schema."""

    name = "lookup"
    description = "Look a key up."
    parameters = {
        "type": "object",
        "properties": {
            "key": {"type": "string", "minLength": 1},
            "limit": {"type": "integer", "minimum": 1},
        },
        "required": ["key"],
        "additionalProperties": False,
    }

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def call(self, key: str, limit: int = 1) -> str:
        self.calls += 1
        return f"{key}:{limit}"


def test_raw_schema_tool_spec_is_unchanged() -> None:
    lookup = Lookup()
    assert lookup.spec() == {
        "name": "lookup",
        "description": "Look a key up.",
        "parameters": Lookup.parameters,
    }
    assert lookup.is_async is False
    assert repr(lookup) == "<Lookup 'lookup'>"


def test_raw_schema_tool_validates_with_jsonschema() -> None:
    lookup = Lookup()
    args = {"key": "k", "limit": 2}
    assert lookup.validate(args) == {"key": "k", "limit": 2}
    assert lookup.call(**lookup.validate(args)) == "k:2"


def test_raw_schema_wrong_type() -> None:
    with pytest.raises(ToolCallError) as info:
        Lookup().validate({"key": 3})
    assert str(info.value) == "invalid arguments for tool 'lookup': key: 3 is not of type 'string'"


def test_raw_schema_does_not_coerce() -> None:
    with pytest.raises(ToolCallError, match=r"limit: '2' is not of type 'integer'"):
        Lookup().validate({"key": "k", "limit": "2"})


def test_raw_schema_missing_and_extra() -> None:
    with pytest.raises(ToolCallError, match=r"tool 'lookup': \(root\): 'key' is a required"):
        Lookup().validate({})
    with pytest.raises(ToolCallError, match=r"tool 'lookup': .*'color' was unexpected"):
        Lookup().validate({"key": "k", "color": "red"})


def test_raw_schema_non_dict() -> None:
    with pytest.raises(ToolCallError, match=r"tool 'lookup' must be a JSON object, got list"):
        Lookup().validate([])  # type: ignore[arg-type]


class Note(BaseModel):
    text: str
    tags: list[str] = []
    opts: dict[str, str] = {"title": "keep me"}
    title: str = "note"


class AddNote(Tool):
    """A class-based tool with a pydantic ``Params`` model."""

    name = "add_note"
    description = "Store a note."
    Params = Note

    def call(self, **arguments: Any) -> str:
        return arguments["text"]


def test_params_model_schema_is_clean() -> None:
    assert AddNote().parameters == {
        "type": "object",
        "properties": {
            "text": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}, "default": []},
            "opts": {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "default": {"title": "keep me"},
            },
            "title": {"type": "string", "default": "note"},
        },
        "required": ["text"],
    }


def test_params_model_validate() -> None:
    assert AddNote().validate({"text": "hi", "tags": ["a"]}) == {
        "text": "hi",
        "tags": ["a"],
        "opts": {"title": "keep me"},
        "title": "note",
    }
    with pytest.raises(ToolCallError, match=r"tool 'add_note': text: Field required"):
        AddNote().validate({"tags": []})
    with pytest.raises(ToolCallError, match=r"tool 'add_note': text: Input should be a valid str"):
        AddNote().validate({"text": 5})


def test_params_model_unknown_keys_are_rejected_not_dropped() -> None:
    with pytest.raises(ToolCallError) as info:
        AddNote().validate({"text": "hi", "color": "red"})
    message = str(info.value)
    assert message.startswith("invalid arguments for tool 'add_note': unknown argument(s) 'color'")
    assert "expected: opts, tags, text, title" in message


class Loose(BaseModel):
    model_config = ConfigDict(extra="allow")
    a: int


class LooseTool(Tool):
    name = "loose"
    Params = Loose

    def call(self, **arguments: Any) -> Any:
        return arguments


def test_params_model_with_extra_allow_keeps_extras() -> None:
    assert LooseTool().validate({"a": "1", "b": 2}) == {"a": 1, "b": 2}


class Aliased(BaseModel):
    sender: str = Field(alias="from")


class AliasTool(Tool):
    name = "alias_tool"
    Params = Aliased

    def call(self, sender: str) -> str:
        return sender


def test_params_model_alias() -> None:
    assert AliasTool().validate({"from": "ann"}) == {"sender": "ann"}


def test_class_tool_definition_errors() -> None:
    class Nameless(Tool):
        pass

    class BadName(Tool):
        name = "bad name"

    class NotObject(Tool):
        name = "not_object"
        parameters = {"type": "array"}

    with pytest.raises(ToolDefinitionError, match=r"Nameless: tool name ''"):
        Nameless()
    with pytest.raises(ToolDefinitionError, match=r"BadName: tool name 'bad name'"):
        BadName()
    with pytest.raises(
        ToolDefinitionError, match=r"'not_object': parameters must be a JSON object"
    ):
        NotObject()


def test_base_call_not_implemented() -> None:
    class Lazy(Tool):
        name = "lazy"

    with pytest.raises(NotImplementedError, match="'lazy' does not implement call"):
        Lazy().call()


# -- calling -------------------------------------------------------------------------------


@tool
def add(a: int, b: int = 1) -> int:
    """Add two integers."""
    return a + b


@tool
async def fetch(url: str) -> str:
    """Fetch a URL."""
    await asyncio.sleep(0)
    return f"got {url}"


def test_decorated_function_is_still_callable() -> None:
    assert isinstance(add, Tool)
    assert add(2, 3) == 5
    assert add(2) == 3
    assert add(a=4, b=5) == 9
    assert add.call(**add.validate({"a": "40", "b": 2})) == 42
    assert add.fn.__name__ == "add"


def test_async_detection() -> None:
    assert add.is_async is False
    assert fetch.is_async is True
    assert asyncio.run(fetch("x")) == "got x"
    assert asyncio.run(fetch.call(url="y")) == "got y"


def test_async_class_tool_detection() -> None:
    class Slow(Tool):
        name = "slow"

        async def call(self) -> str:
            return "done"

    assert Slow().is_async is True
    assert asyncio.run(Slow().call()) == "done"


# -- to_result() ---------------------------------------------------------------------------


def test_result_str() -> None:
    result = to_result("hello", call_id="c1", name="greet")
    assert result == ToolResult(
        call_id="c1", name="greet", content=[TextItem(text="hello")], is_error=False
    )


def test_result_empty_str_is_kept() -> None:
    assert to_result("").content == [TextItem(text="")]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (42, "42"),
        (2.5, "2.5"),
        (True, "true"),
        ({"city": "東京", "temp": 21}, '{"city": "東京", "temp": 21}'),
        ([1, "é", None], '[1, "é", null]'),
        ((1, 2), "[1, 2]"),
        ([], "[]"),
        ({}, "{}"),
    ],
)
def test_result_json_values(value: Any, text: str) -> None:
    result = to_result(value, call_id="c", name="t")
    assert result.is_error is False
    assert result.content == [TextItem(text=text)]
    assert result.text == text


def test_result_none() -> None:
    result = to_result(None)
    assert result.content == [TextItem(text="(no output)")]
    assert result.is_error is False


def test_result_items_are_kept() -> None:
    image = ImageItem(image="data:image/png;base64,AAAA")
    assert to_result(image, call_id="c", name="draw").content == [image]
    items = [TextItem(text="here"), image, FileItem(file="/tmp/a.csv", name="a.csv")]
    result = to_result(items, call_id="c", name="draw")
    assert result.content == items
    assert result.text == "here\n[image]\n[file: a.csv]"
    assert to_result(tuple(items)).content == items


def test_result_tool_result_passes_through() -> None:
    original = ToolResult(content=[TextItem(text="boom")], is_error=True)
    result = to_result(original, call_id="c9", name="risky")
    assert result == ToolResult(
        call_id="c9", name="risky", content=[TextItem(text="boom")], is_error=True
    )
    assert original.call_id == ""  # the tool's object is not mutated


def test_result_tool_result_keeps_its_ids_when_none_given() -> None:
    original = ToolResult(call_id="own", name="mine", content=[TextItem(text="x")])
    assert to_result(original) == original


@pytest.mark.parametrize(
    ("value", "type_name"),
    [
        (object(), "object"),
        (b"\x00raw", "bytes"),
        ({"s": {1, 2}}, "set"),
        ([1, Point(x=1)], "Point"),
    ],
)
def test_result_unserializable_is_an_error_result(value: Any, type_name: str) -> None:
    result = to_result(value, call_id="c2", name="weird")
    assert result.is_error is True
    assert result.call_id == "c2"
    assert result.name == "weird"
    assert result.text == (
        "Error: tool 'weird' returned a value that cannot be shown to the model "
        f"(unsupported result type {type_name})"
    )


def test_result_circular_value_is_an_error_result() -> None:
    loop: list[Any] = []
    loop.append(loop)
    result = to_result(loop, name="loop")
    assert result.is_error is True
    assert "Circular reference" in result.text


# -- registry ------------------------------------------------------------------------------


def test_register_function() -> None:
    def triple(x: int) -> int:
        """Triple a number."""
        return 3 * x

    register_tool(triple)
    assert "triple" in TOOLS
    made = get_tool("triple")
    assert isinstance(made, FunctionTool)
    assert made.name == "triple"
    assert made.description == "Triple a number."
    assert made.call(**made.validate({"x": "2"})) == 6


def test_register_decorated_tool_instance() -> None:
    register_tool(add)
    assert get_tool("add") is add


def test_register_instance_under_another_name() -> None:
    lookup = Lookup()
    register_tool(lookup, "lookup_v2")
    assert get_tool("lookup_v2") is lookup


def test_register_class_is_instantiated_on_get() -> None:
    register_tool(Lookup)
    first = get_tool("lookup")
    second = get_tool("lookup")
    assert type(first) is Lookup
    assert first.call(key="a") == "a:1"
    assert first.calls == 1
    assert second.calls == 0


def test_register_lazy_string(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, FIXTURE_MODULE, raising=False)
    register_tool(f"{FIXTURE_MODULE}:multiply", "multiply")
    register_tool(f"{FIXTURE_MODULE}:shout", "shout")
    register_tool(f"{FIXTURE_MODULE}:Echo", "echo")
    assert FIXTURE_MODULE not in sys.modules  # nothing imported at registration

    multiply = get_tool("multiply")
    assert FIXTURE_MODULE in sys.modules
    assert isinstance(multiply, FunctionTool)
    assert multiply.name == "multiply"
    assert multiply.parameters["properties"]["a"]["description"] == "the first factor."
    assert multiply.call(**multiply.validate({"a": 6, "b": "7"})) == 42

    fixture = sys.modules[FIXTURE_MODULE]
    assert get_tool("shout") is fixture.shout
    assert get_tool("shout").call(text="hi") == "HI"
    echo = get_tool("echo")
    assert type(echo) is fixture.Echo
    assert echo.call(**echo.validate({"text": "x"})) == "x"


def test_register_string_needs_a_name() -> None:
    with pytest.raises(ConfigError, match=r"register_tool\('module:attr'\) needs a name"):
        register_tool(f"{FIXTURE_MODULE}:multiply")


def test_register_taken_name_raises_unless_replace() -> None:
    register_tool(add)
    with pytest.raises(RegistryError) as info:
        register_tool(Lookup(), "add")
    assert str(info.value) == "tool 'add' is already registered; pass replace=True to override"
    assert get_tool("add") is add

    replacement = Lookup()
    register_tool(replacement, "add", replace=True)
    assert get_tool("add") is replacement


def test_unknown_name_lists_known_names() -> None:
    register_tool(add)
    register_tool(Lookup)
    with pytest.raises(RegistryError) as info:
        get_tool("nope")
    known = ", ".join(sorted(set(TOOLS.names())))
    assert str(info.value) == f"unknown tool 'nope'; known: {known}"
    assert "add" in known and "lookup" in known
    assert isinstance(info.value, KeyError)


def test_unknown_name_with_empty_registry() -> None:
    registry: LazyRegistry[Any] = LazyRegistry("widget")
    with pytest.raises(RegistryError, match=r"^unknown widget 'x'; known: none$"):
        registry.get("x")


def test_module_that_fails_to_import(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "needs_missing_dep.py").write_text(
        "import qwen_agent_test_definitely_missing_dep\n", encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    register_tool("needs_missing_dep:thing", "fancy")
    for _ in range(2):  # a failed import is not cached: the next lookup tries again
        with pytest.raises(RegistryError) as info:
            get_tool("fancy")
        message = str(info.value)
        assert message.startswith("tool 'fancy' needs 'needs_missing_dep', which failed to import")
        assert "qwen_agent_test_definitely_missing_dep" in message
        assert "Install the matching extra" in message
        assert isinstance(info.value.__cause__, ImportError)


def test_missing_module_and_missing_attribute() -> None:
    register_tool("qwen_agent_no_such_module:x", "ghost")
    with pytest.raises(RegistryError, match=r"needs 'qwen_agent_no_such_module'.*Install"):
        get_tool("ghost")
    register_tool(f"{FIXTURE_MODULE}:nope", "nope")
    with pytest.raises(RegistryError, match=r"^tool 'nope': 'tests._tools_fixture' has no 'nope'$"):
        get_tool("nope")


def test_register_nameless_class_without_name() -> None:
    class Nameless(Tool):
        pass

    with pytest.raises(RegistryError, match="tool name must be a non-empty string"):
        register_tool(Nameless)


def test_as_tool() -> None:
    assert as_tool(add) is add
    assert type(as_tool(Lookup)) is Lookup
    register_tool(add)
    assert as_tool("add") is add

    def plain(a: int) -> int:
        return a

    made = as_tool(plain)
    assert isinstance(made, FunctionTool) and made.name == "plain"
    with pytest.raises(ConfigError, match="not a tool: 42"):
        as_tool(42)  # type: ignore[arg-type]


def test_lazy_registry_basics() -> None:
    registry: LazyRegistry[int] = LazyRegistry("number", {"b": 2})
    registry.register("a", 1)
    assert registry.names() == ["a", "b"]
    assert "a" in registry and "c" not in registry
    assert registry.get("a") == 1
    registry.unregister("a")
    assert registry.names() == ["b"]
    with pytest.raises(RegistryError, match=r"^no number named 'a'$"):
        registry.unregister("a")
    with pytest.raises(RegistryError, match="number name must be a non-empty string"):
        registry.register("", 3)


def test_lazy_registry_resolves_once() -> None:
    registry: LazyRegistry[Any] = LazyRegistry("thing", {"json": "json:dumps"})
    assert registry.get("json") is json.dumps
    assert registry.get("json") is json.dumps
    module_only: LazyRegistry[Any] = LazyRegistry("mod", {"m": "json"})
    assert module_only.get("m") is json
