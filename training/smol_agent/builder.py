"""Builder dialogues: a person says in plain words what assistant they want, and the builder
turns each request into a partial update of the assistant's configuration.

The tool has the shape of AgentFabric's ``update_agent_config`` (name, description,
instructions, tools and remove_tools, conversation starters to add or remove, welcome
message, avatar); a request sets only what it mentions ("call it Wanderer" sets the name,
"add the code interpreter" the tools, "take the image tool away" remove_tools). Requests
too vague to act on get a question back. Field names and descriptions vary, so the model
learns to read the schema, not one spelling of it. As in the app, the builder's
instructions show the assistant as it is now (:func:`current_config`), and a removal names
a tool it has.
"""

from __future__ import annotations

import random
from typing import Any

from training.smol_agent import vocab as V

ROLES = [
    ("travel planner", "plans trips and suggests places to visit"),
    ("cooking helper", "suggests recipes and explains cooking steps"),
    ("math tutor", "explains math problems step by step"),
    ("fitness coach", "makes workout plans"),
    ("writing assistant", "helps write and polish texts"),
    ("study buddy", "quizzes the user and explains topics"),
    ("support agent for a bike shop", "answers customers' questions about bikes and repairs"),
    ("data analyst", "analyses tables and makes charts"),
    ("gardening advisor", "gives advice on plants and gardens"),
    ("language teacher", "teaches vocabulary and corrects sentences"),
    ("movie recommender", "recommends films"),
    ("budget planner", "helps plan a monthly budget"),
]
TOOLS = {
    "code_interpreter": [
        "add the code interpreter",
        "let it run Python",
        "it should be able to run code",
    ],
    "image_gen": ["let it draw pictures", "add image generation", "it should make images"],
    "retrieval": ["it should search my documents", "add knowledge search over my files"],
}
#: how people name each tool when they take it away
TOOL_WORDS = {
    "code_interpreter": ["code interpreter", "code runner", "Python tool"],
    "image_gen": ["image tool", "picture maker", "image generation"],
    "retrieval": ["document search", "knowledge search", "file search"],
}
NAMES = ["Wanderer", "Chef Bot", "Mathy", "Coach Kai", "Quill", "Buddy", "Spoke", "Sage", "Fern"]


def builder_tool_names() -> list[str]:
    """The built-in tools the builder may switch on (AgentFabric's list)."""
    return sorted(TOOLS)


def builder_tool(rng: random.Random) -> dict[str, Any]:
    """The builder's one tool, with a name and field descriptions that vary."""
    props: dict[str, Any] = {
        "name": {"type": "string", "description": "the assistant's name"},
        "description": {"type": "string", "description": "one line saying what it does"},
        "instructions": {
            "type": "string",
            "description": "how the assistant behaves (its system prompt)",
        },
        "tools": {
            "type": "array",
            "items": {"type": "string", "enum": sorted(TOOLS)},
            "description": "built-in tools it may use",
        },
        "conversation_starters": {
            "type": "array",
            "items": {"type": "string"},
            "description": "example questions shown to users",
        },
        "welcome_message": {"type": "string", "description": "the first message users see"},
    }
    if rng.random() < 0.7:  # AgentFabric's full tool; the short one stays in the mix
        props["remove_tools"] = {
            "type": "array",
            "items": {"type": "string", "enum": sorted(TOOLS)},
            "description": rng.choice(["built-in tools to remove", "tools to turn off"]),
        }
        props["remove_conversation_starters"] = {
            "type": "array",
            "items": {"type": "string"},
            "description": "example questions to remove",
        }
        props["avatar"] = {
            "type": "string",
            "description": rng.choice(
                ["a picture to draw as its avatar", "describe the avatar image to draw"]
            ),
        }
    return {
        "name": rng.choice(["update_agent_config", "update_config", "set_assistant_config"]),
        "description": rng.choice(
            [
                "Update the assistant being built. Give only the fields to change.",
                "Change the configuration of the assistant under construction (partial update).",
            ]
        ),
        "parameters": {"type": "object", "properties": props},
    }


AVATARS = ["a smiling robot", "a paper plane", "a green leaf", "a tiny owl", "a red bicycle"]


