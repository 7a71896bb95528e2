"""The built-in tools as an agent lists them, and dialogues that use them.

Every built-in tool is listed in training with the name, description and parameters the
package's own class has (read from the class, so the two cannot drift apart), and its
results look as the real tool writes them: the image tool's "Drew 512x512 image for ...",
retrieval's numbered passages. Retrieval dialogues ask about facts in the user's documents
(a handbook, the lease, meeting notes): the call searches with the question's keywords, the
answer gives the fact and cites the passage, and a search that finds nothing is said so.

No wording here comes from ``benchmarks/first_use.py`` or the held-out set.
"""

from __future__ import annotations

import random
import string
from typing import Any

from training.smol_agent import vocab as V


def builtin_spec(name: str) -> dict[str, Any]:
    """The tool's spec as ``Agent`` lists it (the class's name, description, parameters)."""
    if name == "code_interpreter":
        from qwen_agent.tools.code_interpreter import CodeInterpreter as cls
    elif name == "image_gen":
        from qwen_agent.tools.image_gen import ImageGen as cls
    elif name == "retrieval":
        from qwen_agent.tools.retrieval import Retrieval as cls
    else:
        raise KeyError(name)
    return {"name": cls.name, "description": cls.description, "parameters": cls.parameters}


DOC_NAMES = [
    "handbook.pdf",
    "employee-handbook.pdf",
    "lease.pdf",
    "notes.md",
    "meeting-notes.docx",
    "policies.txt",
    "manual.pdf",
    "guide.md",
    "faq.html",
    "club-rules.txt",
    "onboarding.docx",
    "trip-plan.md",
    "README.md",
    "contract.pdf",
    "minutes-march.txt",
    "house-rules.pdf",
]


def retrieval_spec(rng: random.Random) -> tuple[dict[str, Any], list[str]]:
    """Retrieval as an agent with documents lists it (the description names them), and
    the documents' names."""
    spec = builtin_spec("retrieval")
    names = rng.sample(DOC_NAMES, rng.randint(1, 3))
    spec["description"] = f"{spec['description']} Documents: {', '.join(names)}."
    return spec, names


def _code(rng: random.Random) -> str:
    n = rng.choice([4, 5, 6, 8])
    pool = string.digits if rng.random() < 0.5 else string.ascii_uppercase + string.digits
    return "".join(rng.choice(pool) for _ in range(n))


def _time(rng: random.Random) -> str:
    h, m = rng.randint(6, 21), rng.choice([0, 15, 30, 45])
    return (
        f"{h}:{m:02d}"
        if rng.random() < 0.5
        else f"{(h - 1) % 12 + 1}:{m:02d} {'am' if h < 12 else 'pm'}"
    )


def _person(rng: random.Random) -> str:
    return f"{rng.choice(V.FIRST)} {rng.choice(V.LAST)}"


def _money(rng: random.Random) -> str:
    return rng.choice(["$", "€", "£"]) + str(rng.choice([15, 25, 40, 75, 120, 450, 900, 1200]))


def _day(rng: random.Random) -> str:
    return rng.choice(V.WEEKDAYS)


def _count(rng: random.Random) -> str:
    return str(rng.randint(2, 30))


def _place(rng: random.Random) -> str:
    return rng.choice(
        [
            "room 204",
            "the third floor",
            "the basement",
            "building B",
            "the front desk",
            "the kitchen",
            "reception",
            "the side entrance",
            "locker 12",
            "the garage",
        ]
    )


