"""Held-out everyday tools for evaluating tool calling (see ``cases.json`` next to this file).

Written independently of the training-data generator: ordinary names, ordinary docstrings.
Every tool is deterministic and offline; results are canned but computed from the arguments.
"""

from __future__ import annotations

from typing import Literal

from qwen_agent import tool
from qwen_agent.tool import Tool

# -- money --------------------------------------------------------------------------------

_USD_PER_UNIT = {
    "USD": 1.0,
    "EUR": 1.08,
    "GBP": 1.27,
    "JPY": 0.0067,
    "CAD": 0.74,
    "AUD": 0.66,
    "CHF": 1.13,
    "MXN": 0.058,
    "INR": 0.012,
    "CNY": 0.14,
}


@tool
def convert_currency(amount: float, from_currency: str, to_currency: str) -> str:
    """Convert an amount of money from one currency to another.

    Args:
        amount: how much money to convert.
        from_currency: 3-letter ISO code of the currency you have, e.g. "USD".
        to_currency: 3-letter ISO code of the currency you want, e.g. "EUR".
    """
    src, dst = from_currency.upper(), to_currency.upper()
    if src not in _USD_PER_UNIT or dst not in _USD_PER_UNIT:
        return f"Sorry, no exchange rate for {src}->{dst}."
    value = amount * _USD_PER_UNIT[src] / _USD_PER_UNIT[dst]
    return f"{amount:g} {src} = {value:,.2f} {dst}"


@tool
def get_stock_price(ticker: str) -> dict:
    """Get the latest share price for a stock ticker symbol."""
    sym = ticker.upper()
    cents = sum((i + 1) * ord(c) for i, c in enumerate(sym)) * 7 % 50000 + 1000
    return {"ticker": sym, "price": cents / 100, "currency": "USD"}


# -- books and words ------------------------------------------------------------------------

_BOOKS = [
    ("Dune", "Frank Herbert", 1965),
    ("The Name of the Wind", "Patrick Rothfuss", 2007),
    ("Piranesi", "Susanna Clarke", 2020),
    ("Pride and Prejudice", "Jane Austen", 1813),
    ("Project Hail Mary", "Andy Weir", 2021),
    ("The Left Hand of Darkness", "Ursula K. Le Guin", 1969),
    ("A Wizard of Earthsea", "Ursula K. Le Guin", 1968),
    ("Kindred", "Octavia Butler", 1979),
    ("Circe", "Madeline Miller", 2018),
]


@tool
def find_book(title: str | None = None, author: str | None = None) -> list[dict]:
    """Search the library catalogue for books by title and/or author."""
    t = (title or "").lower()
    a = (author or "").lower()
    hits = [
        {"title": bt, "author": ba, "year": by}
        for bt, ba, by in _BOOKS
        if (not t or t in bt.lower()) and (not a or a in ba.lower())
    ]
    return hits or [{"title": title or "(unknown)", "author": author or "(unknown)", "year": None}]


@tool
def define_word(word: str) -> str:
    """Look up the dictionary definition of an English word."""
    return f"{word} (n./adj.): definition #{len(word)} from the Everyday Dictionary."


@tool
def translate(text: str, to: str, source: str = "auto") -> str:
    """Translate text into another language.

    Args:
        text: the text to translate.
        to: the target language, e.g. "Spanish".
        source: the language of the text, or "auto" to detect it.
    """
    return f"[{source}->{to}] {text[::-1]}"


# -- text utilities -------------------------------------------------------------------------


@tool
def count_words(text: str) -> int:
    """Count how many words are in a text."""
    return len(text.split())


@tool
def transform_text(
    text: str, operation: Literal["uppercase", "lowercase", "reverse", "titlecase"]
) -> str:
    """Change a piece of text: upper/lower case, title case, or reverse it."""
    if operation == "uppercase":
        return text.upper()
    if operation == "lowercase":
        return text.lower()
    if operation == "titlecase":
        return text.title()
    return text[::-1]


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


# -- conversions and cooking --------------------------------------------------------------

_Unit = Literal["km", "mi", "m", "ft", "cm", "in", "kg", "lb", "g", "oz", "l", "gal", "c", "f"]

_TO_BASE = {
    "km": ("len", 1000.0),
    "mi": ("len", 1609.344),
    "m": ("len", 1.0),
    "ft": ("len", 0.3048),
    "cm": ("len", 0.01),
    "in": ("len", 0.0254),
    "kg": ("mass", 1000.0),
    "lb": ("mass", 453.592),
    "g": ("mass", 1.0),
    "oz": ("mass", 28.3495),
    "l": ("vol", 1.0),
    "gal": ("vol", 3.78541),
}


