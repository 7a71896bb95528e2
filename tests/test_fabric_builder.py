"""AgentFabric's builder: partial updates validated against AgentConfig, a bad update shown
to the builder as an observation it fixes, and a hand edit seen by the next builder turn.
The builder's plumbing runs on ScriptedLLM here (the loop's logic is under test); how often
the bundled model gets a request right is benchmarks/fabric.py's figure."""

from __future__ import annotations

import json

import pytest

from qwen_agent.config import AgentConfig
from qwen_agent.errors import ToolCallError
from qwen_agent.events import ToolResultEvent
from qwen_agent.testing import ScriptedLLM

pytest.importorskip("pydantic")
from agentfabric.builder import Draft, apply_update, builder, slug  # noqa: E402


def call(**arguments: object) -> str:
    body = json.dumps({"name": "update_agent_config", "arguments": arguments})
    return f"<tool_call>\n{body}\n</tool_call>"


def test_an_update_changes_only_what_it_names():
    base = AgentConfig(name="a", instructions="Be brief.", tools=["code_interpreter"])
    new, changed = apply_update(
        base, {"description": "Plans trips", "tools": ["image_gen", "code_interpreter"]}
    )
    assert changed == ["tools", "description"]
    assert new.instructions == "Be brief." and new.name == "a"
    assert new.tools == ["code_interpreter", "image_gen"]  # added once, order kept
    assert base.tools == ["code_interpreter"]  # never changed in place
    new, changed = apply_update(new, {"remove_tools": ["code_interpreter"]})
    assert new.tools == ["image_gen"] and changed == ["tools"]


def test_starters_are_added_and_removed_and_names_become_names():
    c, _ = apply_update(AgentConfig(), {"conversation_starters": ["Hi?", " Hi? ", "Plan a trip"]})
    assert c.conversation_starters == ["Hi?", "Plan a trip"]
    c, _ = apply_update(c, {"remove_conversation_starters": ["Hi?"], "name": "Chef Bot!"})
    assert c.conversation_starters == ["Plan a trip"] and c.name == "Chef-Bot"
    assert slug("  Wander   Lust ") == "Wander-Lust" and slug("!!!") == ""


@pytest.mark.parametrize(
    ("update", "message"),
    [
        ({"tools": ["web_browser"]}, "no built-in tool 'web_browser'"),
        ({"name": "???"}, "cannot be a name"),
        ({"colour": "blue"}, "colour: no such field"),
        ({"instructions": 42}, "instructions: Input should be a valid string"),
        ({"conversation_starters": [f"q{i}" for i in range(9)]}, "conversation_starters"),
    ],
)
def test_a_bad_update_is_an_error_that_says_what_to_fix(update, message):
    with pytest.raises(ToolCallError, match="update_agent_config") as err:
        apply_update(AgentConfig(), update)
    assert message in str(err.value)


def test_the_builder_fixes_a_malformed_update_and_the_draft_keeps_its_last_good_state():
    seen: list[list[str]] = []
    draft = Draft(AgentConfig(name="start"), on_change=lambda c, f, a: seen.append(f))
    llm = ScriptedLLM(
        [
            call(tools=["web_search"]),  # not a built-in tool: an observation, not a crash
            call(tools=["code_interpreter"], name="Data Helper"),
            "Added the code interpreter and named it Data-Helper.",
        ]
    )
    events = list(builder(draft, llm).run("make it a data helper that can run code"))
    results = [e.result for e in events if isinstance(e, ToolResultEvent)]
    assert results[0].is_error and "no built-in tool 'web_search'" in results[0].text
    assert not results[1].is_error and "Updated" in results[1].text
    assert draft.config.name == "Data-Helper" and draft.config.tools == ["code_interpreter"]
    assert seen == [["name", "tools"]]  # the failed update changed nothing
    # the builder's second request showed it the error it had to fix
    second = llm.requests[1].messages
    assert "web_search" in second[-1].text and second[-1].role != "assistant"


def test_a_hand_edit_is_what_the_next_builder_turn_sees():
    draft = Draft(AgentConfig(name="start"))
    llm = ScriptedLLM([call(description="Suggests recipes"), "Done.", "It is called Chef."])
    list(builder(draft, llm).run("make me a cooking helper"))
    edited = draft.config.model_copy(update={"name": "Chef", "instructions": "Answer in French."})
    draft.replace(edited)  # the person typed in the form
    list(builder(draft, llm).run("what is it called?"))
    system = llm.requests[-1].messages[0].text
    assert '"name": "Chef"' in system and "Answer in French." in system
    assert "Suggests recipes" in system
    first = llm.requests[0].messages[0].text
    assert '"name": "start"' in first and "Chef" not in first