# (how a person asks, the keywords a search would use, the sentence the document holds,
# the answer; {v} is the fact's value)
FACTS: list[tuple[list[str], str, str, str, Any]] = [
    (
        [
            "what's the wifi password?",
            "What is the password for the guest Wi-Fi?",
            "wifi password pls",
        ],
        "wifi password",
        "The guest Wi-Fi network is called Visitors and its password is {v}.",
        "The Wi-Fi password is {v}",
        _code,
    ),
    (
        [
            "When does the office open?",
            "what time do the doors open in the morning",
            "opening time of the office?",
        ],
        "office opening time",
        "The office opens at {v} on weekdays; the doors are locked at night.",
        "The office opens at {v}",
        _time,
    ),
    (
        ["who is my manager", "Who do I report to?", "who's in charge of my team?"],
        "manager report to",
        "New staff report to {v}, who leads the team and approves leave.",
        "You report to {v}",
        _person,
    ),
    (
        [
            "How many vacation days do I get?",
            "how much annual leave is there",
            "number of holiday days per year?",
        ],
        "vacation days annual leave",
        "Every employee gets {v} days of paid vacation a year.",
        "You get {v} days of paid vacation a year",
        _count,
    ),
    (
        [
            "how much is the deposit?",
            "What's the security deposit on the flat?",
            "deposit amount for the apartment",
        ],
        "security deposit",
        "The tenant pays a security deposit of {v}, returned within 30 days of moving out.",
        "The security deposit is {v}",
        _money,
    ),
    (
        ["When is rent due?", "what day is the rent due each month", "rent due date?"],
        "rent due date",
        "Rent is due on the {v} of each month, by bank transfer.",
        "Rent is due on the {v} of each month",
        lambda rng: rng.choice(["1st", "3rd", "5th", "15th", "last day"]),
    ),
    (
        ["Are pets allowed?", "can I keep a cat in the apartment?", "pet policy?"],
        "pets allowed",
        "Pets are {v} in the building.",
        "Pets are {v}",
        lambda rng: rng.choice(
            ["allowed with the landlord's written consent", "not allowed", "allowed, up to two"]
        ),
    ),
    (
        [
            "where is the first aid kit?",
            "Where can I find the first-aid box",
            "location of the first aid kit",
        ],
        "first aid kit location",
        "The first aid kit is kept in {v}, next to the fire extinguisher.",
        "The first aid kit is in {v}",
        _place,
    ),
    (
        [
            "what did we decide about the launch date?",
            "When is the launch, per the notes?",
            "launch date decided in the meeting?",
        ],
        "launch date decided",
        "The team agreed to move the launch to {v}.",
        "The launch was moved to {v}",
        lambda rng: f"{rng.choice(V.WEEKDAYS)} {rng.randint(2, 28)} {rng.choice(V.MONTHS)}",
    ),
    (
        [
            "Who takes the minutes next time?",
            "who is writing the notes at the next meeting",
            "next minute taker?",
        ],
        "minutes next meeting",
        "{v} will take the minutes at the next meeting.",
        "{v} takes the minutes next time",
        _person,
    ),
    (
        [
            "what's the budget for the project?",
            "How much money does the project have?",
            "project budget?",
        ],
        "project budget",
        "The approved budget for the project is {v} for the year.",
        "The project budget is {v} for the year",
        _money,
    ),
    (
        ["How do I reset the device?", "how to factory reset it", "reset steps?"],
        "reset device",
        "To reset the device, hold the power button for {v} seconds until the light blinks.",
        "Hold the power button for {v} seconds until the light blinks",
        _count,
    ),
    (
        ["what's the warranty period?", "How long is the warranty?", "warranty length"],
        "warranty period",
        "The warranty covers parts and labour for {v} months from the date of purchase.",
        "The warranty lasts {v} months from the date of purchase",
        lambda rng: rng.choice(["6", "12", "24", "36"]),
    ),
    (
        [
            "When is the checkout time?",
            "what time do we have to leave the hotel",
            "check-out time?",
        ],
        "checkout time",
        "Check-out is at {v} on the last day; the bags can stay at reception.",
        "Check-out is at {v}",
        _time,
    ),
    (
        ["What day is the club meeting?", "when do members meet", "meeting day of the club"],
        "members meeting day",
        "Members meet every {v} evening in the main hall.",
        "Members meet every {v} evening",
        _day,
    ),
    (
        ["How many guests can I bring?", "guest limit?", "can I bring friends, how many?"],
        "guests limit",
        "Each member may bring up to {v} guests per visit.",
        "You can bring up to {v} guests per visit",
        lambda rng: str(rng.randint(1, 4)),
    ),
    (
        ["what's the door code", "What is the code for the back door?", "door code?"],
        "door code",
        "The code for the back door is {v}; it changes every month.",
        "The back door code is {v}",
        _code,
    ),
    (
        [
            "Who do I call in an emergency?",
            "emergency contact?",
            "who should I contact if something breaks at night",
        ],
        "emergency contact",
        "In an emergency, call {v} on the number posted in the hallway.",
        "In an emergency, call {v}",
        _person,
    ),
    (
        [
            "how much notice do I have to give?",
            "What's the notice period?",
            "notice period for leaving",
        ],
        "notice period",
        "Either side may end the agreement with {v} weeks' written notice.",
        "The notice period is {v} weeks, in writing",
        lambda rng: rng.choice(["2", "4", "6", "8", "12"]),
    ),
    (
        [
            "where do we meet on the first day of the trip?",
            "meeting point for the trip?",
            "Where does the tour start?",
        ],
        "meeting point first day",
        "On the first day we meet at {v} at 9 in the morning.",
        "You meet at {v} at 9 in the morning",
        lambda rng: rng.choice(
            ["the main station", "the hotel lobby", "the harbour", "the old town gate"]
        ),
    ),
]