@tool
def convert_units(value: float, from_unit: _Unit, to_unit: _Unit) -> str:
    """Convert a measurement between units (length, weight, volume, temperature).

    Args:
        value: the number to convert.
        from_unit: unit of the value.
        to_unit: unit to convert to.
    """
    if {from_unit, to_unit} <= {"c", "f"}:
        if from_unit == to_unit:
            out = value
        elif from_unit == "c":
            out = value * 9 / 5 + 32
        else:
            out = (value - 32) * 5 / 9
        return f"{value:g} {from_unit.upper()} = {out:.1f} {to_unit.upper()}"
    if from_unit in ("c", "f") or to_unit in ("c", "f"):
        return f"cannot convert {from_unit} to {to_unit}"
    (kind_a, fa), (kind_b, fb) = _TO_BASE[from_unit], _TO_BASE[to_unit]
    if kind_a != kind_b:
        return f"cannot convert {from_unit} to {to_unit}"
    return f"{value:g} {from_unit} = {value * fa / fb:.2f} {to_unit}"


@tool
def get_recipe(dish: str, servings: int = 4, vegetarian: bool = False) -> dict:
    """Find a recipe for a dish.

    Args:
        dish: what you want to cook, e.g. "lasagna".
        servings: number of people to cook for.
        vegetarian: only return meat-free recipes.
    """
    return {
        "dish": dish,
        "servings": servings,
        "vegetarian": vegetarian,
        "ingredients": [f"{servings * 100} g main ingredient", "salt", "olive oil"],
        "minutes": 15 + 5 * len(dish.split()),
    }


# -- travel and deliveries ------------------------------------------------------------------


@tool
def flight_status(flight_number: str, date: str = "") -> str:
    """Check whether a flight is on time, delayed or landed.

    Args:
        flight_number: airline code and number, e.g. "BA283".
        date: departure date as YYYY-MM-DD; leave empty for today.
    """
    code = flight_number.replace(" ", "").upper()
    states = ["on time", "delayed 25 min", "boarding", "landed"]
    state = states[sum(map(ord, code)) % len(states)]
    return f"Flight {code} ({date or 'today'}): {state}"


@tool
def track_package(
    tracking_number: str, carrier: Literal["ups", "fedex", "usps", "dhl"] | None = None
) -> dict:
    """Track a parcel by its tracking number."""
    steps = ["label created", "in transit", "out for delivery", "delivered"]
    return {
        "tracking_number": tracking_number,
        "carrier": carrier or "detected automatically",
        "status": steps[len(tracking_number) % len(steps)],
    }


# -- time, plans and messages ---------------------------------------------------------------


@tool
def set_alarm(
    time: str, label: str = "", repeat: Literal["once", "daily", "weekdays"] = "once"
) -> str:
    """Set an alarm on the phone.

    Args:
        time: alarm time in 24-hour HH:MM format, e.g. "07:30".
        label: optional name shown when the alarm rings.
        repeat: how often the alarm repeats.
    """
    extra = f" '{label}'" if label else ""
    return f"Alarm{extra} set for {time} ({repeat})."


@tool
def create_reminder(task: str, in_minutes: int) -> str:
    """Remind me about something after a number of minutes."""
    return f"OK, I'll remind you to {task} in {in_minutes} minutes."


@tool
def add_todo(
    item: str, priority: Literal["low", "medium", "high"] = "medium", list_name: str = "personal"
) -> str:
    """Add an item to a to-do list.

    Args:
        item: the task to add.
        priority: how important it is.
        list_name: which list to put it on.
    """
    return f"Added '{item}' to your {list_name} list ({priority} priority)."


@tool
def add_calendar_event(title: str, date: str, time: str = "", duration_minutes: int = 60) -> str:
    """Create an event in my calendar.

    Args:
        title: name of the event.
        date: the day, as YYYY-MM-DD.
        time: start time as HH:MM (24h); leave empty for an all-day event.
        duration_minutes: how long the event lasts.
    """
    when = f"{date} {time}".strip() if time else f"{date} (all day)"
    return f"Created '{title}' on {when}, {duration_minutes} min."


@tool
def send_message(to: str, text: str, via: Literal["sms", "whatsapp", "email"] = "sms") -> str:
    """Send a message to a contact.

    Args:
        to: contact name, phone number or email address.
        text: the message body.
        via: which app to send it with.
    """
    return f"Sent via {via} to {to}: {text!r}"


TOOLS: dict[str, Tool] = {
    t.name: t
    for t in (
        convert_currency,
        get_stock_price,
        find_book,
        define_word,
        translate,
        count_words,
        transform_text,
        multiply,
        convert_units,
        get_recipe,
        flight_status,
        track_package,
        set_alarm,
        create_reminder,
        add_todo,
        add_calendar_event,
        send_message,
    )
}