def current_config(rng: random.Random, tools: list[str]) -> str:
    """The assistant as the app shows it to the builder (compact JSON, as
    ``agentfabric.builder.describe`` writes it)."""
    import json

    role, does = rng.choice(ROLES)
    fresh = rng.random() < 0.4
    shown = {
        "name": "my-assistant" if fresh else rng.choice(NAMES).replace(" ", "-"),
        "description": "" if fresh else f"A {role} that {does}.",
        "instructions": "" if fresh else f"You are a {role}.",
        "conversation_starters": [],
        "welcome_message": "",
        "tools": tools,
        "knowledge_files": 0,
    }
    return json.dumps(shown, ensure_ascii=False)


def builder_request(
    rng: random.Random, spec: dict[str, Any] | None = None, has: list[str] | None = None
) -> tuple[str, dict[str, Any] | None, str]:
    """(what the person says, the update, the builder's answer); no update when the
    request is too vague to act on. ``spec``: the builder's tool (removals and avatars
    only where it has those fields); ``has``: the tools the assistant has now."""
    props = (spec or {}).get("parameters", {}).get("properties", {})
    weights = [5, 3, 3, 2, 1, 1]
    weights += [2 if "remove_tools" in props and has else 0, 1 if "avatar" in props else 0]
    kinds = ["role", "name", "tool", "starter", "welcome", "vague", "remove", "avatar"]
    kind = rng.choices(kinds, weights)[0]
    if kind == "remove":
        tool = rng.choice(sorted(has or []))
        said = rng.choice(
            [
                "remove the {t}",
                "take the {t} away",
                "it doesn't need the {t} anymore",
                "turn off the {t}",
            ]
        ).format(t=rng.choice(TOOL_WORDS[tool]))
        return said, {"remove_tools": [tool]}, f"Removed {tool.replace('_', ' ')}."
    if kind == "avatar":
        picture = rng.choice(AVATARS)
        said = rng.choice(
            ["draw it an avatar: {p}", "give it a picture of {p} as avatar", "avatar: {p}"]
        ).format(p=picture)
        return said, {"avatar": picture}, "I'm drawing the avatar now."
    if kind == "role":
        role, does = rng.choice(ROLES)
        lang = rng.choice(V.LANGUAGES) if rng.random() < 0.4 else None
        said = rng.choice(
            [
                "make me a {r}",
                "I want a {r} that {d}",
                "build a {r}",
                "create an assistant that {d}",
            ]
        )
        said = said.format(r=role, d=does)
        update: dict[str, Any] = {
            "description": f"A {role} that {does}.",
            "instructions": f"You are a {role}. You {does}."
            + (f" Always answer in {lang}." if lang else ""),
        }
        if lang:
            said += rng.choice(
                [f" that answers in {lang}", f", in {lang} please", f". It should reply in {lang}"]
            )
        return (
            said,
            update,
            f"Done: it is now a {role}" + (f" that answers in {lang}." if lang else "."),
        )
    if kind == "name":
        name = rng.choice(NAMES)
        said = rng.choice(
            ["call it {n}", "name it {n}", "its name should be {n}", "let's go with the name {n}"]
        )
        return said.format(n=name), {"name": name}, f"It is called {name} now."
    if kind == "tool":
        tool = rng.choice(sorted(TOOLS))
        return rng.choice(TOOLS[tool]), {"tools": [tool]}, f"Added {tool.replace('_', ' ')}."
    if kind == "starter":
        question = rng.choice(
            [
                "What can you do?",
                "Plan a weekend in Rome",
                "Help me with fractions",
                "What should I cook tonight?",
            ]
        )
        said = rng.choice(
            ['add a starter: "{q}"', 'add the conversation starter "{q}"', "suggest users ask: {q}"]
        )
        return said.format(q=question), {"conversation_starters": [question]}, "Added that starter."
    if kind == "welcome":
        text = rng.choice(
            ["Hi! How can I help?", "Welcome! Ask me anything.", "Hello, ready when you are."]
        )
        said = rng.choice(['greet people with "{t}"', 'the welcome message should be "{t}"'])
        return said.format(t=text), {"welcome_message": text}, "The welcome message is set."
    said = rng.choice(
        ["make it better", "hmm, something nice", "i dont know, surprise me", "change it"]
    )
    return (
        said,
        None,
        rng.choice(
            [
                "Happy to. What should the assistant do, and for whom?",
                "Sure. What would you like it to help people with?",
            ]
        ),
    )