FILLER = [
    "This document replaces all earlier versions.",
    "Questions about this section go to the office.",
    "See the appendix for the full list.",
    "These rules apply to everyone on the premises.",
    "Changes are announced by email two weeks ahead.",
    "Keep this page for your records.",
    "The table below sums up the main points.",
    "Parking is free for visitors on weekends.",
]


def docs_exchange(
    rng: random.Random, files: list[str]
) -> tuple[str, dict[str, Any], str, str, str]:
    """A question about the user's documents: (the request, the call's arguments, the
    tool's result as retrieval writes it, the answer, the thought)."""
    asks, query, sentence, answer, value = rng.choice(FACTS)
    v = value(rng)
    user = rng.choice(asks)
    if rng.random() < 0.3:
        user = (
            rng.choice(
                [
                    "Check my documents: ",
                    "according to the docs, ",
                    "From the files: ",
                    "look it up in my notes - ",
                    "Can you search the documents? ",
                ]
            )
            + user[0].lower()
            + user[1:]
        )
    files = files or ["notes.md"]
    args: dict[str, Any] = {"query": query}
    if rng.random() < 0.1:
        args["top_k"] = rng.choice([2, 3, 5])
    if rng.random() < 0.12:  # nothing matches
        result = (
            f"No passage in the documents matches {query!r}. Try other keywords "
            "or tell the user the documents do not say."
        )
        reply = rng.choice(
            [
                "I couldn't find that in your documents.",
                "Your documents don't seem to say; I found no passage about it.",
            ]
        )
        return user, args, result, reply, "I'll search the documents for this."
    hits = rng.randint(1, 3)
    where = rng.randrange(hits) if rng.random() < 0.3 else 0
    parts = [
        f"{hits} passage{'s' if hits != 1 else ''} from the documents for {query!r}, "
        "best first. Cite them by number, e.g. [1]."
    ]
    for i in range(hits):
        src = rng.choice(files)
        loc = rng.choice([f"page {rng.randint(1, 40)}", f"part {rng.randint(1, 12)}"])
        score = round(rng.uniform(9, 14) - 2.5 * i, 2)
        if i == where:
            text = " ".join([rng.choice(FILLER), sentence.format(v=v), rng.choice(FILLER)])
        else:
            other = rng.choice(FACTS)
            text = " ".join([rng.choice(FILLER), other[2].format(v=other[4](rng))])
        parts.append(f"\n[{i + 1}] {src}, {loc} (score {score:.2f})\n{text}")
    reply = f"{answer.format(v=v)} [{where + 1}]."
    return user, args, "\n".join(parts), reply, "I'll search the documents for this."


def image_result(prompt: str, rng: random.Random) -> str:
    """What ``image_gen`` hands back, as the real tool writes it."""
    side = rng.choice([512, 512, 768, 1024])
    name = "".join(rng.choice(string.hexdigits.lower()) for _ in range(12))
    return (
        f"Drew {side}x{side} image for {prompt!r} (seed {rng.randint(0, 2**31)}, "
        f"{rng.choice([20, 25, 30])} steps): {name}.png"
    )
