# ruff: noqa: E501 - tables of wording read better one entry per line
"""Tool families for the training dialogues: names, one-line docstrings, parameters, the
ways people ask, a made-up result and answers that quote it.

Slots in an ask are ``{slot}``; the ask decides which arguments the call carries (an
optional parameter is passed only when the ask states it). Results are deterministic
functions of the arguments and a seed. These are training domains only: the held-out set
(``benchmarks/heldout/``) uses its own tools and wording.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from training.smol_agent import vocab as V


@dataclass
class Param:
    slot: str
    type: str  # string, integer, number, boolean
    keys: list[str]
    pool: Callable[[random.Random], Any]
    descs: list[str] = field(default_factory=list)
    required: bool = True
    enum: list[str] | None = None
    default: Any = None
    # how a value is said in a request (e.g. an enum value "fahrenheit" as "F")
    say: Callable[[Any, random.Random], str] | None = None


@dataclass
class Family:
    gist: str  # "check the weather": what it does, for "no tool can ..." answers
    names: list[str]
    descs: list[str]
    params: list[Param]
    asks: list[str]
    result: Callable[[dict[str, Any], random.Random], dict[str, Any] | str]
    answers: list[str]
    thought: str = "I should use {name} for this."


def pick(seq):
    return lambda rng: rng.choice(seq)


def rint(a, b):
    return lambda rng: rng.randint(a, b)


def rfloat(a, b, nd=1):
    return lambda rng: round(rng.uniform(a, b), nd)


def email(rng: random.Random) -> str:
    return f"{rng.choice(V.FIRST).lower()}{rng.choice(['', '.', '_'])}{rng.choice(V.LAST).lower()}@{rng.choice(V.EMAIL_DOMAINS)}"


def person(rng: random.Random) -> str:
    return (
        rng.choice(V.FIRST) if rng.random() < 0.6 else f"{rng.choice(V.FIRST)} {rng.choice(V.LAST)}"
    )


def clock(rng: random.Random) -> str:
    return f"{rng.randint(5, 22):02d}:{rng.choice(['00', '15', '30', '45', '10', '20', '50'])}"


def phone(rng: random.Random) -> str:
    return f"+1 {rng.randint(200, 989)} {rng.randint(200, 989)} {rng.randint(1000, 9999)}"


def flight(rng: random.Random) -> str:
    return f"{rng.choice(V.AIRLINES)[0]}{rng.randint(10, 2999)}"


CONDITIONS = ["sunny", "cloudy", "light rain", "clear", "windy", "snowing", "foggy", "stormy"]


def weather(a, rng):
    t = rng.randint(-5, 34)
    unit = a.get("unit", "celsius")
    if unit == "fahrenheit":
        t = round(t * 9 / 5 + 32)
    return {
        "temperature": t,
        "unit": "F" if unit == "fahrenheit" else "C",
        "conditions": rng.choice(CONDITIONS),
        "humidity": rng.randint(20, 95),
    }


FAMILIES: list[Family] = [
    Family(
        "check the weather",
        [
            "get_weather",
            "weather",
            "current_weather",
            "get_current_weather",
            "weather_now",
            "lookup_weather",
        ],
        [
            "Get the current weather for a city.",
            "Current weather conditions in a location.",
            "Return today's weather.",
            "Look up the weather somewhere.",
            "Weather for a place.",
        ],
        [
            Param(
                "city",
                "string",
                ["city", "location", "place", "city_name"],
                pick(V.CITIES),
                ["the city name", "city, e.g. London", "where"],
            ),
            Param(
                "unit",
                "string",
                ["unit", "units", "scale"],
                pick(["celsius", "fahrenheit"]),
                ["temperature unit"],
                required=False,
                enum=["celsius", "fahrenheit"],
                default="celsius",
                say=lambda v, r: r.choice(
                    {
                        "celsius": ["celsius", "C", "degrees C"],
                        "fahrenheit": ["fahrenheit", "F", "degrees F"],
                    }[v]
                ),
            ),
        ],
        [
            "What's the weather in {city}?",
            "weather {city}",
            "Is it raining in {city} right now?",
            "how's the weather looking in {city} today",
            "Tell me the weather for {city} in {unit}.",
            "{city} weather please",
            "Do I need an umbrella in {city}?",
            "what is it like outside in {city}",
            "Could you check the current temperature in {city}?",
            "temperature in {city} in {unit}",
            "I'm heading to {city}, what's the weather there?",
            "how cold is it in {city}",
        ],
        weather,
        [
            "It's {temperature}°{unit} and {conditions} in {city} right now.",
            "In {city} it is currently {conditions}, {temperature}°{unit}, humidity {humidity}%.",
            "The weather in {city}: {conditions}, {temperature}°{unit}.",
        ],
        "The user wants the weather in {city}; I'll call {name}.",
    ),
    Family(
        "get a weather forecast",
        ["get_forecast", "weather_forecast", "forecast", "daily_forecast"],
        ["Weather forecast for the next days.", "Get a multi-day forecast for a city."],
        [
            Param("city", "string", ["city", "location"], pick(V.CITIES)),
            Param(
                "days",
                "integer",
                ["days", "num_days", "n_days"],
                rint(1, 10),
                ["how many days"],
                required=False,
                default=3,
            ),
        ],
        [
            "What's the forecast for {city} for the next {days} days?",
            "{days} day forecast {city}",
            "will it rain in {city} this week?",
            "Give me the {city} forecast for {days} days please",
            "forecast for {city}",
            "How will the weather be in {city} over the next {days} days?",
        ],
        lambda a, r: {
            "forecast": [r.choice(CONDITIONS) for _ in range(min(a.get("days", 3), 3))],
            "high": r.randint(5, 30),
        },
        [
            "The forecast for {city}: {forecast}, with highs around {high}°C.",
            "Over the coming days {city} will see {forecast}; highs near {high}°C.",
        ],
    ),
    Family(
        "send emails",
        ["send_email", "email", "send_mail", "compose_email", "mail_to"],
        ["Send an email.", "Send an email to someone.", "Compose and send an email message."],
        [
            Param(
                "to", "string", ["to", "recipient", "address", "email"], email, ["email address"]
            ),
            Param("subject", "string", ["subject", "title"], pick(V.SUBJECTS)),
            Param(
                "body",
                "string",
                ["body", "message", "text", "content"],
                pick(V.MESSAGES),
                required=False,
            ),
        ],
        [
            "Email {to} about {subject}",
            "send an email to {to} with the subject {subject}",
            'Please send {to} an email titled "{subject}" saying {body}',
            "mail {to}: subject {subject}, body: {body}",
            "Can you write to {to} about {subject}?",
            "shoot an email to {to} re {subject} and tell them {body}",
        ],
        lambda a, r: {"status": "sent", "id": f"msg_{r.randint(1000, 9999)}"},
        [
            "Done, your email to {to} about {subject} was sent.",
            "I sent the email to {to}.",
            "Email sent to {to} (id {id}).",
        ],
    ),
    Family(
        "send text messages",
        ["send_sms", "send_text", "text_message", "send_message", "message_contact"],
        ["Send a text message.", "Send an SMS to a contact.", "Text someone."],
        [
            Param("contact", "string", ["to", "contact", "name", "recipient"], person),
            Param("message", "string", ["message", "text", "body"], pick(V.MESSAGES)),
        ],
        [
            "Text {contact} that {message}",
            "send {contact} a message: {message}",
            'tell {contact} "{message}"',
            "Could you message {contact} saying {message}?",
            "sms {contact} {message}",
            "let {contact} know {message}",
        ],
        lambda a, r: {"delivered": True},
        [
            "Message sent to {contact}.",
            'I texted {contact}: "{message}".',
            "Done, {contact} got your message.",
        ],
    ),
    Family(
        "translate text",
        ["translate", "translate_text", "translator", "translate_phrase"],
        [
            "Translate text into another language.",
            "Translate a phrase.",
            "Translate text to a target language.",
        ],
        [
            Param("text", "string", ["text", "phrase", "sentence", "source_text"], pick(V.PHRASES)),
            Param(
                "target",
                "string",
                ["target_language", "to", "language", "target_lang", "lang"],
                pick(V.LANGUAGES),
            ),
        ],
        [
            'How do you say "{text}" in {target}?',
            "translate {text} to {target}",
            'What is "{text}" in {target}?',
            "Please translate '{text}' into {target}.",
            "{target} for {text}?",
            'can you put "{text}" into {target} for me',
            'I need "{text}" in {target}',
        ],
        lambda a, r: {"translation": f"[{a['target']}] {a['text']}"},
        ['In {target}, "{text}" is: {translation}', "Here it is in {target}: {translation}"],
    ),
    Family(
        "look up word definitions",
        [
            "define",
            "define_word",
            "dictionary",
            "lookup_definition",
            "get_definition",
            "word_meaning",
        ],
        [
            "Look up the definition of a word.",
            "Dictionary definition of a word.",
            "Define an English word.",
        ],
        [Param("word", "string", ["word", "term", "query"], pick(V.WORDS))],
        [
            "What does {word} mean?",
            "define {word}",
            "meaning of {word}",
            'What\'s the definition of "{word}"?',
            "I keep seeing the word {word}, what does it mean?",
            "look up {word} in the dictionary",
            "{word} definition pls",
        ],
        lambda a, r: {
            "definition": f"{a['word']}: (adj.) "
            + r.choice(
                [
                    "lasting a very short time",
                    "present everywhere",
                    "showing great care",
                    "full of energy",
                    "hard to understand",
                ]
            )
        },
        ["{definition}", "Here's the definition: {definition}", '"{word}" means: {definition}'],
    ),
    Family(
        "set timers",
        ["set_timer", "timer", "start_timer", "countdown"],
        ["Start a countdown timer.", "Set a timer for some minutes.", "Set a kitchen timer."],
        [
            Param(
                "minutes",
                "integer",
                ["minutes", "duration", "mins", "duration_minutes"],
                rint(1, 90),
            ),
            Param(
                "label",
                "string",
                ["label", "name"],
                pick(["pasta", "eggs", "tea", "laundry", "break", "pizza", "workout", "nap"]),
                required=False,
            ),
        ],
        [
            "Set a timer for {minutes} minutes",
            "timer {minutes} min",
            "start a {minutes} minute timer for the {label}",
            "can you time {minutes} minutes for my {label}?",
            "countdown {minutes} minutes please",
            "remind me in {minutes} minutes with a timer",
            "I need a {minutes}-minute timer",
        ],
        lambda a, r: {"timer_id": r.randint(1, 99), "ends_in_minutes": a["minutes"]},
        [
            "Your {minutes}-minute timer is running.",
            "Timer set for {minutes} minutes.",
            "OK, {minutes} minutes starting now.",
        ],
    ),
    Family(
        "set reminders",
        ["create_reminder", "remind_me", "add_reminder", "set_reminder", "reminder"],
        ["Create a reminder.", "Remind the user about something at a time.", "Add a reminder."],
        [
            Param("task", "string", ["task", "text", "what", "reminder", "note"], pick(V.TASKS)),
            Param(
                "when",
                "string",
                ["time", "when", "at", "datetime"],
                lambda r: r.choice(
                    [
                        clock(r),
                        "tomorrow",
                        "tonight",
                        f"{r.choice(V.WEEKDAYS)} {clock(r)}",
                        "next week",
                    ]
                ),
            ),
        ],
        [
            "Remind me to {task} at {when}",
            "reminder: {task} {when}",
            "{when} remind me to {task}",
            "Please set a reminder to {task} for {when}.",
            "don't let me forget to {task} {when}",
            "can you remind me {when} that I need to {task}",
        ],
        lambda a, r: {"status": "created", "reminder_id": r.randint(100, 999)},
        [
            "I'll remind you to {task} at {when}.",
            "Reminder set: {task} ({when}).",
            "Done, reminder created for {when}.",
        ],
    ),
    Family(
        "manage the calendar",
        ["add_event", "create_event", "schedule_event", "calendar_add", "book_meeting"],
        [
            "Add an event to the calendar.",
            "Schedule a calendar event.",
            "Create a new calendar entry.",
        ],
        [
            Param("title", "string", ["title", "event", "name", "summary"], pick(V.EVENTS)),
            Param(
                "date",
                "string",
                ["date", "day", "on"],
                lambda r: r.choice(V.DATES + V.WEEKDAYS + ["tomorrow"]),
            ),
            Param("time", "string", ["time", "start_time", "at"], clock, required=False),
        ],
        [
            "Put {title} on my calendar for {date} at {time}",
            "add {title} {date}",
            "schedule a {title} on {date} at {time}",
            'Can you add "{title}" to my calendar on {date}?',
            "new event: {title}, {date}, {time}",
            "I have a {title} on {date}, add it please",
        ],
        lambda a, r: {"event_id": f"evt{r.randint(100, 999)}", "status": "confirmed"},
        [
            "Added {title} to your calendar on {date}.",
            "Your {title} is on the calendar ({date}).",
            "Done: {title}, {date}.",
        ],
    ),
    Family(
        "read the news",
        ["get_news", "news_headlines", "latest_news", "search_news", "top_headlines"],
        [
            "Latest news headlines on a topic.",
            "Get news articles about a subject.",
            "Top headlines.",
        ],
        [
            Param("topic", "string", ["topic", "query", "category", "subject"], pick(V.TOPICS)),
            Param(
                "limit",
                "integer",
                ["limit", "count", "n", "max_results"],
                rint(1, 10),
                required=False,
            ),
        ],
        [
            "What's the latest news on {topic}?",
            "news about {topic}",
            "give me {limit} headlines about {topic}",
            "any {topic} news today?",
            "show me the top {limit} {topic} stories",
            "what's happening in {topic}",
        ],
        lambda a, r: {
            "headlines": [
                f"{a['topic'].title()} update {i + 1}" for i in range(min(a.get("limit", 2), 3))
            ]
        },
        ["Here are the latest {topic} headlines: {headlines}", "Top {topic} stories: {headlines}"],
    ),
    Family(
        "get stock prices",
        ["get_stock_price", "stock_quote", "stock_price", "quote", "ticker_price"],
        [
            "Get the latest stock price for a ticker symbol.",
            "Current share price.",
            "Stock quote for a symbol.",
        ],
        [
            Param(
                "symbol",
                "string",
                ["symbol", "ticker", "stock"],
                lambda r: r.choice(V.COMPANIES)[1],
                ["ticker symbol, e.g. IBM"],
            )
        ],
        [
            "What's {symbol} trading at?",
            "stock price {symbol}",
            "how is {symbol} doing today",
            "quote for {symbol} please",
            "Check the share price of {symbol}.",
            "{symbol}?",
        ],
        lambda a, r: {
            "price": round(r.uniform(10, 900), 2),
            "change": f"{r.choice(['+', '-'])}{round(r.uniform(0, 4), 2)}%",
        },
        ["{symbol} is at ${price} ({change} today).", "{symbol} trades at {price} USD, {change}."],
    ),
    Family(
        "get cryptocurrency prices",
        ["crypto_price", "get_crypto_price", "coin_price"],
        ["Price of a cryptocurrency in USD.", "Get the current price of a coin."],
        [Param("coin", "string", ["coin", "symbol", "currency", "name"], pick(V.CRYPTO))],
        [
            "how much is {coin} worth",
            "{coin} price",
            "What's the price of {coin} right now?",
            "check {coin} for me",
            "is {coin} up today?",
        ],
        lambda a, r: {"usd": round(r.uniform(0.1, 70000), 2)},
        ["{coin} is at ${usd}.", "One {coin} costs about ${usd} right now."],
    ),
    Family(
        "look up populations",
        ["get_population", "population", "country_population", "city_population"],
        ["Population of a city or country.", "How many people live somewhere."],
        [
            Param(
                "place",
                "string",
                ["place", "country", "name", "region"],
                lambda r: r.choice(V.COUNTRIES + V.CITIES),
            )
        ],
        [
            "How many people live in {place}?",
            "population of {place}",
            "what's the population of {place}",
            "{place} population?",
            "Roughly how big is {place} in terms of people?",
        ],
        lambda a, r: {"population": r.randint(100000, 90000000), "year": 2024},
        [
            "{place} has about {population} people ({year}).",
            "The population of {place} is {population}.",
        ],
    ),
    Family(
        "tell the time in other places",
        ["get_time", "world_clock", "current_time", "time_in", "local_time"],
        ["Current local time in a city.", "What time it is in a timezone or city."],
        [Param("city", "string", ["city", "timezone", "location", "tz"], pick(V.CITIES))],
        [
            "What time is it in {city}?",
            "time in {city}",
            "current time {city}",
            "is it night in {city} now?",
            "what's the local time over in {city}",
        ],
        lambda a, r: {"time": clock(r), "timezone": f"UTC{r.choice(['+', '-'])}{r.randint(0, 11)}"},
        ["It's {time} in {city} ({timezone}).", "In {city} it is {time}."],
    ),
    Family(
        "measure distances between places",
        ["get_distance", "distance_between", "distance", "travel_distance"],
        ["Distance between two cities.", "How far apart two places are."],
        [
            Param(
                "origin",
                "string",
                ["origin", "from_city", "start", "source", "city_a"],
                pick(V.CITIES),
            ),
            Param(
                "destination",
                "string",
                ["destination", "to_city", "end", "target", "city_b"],
                pick(V.CITIES),
            ),
        ],
        [
            "How far is {origin} from {destination}?",
            "distance {origin} to {destination}",
            "how many km between {origin} and {destination}",
            "From {origin} to {destination}, how far is it?",
        ],
        lambda a, r: {"km": r.randint(20, 12000)},
        [
            "{origin} and {destination} are about {km} km apart.",
            "It's roughly {km} km from {origin} to {destination}.",
        ],
    ),
    Family(
        "get directions",
        ["get_directions", "directions", "navigate", "route_planner", "plan_route"],
        ["Directions between two places.", "Get a route from A to B."],
        [
            Param(
                "origin",
                "string",
                ["origin", "start", "from"],
                lambda r: r.choice(
                    ["home", "work", "the airport", "Central Station", "Main Street"] + V.CITIES
                ),
            ),
            Param(
                "destination",
                "string",
                ["destination", "to", "end"],
                lambda r: r.choice(
                    ["the museum", "the stadium", "downtown", "the beach", "City Hall"] + V.CITIES
                ),
            ),
            Param(
                "mode",
                "string",
                ["mode", "travel_mode", "by"],
                pick(["driving", "walking", "transit", "cycling"]),
                required=False,
                enum=["driving", "walking", "transit", "cycling"],
                default="driving",
                say=lambda v, r: r.choice(
                    {
                        "driving": ["driving", "by car"],
                        "walking": ["walking", "on foot"],
                        "transit": ["transit", "by public transport"],
                        "cycling": ["cycling", "by bike"],
                    }[v]
                ),
            ),
        ],
        [
            "How do I get from {origin} to {destination}?",
            "directions from {origin} to {destination} {mode}",
            "route {origin} -> {destination}",
            "navigate to {destination} from {origin}, {mode} please",
            "what's the fastest way from {origin} to {destination} {mode}?",
        ],
        lambda a, r: {"minutes": r.randint(5, 240), "steps": 6},
        [
            "It takes about {minutes} minutes from {origin} to {destination}.",
            "Route found: {origin} to {destination}, about {minutes} min.",
        ],
    ),
    Family(
        "convert units",
        ["convert_units", "unit_converter", "convert_length", "convert_measurement"],
        ["Convert a value between units.", "Convert between measurement units."],
        [
            Param(
                "value",
                "number",
                ["value", "amount", "quantity", "number"],
                lambda r: r.choice([r.randint(1, 500), round(r.uniform(0.5, 100), 1)]),
            ),
            Param(
                "from_unit",
                "string",
                ["from_unit", "source_unit", "unit_from", "frm"],
                pick(
                    [
                        "km",
                        "miles",
                        "kg",
                        "lb",
                        "cm",
                        "inches",
                        "liters",
                        "gallons",
                        "meters",
                        "feet",
                    ]
                ),
            ),
            Param(
                "to_unit",
                "string",
                ["to_unit", "target_unit", "unit_to", "to"],
                pick(
                    [
                        "km",
                        "miles",
                        "kg",
                        "lb",
                        "cm",
                        "inches",
                        "liters",
                        "gallons",
                        "meters",
                        "feet",
                    ]
                ),
            ),
        ],
        [
            "Convert {value} {from_unit} to {to_unit}",
            "how many {to_unit} is {value} {from_unit}?",
            "{value} {from_unit} in {to_unit}",
            "what is {value} {from_unit} in {to_unit}",
            "I have {value} {from_unit}, how much is that in {to_unit}?",
        ],
        lambda a, r: {"result": round(a["value"] * r.uniform(0.3, 3), 2)},
        ["{value} {from_unit} is {result} {to_unit}.", "That's {result} {to_unit}."],
    ),
    Family(
        "convert temperatures",
        ["convert_temperature", "temp_convert", "celsius_to_fahrenheit"],
        ["Convert a temperature between scales.", "Convert temperatures."],
        [
            Param("degrees", "number", ["degrees", "temperature", "value", "temp"], rint(-30, 220)),
            Param(
                "to_scale",
                "string",
                ["to_scale", "to", "target", "unit"],
                pick(["celsius", "fahrenheit", "kelvin"]),
                enum=["celsius", "fahrenheit", "kelvin"],
            ),
        ],
        [
            "what is {degrees} degrees in {to_scale}",
            "convert {degrees} to {to_scale}",
            "{degrees} degrees -> {to_scale}",
            "How much is {degrees}° in {to_scale}?",
        ],
        lambda a, r: {"result": round(a["degrees"] * 1.8 + 32, 1)},
        ["{degrees} degrees is {result} in {to_scale}.", "That comes to {result} {to_scale}."],
    ),
    Family(
        "calculate tips",
        ["calculate_tip", "tip_calculator", "tip", "split_bill"],
        ["Work out the tip for a bill.", "Tip and total for a restaurant bill."],
        [
            Param(
                "bill",
                "number",
                ["bill", "amount", "total", "bill_amount"],
                lambda r: round(r.uniform(8, 300), 2),
            ),
            Param(
                "percent",
                "integer",
                ["percent", "tip_percent", "percentage", "rate"],
                pick([10, 12, 15, 18, 20, 25]),
                required=False,
                default=15,
            ),
        ],
        [
            "What's a {percent}% tip on {bill}?",
            "tip on a {bill} bill",
            "calculate {percent} percent tip for ${bill}",
            "how much should I tip on {bill} dollars at {percent}%",
            "bill was {bill}, {percent}% tip?",
        ],
        lambda a, r: {"tip": round(a["bill"] * a.get("percent", 15) / 100, 2)},
        ["The tip is ${tip}.", "A tip of {tip} would be right."],
    ),
    Family(
        "find restaurants",
        ["find_restaurants", "search_restaurants", "restaurant_search", "places_to_eat"],
        ["Find restaurants near a place.", "Search for restaurants by cuisine and city."],
        [
            Param(
                "cuisine",
                "string",
                ["cuisine", "food", "type", "kind"],
                pick(
                    [
                        "italian",
                        "thai",
                        "sushi",
                        "mexican",
                        "indian",
                        "vegan",
                        "chinese",
                        "french",
                        "korean",
                        "greek",
                        "pizza",
                        "burgers",
                    ]
                ),
            ),
            Param("city", "string", ["city", "location", "near", "area"], pick(V.CITIES)),
        ],
        [
            "find {cuisine} restaurants in {city}",
            "any good {cuisine} places in {city}?",
            "Where can I eat {cuisine} food in {city}?",
            "{cuisine} near {city}",
            "recommend a {cuisine} restaurant in {city}",
        ],
        lambda a, r: {
            "results": [
                f"{r.choice(V.LAST)}'s {a['cuisine'].title()}",
                f"Casa {r.choice(V.FIRST)}",
            ],
            "rating": round(r.uniform(3.5, 5), 1),
        },
        [
            "In {city} you could try {results} (rated {rating}).",
            "Good {cuisine} spots in {city}: {results}.",
        ],
    ),
    Family(
        "book hotels",
        ["book_hotel", "hotel_search", "find_hotel", "reserve_room"],
        ["Search and book a hotel.", "Find a hotel room in a city."],
        [
            Param("city", "string", ["city", "destination", "location"], pick(V.CITIES)),
            Param("nights", "integer", ["nights", "num_nights", "stay_length"], rint(1, 14)),
            Param(
                "guests",
                "integer",
                ["guests", "people", "adults"],
                rint(1, 6),
                required=False,
                default=1,
            ),
        ],
        [
            "book a hotel in {city} for {nights} nights",
            "I need a room in {city}, {nights} nights, {guests} guests",
            "find me a hotel in {city} for {nights} nights please",
            "hotel {city} {nights} nights",
        ],
        lambda a, r: {"hotel": f"Hotel {r.choice(V.LAST)}", "price_per_night": r.randint(60, 400)},
        [
            "I found {hotel} in {city} at ${price_per_night} a night.",
            "{hotel} has a room: {price_per_night} USD/night.",
        ],
    ),
    Family(
        "check flight status",
        ["flight_status", "get_flight_status", "track_flight", "check_flight"],
        ["Status of a flight by its number.", "Look up whether a flight is on time."],
        [Param("flight", "string", ["flight_number", "flight", "number", "code"], flight)],
        [
            "Is flight {flight} on time?",
            "status of {flight}",
            "where is {flight} now",
            "check flight {flight}",
            "has {flight} landed yet?",
            "{flight} delayed?",
        ],
        lambda a, r: {
            "status": r.choice(
                ["on time", "delayed 25 minutes", "landed", "boarding", "cancelled"]
            ),
            "gate": f"{r.choice('ABCDE')}{r.randint(1, 40)}",
        },
        ["Flight {flight} is {status}, gate {gate}.", "{flight}: {status} (gate {gate})."],
    ),
    Family(
        "search flights",
        ["search_flights", "find_flights", "flight_search", "cheap_flights"],
        ["Search flights between two cities on a date.", "Find flights."],
        [
            Param("origin", "string", ["origin", "from_city", "departure"], pick(V.CITIES)),
            Param("destination", "string", ["destination", "to_city", "arrival"], pick(V.CITIES)),
            Param("date", "string", ["date", "departure_date", "when"], pick(V.DATES)),
        ],
        [
            "flights from {origin} to {destination} on {date}",
            "find me a flight {origin} to {destination} {date}",
            "Are there any flights from {origin} to {destination} on {date}?",
            "cheapest way to fly {origin}-{destination} on {date}",
        ],
        lambda a, r: {"cheapest": r.randint(80, 1500), "airline": r.choice(V.AIRLINES)[1]},
        [
            "The cheapest flight from {origin} to {destination} on {date} is ${cheapest} with {airline}.",
            "{airline} flies {origin} to {destination} on {date} from ${cheapest}.",
        ],
    ),
    Family(
        "track packages",
        ["track_package", "package_status", "track_parcel", "shipment_status"],
        ["Track a package by tracking number.", "Where a parcel is."],
        [
            Param(
                "tracking",
                "string",
                ["tracking_number", "tracking_id", "number", "code"],
                pick(V.TRACKING),
            )
        ],
        [
            "Where is my package {tracking}?",
            "track {tracking}",
            "status of parcel {tracking}",
            "has {tracking} been delivered?",
            "my order's tracking number is {tracking}, where is it",
        ],
        lambda a, r: {
            "status": r.choice(
                ["in transit", "out for delivery", "delivered", "at the sorting center"]
            ),
            "eta": r.choice(V.WEEKDAYS),
        },
        ["Package {tracking} is {status}; expected {eta}.", "Your parcel is {status} (ETA {eta})."],
    ),
    Family(
        "search products",
        ["search_products", "product_search", "shop", "find_product", "price_check"],
        ["Search an online store for products.", "Find products and prices."],
        [
            Param("query", "string", ["query", "product", "item", "keywords"], pick(V.PRODUCTS)),
            Param(
                "max_price",
                "number",
                ["max_price", "budget", "price_limit"],
                rint(20, 500),
                required=False,
            ),
        ],
        [
            "find {query} under ${max_price}",
            "I want to buy {query}",
            "search for {query}",
            "how much is {query}?",
            "look for {query} below {max_price} dollars",
            "shop for {query}",
        ],
        lambda a, r: {
            "top_result": f"{a['query']} ({r.choice(['Acme', 'Nova', 'Zen', 'Orbit'])})",
            "price": round(r.uniform(10, 480), 2),
        },
        ["Top result: {top_result} for ${price}.", "I found {top_result} at {price} USD."],
    ),
    Family(
        "search the web",
        ["web_search", "search", "google", "search_web", "internet_search"],
        ["Search the web.", "Search the internet for a query.", "Web search."],
        [
            Param(
                "query",
                "string",
                ["query", "q", "search_query", "terms"],
                lambda r: r.choice(
                    [
                        "best hiking trails near " + r.choice(V.CITIES),
                        "how to fix a leaky faucet",
                        "opening hours of the Louvre",
                        "symptoms of the flu",
                        "how to make sourdough starter",
                        "who won the world cup 2022",
                        "cheap laptops for students",
                        "how to change a tire",
                        "best time to visit " + r.choice(V.COUNTRIES),
                    ]
                ),
            )
        ],
        [
            "search for {query}",
            "look up {query}",
            "google {query}",
            "can you find {query} online?",
            "I want to know {query}, search it",
            "{query}",
        ],
        lambda a, r: {"results": [f"{a['query']} - guide", f"{a['query']} explained"]},
        ["Here's what I found: {results}", "Top results: {results}"],
    ),
    Family(
        "play music",
        ["play_music", "play_song", "music_player", "play"],
        ["Play a song or artist.", "Play music."],
        [
            Param("song", "string", ["song", "track", "query", "title"], pick(V.SONGS)),
            Param("artist", "string", ["artist", "band", "by"], pick(V.ARTISTS), required=False),
        ],
        [
            "play {song}",
            "put on {song} by {artist}",
            "I want to hear {song}",
            "can you play {song} please",
            "play {song} from {artist}",
            "music: {song}",
        ],
        lambda a, r: {"now_playing": a["song"]},
        ["Now playing {song}.", "Playing {now_playing}."],
    ),
    Family(
        "look up movies",
        ["movie_info", "get_movie", "search_movie", "film_lookup"],
        ["Details about a movie.", "Look up a film by title."],
        [Param("title", "string", ["title", "movie", "name", "film"], pick(V.MOVIES))],
        [
            "tell me about the movie {title}",
            "who directed {title}?",
            "{title} movie info",
            "when did {title} come out",
            "Is {title} any good?",
            "look up the film {title}",
        ],
        lambda a, r: {
            "year": r.randint(1942, 2023),
            "director": person(r),
            "rating": round(r.uniform(5, 9.5), 1),
        },
        [
            "{title} ({year}) was directed by {director} and is rated {rating}.",
            "{title}: {year}, directed by {director}, rating {rating}/10.",
        ],
    ),
    Family(
        "find recipes",
        ["find_recipe", "search_recipes", "recipe", "get_recipe"],
        ["Find a recipe for a dish.", "Search recipes."],
        [
            Param("dish", "string", ["dish", "query", "name", "recipe"], pick(V.DISHES)),
            Param(
                "servings",
                "integer",
                ["servings", "people", "portions"],
                rint(1, 8),
                required=False,
            ),
        ],
        [
            "how do I make {dish}?",
            "recipe for {dish}",
            "I want to cook {dish} for {servings} people",
            "give me a {dish} recipe",
            "what do I need for {dish}",
            "{dish} recipe for {servings} please",
        ],
        lambda a, r: {
            "ingredients": r.sample(
                [
                    "flour",
                    "eggs",
                    "garlic",
                    "onion",
                    "butter",
                    "rice",
                    "tomatoes",
                    "basil",
                    "sugar",
                    "milk",
                ],
                4,
            ),
            "minutes": r.randint(10, 120),
        },
        [
            "For {dish} you need {ingredients}; it takes about {minutes} minutes.",
            "{dish}: {ingredients}, ready in {minutes} min.",
        ],
    ),
    Family(
        "count calories",
        ["get_calories", "nutrition_info", "calorie_lookup", "nutrition"],
        ["Calories and nutrition facts for a food.", "Nutrition information."],
        [Param("food", "string", ["food", "item", "query", "ingredient"], pick(V.FOODS))],
        [
            "how many calories in {food}?",
            "calories {food}",
            "nutrition facts for {food}",
            "is {food} healthy? check the calories",
            "what's the calorie count of {food}",
        ],
        lambda a, r: {"calories": r.randint(5, 600), "protein_g": r.randint(0, 40)},
        [
            "{food} has about {calories} calories and {protein_g} g of protein.",
            "About {calories} kcal.",
        ],
    ),
    Family(
        "control smart lights",
        ["set_lights", "toggle_lights", "lights", "smart_light", "control_lights"],
        ["Turn lights on or off in a room.", "Control the smart lights."],
        [
            Param("room", "string", ["room", "location", "area"], pick(V.ROOMS)),
            Param(
                "on",
                "boolean",
                ["on", "state", "power", "turn_on"],
                pick([True, False]),
                say=lambda v, r: "on" if v else "off",
            ),
        ],
        [
            "turn {on} the {room} lights",
            "switch the lights {on} in the {room}",
            "{room} lights {on}",
            "can you turn the lights in the {room} {on}?",
            "lights {on} in the {room} please",
        ],
        lambda a, r: {"room": a["room"], "ok": True},
        ["The {room} lights are now {on}.", "Done, lights {on} in the {room}."],
    ),
    Family(
        "set the thermostat",
        ["set_thermostat", "thermostat", "set_temperature", "climate_control"],
        ["Set the thermostat temperature.", "Change the heating temperature."],
        [
            Param(
                "temperature", "number", ["temperature", "degrees", "target", "temp"], rint(15, 28)
            ),
            Param("room", "string", ["room", "zone"], pick(V.ROOMS), required=False),
        ],
        [
            "set the thermostat to {temperature}",
            "make it {temperature} degrees in the {room}",
            "heat the {room} to {temperature}",
            "thermostat {temperature}",
            "I'm cold, put the heating at {temperature} degrees",
        ],
        lambda a, r: {"set_to": a["temperature"]},
        ["The thermostat is set to {set_to} degrees.", "OK, {set_to}° it is."],
    ),
    Family(
        "set the volume",
        ["set_volume", "volume", "change_volume"],
        ["Set the speaker volume (0-100).", "Change the volume."],
        [Param("level", "integer", ["level", "volume", "percent", "value"], rint(0, 100))],
        [
            "volume {level}",
            "set the volume to {level}",
            "turn it to {level} percent",
            "put the volume at {level} please",
        ],
        lambda a, r: {"volume": a["level"]},
        ["Volume set to {volume}.", "The volume is now {volume}."],
    ),
    Family(
        "manage a to-do list",
        ["add_todo", "add_task", "todo_add", "create_task", "new_todo"],
        ["Add a task to the to-do list.", "Add an item to my todo list."],
        [
            Param("task", "string", ["task", "item", "title", "text"], pick(V.TASKS)),
            Param(
                "priority",
                "string",
                ["priority", "level"],
                pick(["low", "medium", "high"]),
                required=False,
                enum=["low", "medium", "high"],
                default="medium",
            ),
        ],
        [
            "add {task} to my todo list",
            "todo: {task}",
            "put {task} on my list with {priority} priority",
            "I need to {task}, add it to my tasks",
            "new task {task}, priority {priority}",
            "remember to {task} - add it",
        ],
        lambda a, r: {"id": r.randint(1, 200), "open_tasks": r.randint(1, 12)},
        [
            'Added "{task}" to your list. You now have {open_tasks} open tasks.',
            "Task added: {task}.",
        ],
    ),
    Family(
        "take notes",
        ["save_note", "create_note", "note", "write_note", "jot_down"],
        ["Save a note.", "Write a quick note."],
        [
            Param(
                "text",
                "string",
                ["text", "content", "note", "body"],
                lambda r: r.choice(
                    V.MESSAGES
                    + V.TASKS
                    + [
                        "the wifi password is on the fridge",
                        "parking spot B12",
                        "call mom on sunday",
                    ]
                ),
            )
        ],
        [
            "note: {text}",
            "write down {text}",
            "save a note that says {text}",
            "jot this down: {text}",
            "make a note: {text}",
        ],
        lambda a, r: {"saved": True, "note_id": r.randint(1, 500)},
        ["Saved your note.", 'Noted: "{text}".'],
    ),
    Family(
        "look up contacts",
        ["find_contact", "get_contact", "lookup_contact", "contact_info", "phone_number"],
        ["Look up a contact's phone and email.", "Find someone in the address book."],
        [Param("name", "string", ["name", "contact", "person", "who"], person)],
        [
            "what's {name}'s number?",
            "find {name} in my contacts",
            "contact info for {name}",
            "how do I reach {name}",
            "look up {name}",
        ],
        lambda a, r: {"phone": phone(r), "email": email(r)},
        ["{name}: {phone}, {email}.", "You can reach {name} at {phone}."],
    ),
    Family(
        "make phone calls",
        ["call", "make_call", "phone_call", "dial", "call_contact"],
        ["Call a contact or number.", "Start a phone call."],
        [
            Param(
                "who",
                "string",
                ["contact", "name", "number", "who", "callee"],
                lambda r: person(r) if r.random() < 0.7 else phone(r),
            )
        ],
        [
            "call {who}",
            "phone {who}",
            "ring {who} please",
            "can you dial {who}",
            "get {who} on the phone",
        ],
        lambda a, r: {"status": "calling"},
        ["Calling {who}...", "Dialing {who} now."],
    ),
    Family(
        "look up sports scores",
        ["get_score", "sports_scores", "match_result", "latest_score", "game_score"],
        ["Latest score for a team.", "Get the result of a team's last game."],
        [Param("team", "string", ["team", "club", "team_name"], pick(V.TEAMS))],
        [
            "did {team} win?",
            "{team} score",
            "how did {team} do last night",
            "what was the {team} game result",
            "latest score for {team}",
        ],
        lambda a, r: {
            "score": f"{r.randint(0, 5)}-{r.randint(0, 5)}",
            "opponent": r.choice(V.TEAMS),
        },
        [
            "{team} played {opponent}: {score}.",
            "The last {team} game ended {score} against {opponent}.",
        ],
    ),
    Family(
        "check air quality",
        ["air_quality", "get_aqi", "pollution_level"],
        ["Air quality index for a city.", "Current pollution level."],
        [Param("city", "string", ["city", "location"], pick(V.CITIES))],
        [
            "how's the air in {city}",
            "air quality {city}",
            "is the air clean in {city} today?",
            "AQI for {city}",
        ],
        lambda a, r: {
            "aqi": r.randint(5, 250),
            "level": r.choice(["good", "moderate", "unhealthy"]),
        },
        ["The air quality in {city} is {level} (AQI {aqi}).", "AQI {aqi} in {city}: {level}."],
    ),
    Family(
        "look up sunrise and sunset",
        ["sun_times", "get_sunrise", "sunrise_sunset"],
        ["Sunrise and sunset times for a city.", "When the sun rises and sets."],
        [
            Param("city", "string", ["city", "location", "place"], pick(V.CITIES)),
            Param("date", "string", ["date", "day"], pick(V.DATES), required=False),
        ],
        [
            "when is sunset in {city}?",
            "sunrise {city} {date}",
            "what time does the sun come up in {city} on {date}",
        ],
        lambda a, r: {
            "sunrise": f"0{r.randint(5, 7)}:{r.randint(10, 59)}",
            "sunset": f"{r.randint(16, 21)}:{r.randint(10, 59)}",
        },
        [
            "In {city}, sunrise is at {sunrise} and sunset at {sunset}.",
            "Sun up {sunrise}, down {sunset}.",
        ],
    ),
    Family(
        "list public holidays",
        ["public_holidays", "get_holidays", "holidays"],
        ["Public holidays of a country in a year.", "List the holidays."],
        [
            Param("country", "string", ["country", "country_name", "region"], pick(V.COUNTRIES)),
            Param("year", "integer", ["year"], rint(2020, 2030), required=False),
        ],
        [
            "what are the public holidays in {country} in {year}?",
            "holidays {country} {year}",
            "when are the bank holidays in {country}",
            "list {country}'s holidays for {year}",
        ],
        lambda a, r: {"holidays": [f"{m} {r.randint(1, 28)}" for m in r.sample(V.MONTHS, 3)]},
        ["Holidays in {country}: {holidays}.", "{country} has these public holidays: {holidays}."],
    ),
    Family(
        "read horoscopes",
        ["horoscope", "daily_horoscope", "get_horoscope"],
        ["Today's horoscope for a zodiac sign.", "Daily horoscope."],
        [Param("sign", "string", ["sign", "zodiac", "zodiac_sign"], pick(V.SIGNS), enum=V.SIGNS)],
        [
            "my horoscope, I'm a {sign}",
            "{sign} horoscope today",
            "what do the stars say for {sign}?",
            "read me today's horoscope for {sign}",
        ],
        lambda a, r: {
            "reading": r.choice(
                ["a good day for new plans", "be patient with money", "an old friend gets in touch"]
            )
        },
        ["{sign}: {reading}.", "For {sign} today: {reading}."],
    ),
    Family(
        "log workouts",
        ["log_workout", "track_exercise", "add_workout", "record_activity"],
        ["Log a workout.", "Record an exercise session."],
        [
            Param(
                "activity", "string", ["activity", "exercise", "type", "sport"], pick(V.ACTIVITIES)
            ),
            Param("minutes", "integer", ["minutes", "duration", "mins"], rint(5, 180)),
        ],
        [
            "log {minutes} minutes of {activity}",
            "I did {activity} for {minutes} minutes",
            "record a {minutes} min {activity} session",
            "add {activity}, {minutes} minutes, to my log",
            "just finished {minutes} minutes {activity}",
        ],
        lambda a, r: {
            "calories_burned": r.randint(30, 900),
            "week_total_minutes": r.randint(60, 600),
        },
        [
            "Logged {minutes} minutes of {activity} (about {calories_burned} kcal).",
            "Workout saved; {week_total_minutes} minutes this week.",
        ],
    ),
    Family(
        "log expenses",
        ["log_expense", "add_expense", "track_spending", "record_expense"],
        ["Record an expense.", "Add a purchase to the budget."],
        [
            Param(
                "amount",
                "number",
                ["amount", "cost", "price", "value"],
                lambda r: r.choice([r.randint(1, 300), round(r.uniform(1, 300), 2)]),
            ),
            Param(
                "category",
                "string",
                ["category", "type", "kind"],
                pick(V.CATEGORIES),
                enum=V.CATEGORIES,
            ),
        ],
        [
            "I spent {amount} on {category}",
            "log {amount} dollars for {category}",
            "add an expense: {amount}, {category}",
            "record ${amount} {category}",
            "expense {amount} {category}",
        ],
        lambda a, r: {"month_total": round(r.uniform(50, 3000), 2)},
        [
            "Logged {amount} for {category}. This month: {month_total}.",
            "Expense saved; {category} total this month is {month_total}.",
        ],
    ),
    Family(
        "calculate loan payments",
        ["loan_payment", "mortgage_calculator", "monthly_payment", "calculate_loan"],
        ["Monthly payment for a loan.", "Compute a loan's monthly installment."],
        [
            Param(
                "principal",
                "number",
                ["principal", "amount", "loan_amount"],
                lambda r: r.choice([5000, 12000, 25000, 150000, 300000, 450000]),
            ),
            Param("rate", "number", ["rate", "interest_rate", "annual_rate"], rfloat(1, 9)),
            Param(
                "years", "integer", ["years", "term", "term_years"], pick([3, 5, 10, 15, 20, 30])
            ),
        ],
        [
            "monthly payment on {principal} at {rate}% for {years} years",
            "what would I pay per month for a {principal} loan, {rate} percent, {years} years?",
            "loan of {principal} over {years} years at {rate}%",
            "mortgage {principal} {rate}% {years} years",
        ],
        lambda a, r: {"monthly": round(a["principal"] / (a["years"] * 12) * 1.2, 2)},
        ["The monthly payment would be about {monthly}.", "You'd pay {monthly} a month."],
    ),
    Family(
        "check the bank balance",
        ["get_balance", "account_balance", "check_balance", "bank_balance"],
        ["Balance of a bank account.", "Check how much money is in an account."],
        [
            Param(
                "account",
                "string",
                ["account", "account_type", "which"],
                pick(["checking", "savings", "credit"]),
                enum=["checking", "savings", "credit"],
            )
        ],
        [
            "what's my {account} balance",
            "how much is in my {account} account?",
            "balance {account}",
            "check my {account}",
        ],
        lambda a, r: {"balance": round(r.uniform(10, 20000), 2), "currency": "USD"},
        [
            "Your {account} balance is {balance} {currency}.",
            "You have {balance} {currency} in {account}.",
        ],
    ),
    Family(
        "search jobs",
        ["search_jobs", "find_jobs", "job_search"],
        ["Search job listings.", "Find open positions."],
        [
            Param("title", "string", ["title", "role", "query", "position"], pick(V.JOBS)),
            Param("city", "string", ["city", "location", "where"], pick(V.CITIES), required=False),
        ],
        [
            "find {title} jobs in {city}",
            "any openings for a {title}?",
            "{title} positions {city}",
            "I'm looking for work as a {title} in {city}",
        ],
        lambda a, r: {
            "count": r.randint(0, 80),
            "top": f"{a['title'].title()} at {r.choice(V.LAST)} Inc",
        },
        [
            "There are {count} {title} openings; the top one is {top}.",
            "I found {count} jobs, e.g. {top}.",
        ],
    ),
    Family(
        "order rides",
        ["book_ride", "order_taxi", "call_cab", "request_ride"],
        ["Order a taxi to an address.", "Book a ride."],
        [
            Param(
                "destination",
                "string",
                ["destination", "to", "address", "dropoff"],
                lambda r: r.choice(
                    [
                        "the airport",
                        "Central Station",
                        "221 Baker Street",
                        "the office",
                        "home",
                        "the hospital",
                        "Union Square",
                    ]
                ),
            ),
            Param(
                "seats", "integer", ["seats", "passengers", "riders"], rint(1, 6), required=False
            ),
        ],
        [
            "get me a taxi to {destination}",
            "book a ride to {destination} for {seats}",
            "I need a cab to {destination}",
            "order an uber to {destination}",
            "ride to {destination}, {seats} people",
        ],
        lambda a, r: {"eta_minutes": r.randint(2, 15), "driver": r.choice(V.FIRST)},
        [
            "{driver} will pick you up in {eta_minutes} minutes.",
            "Your ride to {destination} arrives in {eta_minutes} min.",
        ],
    ),
    Family(
        "order food",
        ["order_pizza", "order_food", "food_delivery"],
        ["Order food for delivery.", "Place a delivery order."],
        [
            Param(
                "item",
                "string",
                ["item", "order", "dish", "food"],
                lambda r: r.choice(
                    [
                        "margherita pizza",
                        "pepperoni pizza",
                        "pad thai",
                        "sushi platter",
                        "burger and fries",
                        "chicken wings",
                        "a burrito",
                    ]
                ),
            ),
            Param(
                "quantity",
                "integer",
                ["quantity", "qty", "count", "amount"],
                rint(1, 5),
                required=False,
            ),
        ],
        [
            "order {quantity} {item}",
            "I want {item} delivered",
            "get me {item}",
            "can you order {item} for dinner",
            "place an order for {quantity} {item}",
        ],
        lambda a, r: {"order_id": r.randint(1000, 9999), "eta_minutes": r.randint(15, 60)},
        [
            "Your {item} is ordered; it arrives in about {eta_minutes} minutes.",
            "Order {order_id} placed.",
        ],
    ),
    Family(
        "water plants and feed pets",
        ["feed_pet", "pet_feeder", "dispense_food"],
        ["Dispense food from the pet feeder.", "Feed the pet."],
        [
            Param("pet", "string", ["pet", "name", "animal"], pick(V.PETS)),
            Param(
                "grams", "integer", ["grams", "amount", "portion"], rint(10, 200), required=False
            ),
        ],
        [
            "feed {pet}",
            "give {pet} {grams} grams of food",
            "can you feed {pet} please",
            "{pet} is hungry, {grams}g",
        ],
        lambda a, r: {"dispensed": a.get("grams", 50)},
        ["{pet} got {dispensed} g of food.", "Fed {pet}."],
    ),
    Family(
        "summarize web pages",
        ["summarize_url", "summarize_page", "read_webpage", "fetch_page"],
        ["Summarize a web page.", "Fetch a URL and summarize it."],
        [Param("url", "string", ["url", "link", "page", "address"], pick(V.URLS))],
        [
            "summarize {url}",
            "what does {url} say?",
            "tl;dr of {url}",
            "can you read {url} for me",
            "give me the gist of {url}",
        ],
        lambda a, r: {
            "summary": "A short article about "
            + r.choice(["Python's json module", "the Moon", "a new product", "travel tips"])
        },
        ["{summary}.", "Summary: {summary}."],
    ),
    Family(
        "shorten links",
        ["shorten_url", "url_shortener", "short_link"],
        ["Shorten a long URL.", "Make a short link."],
        [Param("url", "string", ["url", "link", "long_url"], pick(V.URLS))],
        ["shorten {url}", "make a short link for {url}", "short url for {url} please"],
        lambda a, r: {"short": f"https://sho.rt/{r.randint(10000, 99999)}"},
        ["Here's your short link: {short}", "{short}"],
    ),
    Family(
        "generate passwords",
        ["generate_password", "password_generator", "make_password", "random_password"],
        ["Generate a random password.", "Create a strong password."],
        [
            Param("length", "integer", ["length", "size", "chars", "n"], rint(8, 40)),
            Param(
                "symbols",
                "boolean",
                ["symbols", "include_symbols", "special_chars"],
                pick([True, False]),
                required=False,
                default=True,
                say=lambda v, r: "with symbols" if v else "without symbols",
            ),
        ],
        [
            "generate a {length} character password",
            "make me a password, {length} chars {symbols}",
            "I need a new password of length {length}",
            "random password {length} {symbols}",
        ],
        lambda a, r: {
            "password": "".join(
                r.choice("abcdefghkmnpqrstuvwxyzABCDEFGH23456789")
                for _ in range(min(a["length"], 16))
            )
        },
        ["Here's one: {password}", "Your new password: {password}"],
    ),
    Family(
        "roll dice and pick random numbers",
        ["roll_dice", "dice", "random_number", "roll"],
        ["Roll dice.", "Roll some dice and return the results."],
        [
            Param("count", "integer", ["count", "dice", "n", "number"], rint(1, 6)),
            Param(
                "sides",
                "integer",
                ["sides", "faces"],
                pick([4, 6, 8, 10, 12, 20]),
                required=False,
                default=6,
            ),
        ],
        [
            "roll {count} dice",
            "roll {count} d{sides}",
            "throw {count} dice with {sides} sides",
            "can you roll {count} {sides}-sided dice",
        ],
        lambda a, r: {"rolls": [r.randint(1, a.get("sides", 6)) for _ in range(a["count"])]},
        ["You rolled {rolls}.", "Results: {rolls}."],
    ),
    Family(
        "work with files",
        ["search_files", "find_file", "locate_file"],
        ["Find files by name.", "Search my documents."],
        [Param("name", "string", ["name", "filename", "query", "pattern"], pick(V.FILES))],
        [
            "where is {name}",
            "find the file {name}",
            "search my files for {name}",
            "locate {name} on my drive",
        ],
        lambda a, r: {
            "path": f"/home/user/{r.choice(['Documents', 'Downloads', 'Desktop'])}/{a['name']}"
        },
        ["It's at {path}.", "Found it: {path}"],
    ),
    Family(
        "analyse text",
        ["analyze_sentiment", "sentiment", "text_sentiment"],
        ["Sentiment of a piece of text.", "Is a text positive or negative?"],
        [
            Param(
                "text",
                "string",
                ["text", "input", "sentence", "review"],
                lambda r: r.choice(
                    [
                        "I loved this place, the staff were great",
                        "the food was cold and the service slow",
                        "it was okay I guess",
                        "worst purchase ever",
                        "absolutely fantastic experience",
                    ]
                ),
            )
        ],
        [
            'is this positive or negative: "{text}"',
            "sentiment of '{text}'",
            "how does this review sound? {text}",
            "analyze the tone: {text}",
        ],
        lambda a, r: {
            "sentiment": r.choice(["positive", "negative", "neutral"]),
            "score": round(r.uniform(-1, 1), 2),
        },
        ["That text reads as {sentiment} ({score}).", "Sentiment: {sentiment}."],
    ),
    Family(
        "look things up in an encyclopedia",
        ["wiki_summary", "wikipedia", "encyclopedia", "lookup_article"],
        ["Short encyclopedia summary of a topic.", "Wikipedia summary."],
        [
            Param(
                "topic",
                "string",
                ["topic", "query", "title", "subject"],
                lambda r: r.choice(
                    [
                        "Marie Curie",
                        "the Eiffel Tower",
                        "black holes",
                        "the Roman Empire",
                        "jazz",
                        "the Great Wall",
                        "volcanoes",
                        "Ada Lovelace",
                        "the Amazon river",
                        "chess",
                    ]
                ),
            )
        ],
        [
            "tell me about {topic}",
            "who was {topic}",
            "wikipedia {topic}",
            "what do you know about {topic}? look it up",
            "give me a quick summary of {topic}",
        ],
        lambda a, r: {
            "summary": f"{a['topic'].capitalize()} is a well-known subject with a long history."
        },
        ["{summary}", "From the encyclopedia: {summary}"],
    ),
]


CURRENCIES = {
    "USD": ["dollars", "US dollars", "usd", "bucks"],
    "EUR": ["euros", "eur", "euro"],
    "GBP": ["pounds", "british pounds", "gbp", "quid"],
    "JPY": ["yen", "japanese yen"],
    "CHF": ["swiss francs", "francs"],
    "CAD": ["canadian dollars", "cad"],
    "INR": ["rupees", "indian rupees"],
    "CNY": ["yuan", "renminbi"],
    "KRW": ["won"],
    "SEK": ["swedish krona", "kronor"],
    "BRL": ["reais", "brazilian real"],
    "AUD": ["australian dollars", "aussie dollars"],
    "MXN": ["pesos", "mexican pesos"],
}


def _cur_say(v, r):
    return v if r.random() < 0.35 else r.choice(CURRENCIES[v])


def _clock_say(v, r):
    h, m = map(int, v.split(":"))
    roll = r.random()
    if roll < 0.4:
        return v
    suffix = (
        r.choice(["am", " am", "AM", " a.m."]) if h < 12 else r.choice(["pm", " pm", "PM", " p.m."])
    )
    h12 = h % 12 or 12
    return f"{h12}{suffix}" if m == 0 and roll < 0.7 else f"{h12}:{m:02d}{suffix}"


BOOKS = [
    ("The Hobbit", "J.R.R. Tolkien"),
    ("Emma", "Jane Austen"),
    ("Beloved", "Toni Morrison"),
    ("1984", "George Orwell"),
    ("Ulysses", "James Joyce"),
    ("Middlemarch", "George Eliot"),
    ("The Road", "Cormac McCarthy"),
    ("Frankenstein", "Mary Shelley"),
    ("Norwegian Wood", "Haruki Murakami"),
    ("Rebecca", "Daphne du Maurier"),
    ("The Trial", "Franz Kafka"),
    ("Moby-Dick", "Herman Melville"),
    ("Wolf Hall", "Hilary Mantel"),
    ("The Color Purple", "Alice Walker"),
]

FAMILIES += [
    Family(
        "convert currencies",
        ["exchange", "currency_exchange", "fx_convert", "money_convert", "exchange_rate"],
        ["Convert money between currencies.", "Exchange an amount from one currency to another."],
        [
            Param(
                "amount",
                "number",
                ["amount", "value", "sum", "money"],
                lambda r: r.choice([r.randint(1, 5000), round(r.uniform(1, 900), 2)]),
            ),
            Param(
                "src",
                "string",
                ["from", "base", "source", "from_code", "have"],
                pick(list(CURRENCIES)),
                ["currency code, e.g. USD", "ISO code of the source currency"],
                say=_cur_say,
            ),
            Param(
                "dst",
                "string",
                ["to", "target", "quote", "to_code", "want"],
                pick(list(CURRENCIES)),
                ["currency code, e.g. EUR", "ISO code to convert into"],
                say=_cur_say,
            ),
        ],
        [
            "convert {amount} {src} to {dst}",
            "how much is {amount} {src} in {dst}?",
            "{amount} {src} to {dst}",
            "What would {amount} {src} be in {dst}",
            "I have {amount} {src}, how many {dst} is that?",
            "exchange {amount} {src} into {dst} please",
            "{src} to {dst}: {amount}",
        ],
        lambda a, r: {
            "converted": round(a["amount"] * r.uniform(0.01, 3), 2),
            "rate": round(r.uniform(0.01, 3), 4),
        },
        ["{amount} {src} is {converted} {dst} (rate {rate}).", "That's {converted} {dst}."],
    ),
    Family(
        "set alarms",
        ["alarm", "create_alarm", "wake_me", "schedule_alarm", "new_alarm"],
        ["Set an alarm clock.", "Create an alarm at a time of day."],
        [
            Param(
                "at",
                "string",
                ["time", "at", "when", "alarm_time"],
                clock,
                ["24h time HH:MM", "time like 07:30"],
                say=_clock_say,
            ),
            Param(
                "repeat",
                "string",
                ["repeat", "recurrence", "days"],
                pick(["once", "daily", "weekdays", "weekends"]),
                required=False,
                enum=["once", "daily", "weekdays", "weekends"],
                default="once",
                say=lambda v, r: r.choice(
                    {
                        "once": ["once", "just once"],
                        "daily": ["daily", "every day"],
                        "weekdays": ["weekdays", "on weekdays"],
                        "weekends": ["weekends", "on weekends"],
                    }[v]
                ),
            ),
            Param(
                "label",
                "string",
                ["label", "name", "note"],
                pick(["gym", "work", "meds", "flight", "meeting", "school run"]),
                required=False,
            ),
        ],
        [
            "wake me up at {at}",
            "set an alarm for {at}",
            "alarm {at} {repeat}",
            "alarm at {at} called {label}",
            "I need to be up at {at} {repeat}",
            "please set my alarm to {at}",
            "{at} alarm for {label}",
        ],
        lambda a, r: {"alarm_id": r.randint(1, 50), "set_for": a["at"]},
        ["Alarm set for {set_for}.", "You'll be woken at {set_for}."],
    ),
    Family(
        "search books",
        ["search_books", "book_lookup", "library_search", "lookup_book"],
        ["Search a library catalogue by title or author.", "Look up books."],
        [
            Param(
                "title", "string", ["title", "query", "book", "name"], lambda r: r.choice(BOOKS)[0]
            ),
            Param(
                "author",
                "string",
                ["author", "writer", "by"],
                lambda r: r.choice(BOOKS)[1],
                required=False,
            ),
        ],
        [
            "do you have {title}?",
            "look up the book {title}",
            "find {title} by {author}",
            "is {title} available at the library",
            "search for the novel {title}",
            "I'm after {title}",
        ],
        lambda a, r: {"found": True, "year": r.randint(1800, 2015), "copies": r.randint(0, 4)},
        [
            "{title} ({year}): {copies} copies available.",
            "Found {title}; {copies} copies on the shelf.",
        ],
    ),
    Family(
        "analyse and change text",
        ["text_stats", "letter_count", "analyze_text", "text_length"],
        ["Count the words and letters in a text.", "Statistics about a piece of text."],
        [Param("text", "string", ["text", "input", "string", "content"], pick(V.TEXTS))],
        [
            'how many words in "{text}"?',
            "count the letters in '{text}'",
            "stats for: {text}",
            "how long is this: {text}",
        ],
        lambda a, r: {
            "words": len(a["text"].split()),
            "letters": sum(c.isalpha() for c in a["text"]),
        },
        ["It has {words} words and {letters} letters.", "{words} words, {letters} letters."],
    ),
    Family(
        "change the case of text",
        ["to_upper", "uppercase", "shout", "text_case", "change_case"],
        ["Change the case of a text.", "Convert text to upper or lower case."],
        [
            Param("text", "string", ["text", "input", "s"], pick(V.TEXTS)),
            Param(
                "mode",
                "string",
                ["mode", "case", "style"],
                pick(["upper", "lower", "title"]),
                enum=["upper", "lower", "title"],
                say=lambda v, r: r.choice(
                    {
                        "upper": ["upper", "uppercase", "capitals", "all caps"],
                        "lower": ["lower", "lowercase", "small letters"],
                        "title": ["title", "title case"],
                    }[v]
                ),
            ),
        ],
        [
            'make "{text}" {mode}',
            "convert '{text}' to {mode}",
            "{mode}: {text}",
            "put this in {mode} please: {text}",
        ],
        lambda a, r: {
            "result": {
                "upper": a["text"].upper(),
                "lower": a["text"].lower(),
                "title": a["text"].title(),
            }[a["mode"]]
        },
        ["{result}", "Here you go: {result}"],
    ),
]


# Optional values said in passing (from step 600): a clause added to an ask that lacks the
# slot, so a request states an optional argument as often as not, in everyday phrasing
# (the model dropped stated optional values: docs/bundled-model-v2.md). gist -> slot -> clauses
OPTIONAL_CLAUSES: dict[str, dict[str, list[str]]] = {
    "check the weather": {"unit": [" in {unit}", ", in {unit} please", " ({unit})"]},
    "get a weather forecast": {
        "days": [" for the next {days} days", ", {days} days ahead", " over {days} days"]
    },
    "send emails": {"body": [" saying {body}", " and tell them {body}", ", message: {body}"]},
    "set timers": {"label": [" for the {label}", ", label it {label}", " called {label}"]},
    "manage the calendar": {"time": [" at {time}", ", starting {time}", " from {time}"]},
    "read the news": {"limit": [", just {limit} stories", ", top {limit}", " ({limit} articles)"]},
    "get directions": {"mode": [" {mode}", ", going {mode}"]},
    "calculate tips": {
        "percent": [" at {percent}%", " with a {percent} percent tip", ", {percent}%"]
    },
    "book hotels": {"guests": [" for {guests} guests", " for {guests} people", ", {guests} of us"]},
    "search products": {
        "max_price": [
            " under ${max_price}",
            ", max {max_price} dollars",
            " for less than ${max_price}",
        ]
    },
    "play music": {"artist": [" by {artist}", ", the {artist} one", " from {artist}"]},
    "find recipes": {
        "servings": [" for {servings} people", " for {servings}", ", serves {servings}"]
    },
    "set the thermostat": {"room": [" in the {room}", " for the {room}"]},
    "manage a to-do list": {
        "priority": [" with {priority} priority", ", {priority} priority", " (priority {priority})"]
    },
    "look up sunrise and sunset": {"date": [" on {date}", " for {date}"]},
    "list public holidays": {"year": [" in {year}", " for {year}"]},
    "search jobs": {"city": [" in {city}", " around {city}", ", based in {city}"]},
    "order rides": {"seats": [" for {seats} people", ", {seats} seats", " for {seats} of us"]},
    "water plants and feed pets": {"grams": [", {grams} grams", " with {grams} g of food"]},
    "generate passwords": {"symbols": [" {symbols}"]},
    "roll dice and pick random numbers": {"sides": [" with {sides} sides", ", {sides}-sided"]},
    "set alarms": {
        "repeat": [" {repeat}", ", repeat {repeat}"],
        "label": [" labeled {label}", " called {label}", ", name it {label}"],
    },
    "search books": {"author": [" by {author}", ", the one by {author}", ", author {author}"]},
}


def with_clause(fam: Family, template: str, rng: random.Random, rate: float = 0.35) -> str:
    """The ask with one optional value said in passing, at ``rate`` when it lacks one."""
    clauses = OPTIONAL_CLAUSES.get(fam.gist, {})
    missing = [s for s in clauses if "{" + s + "}" not in template]
    if not missing or rng.random() >= rate:
        return template
    clause = rng.choice(clauses[rng.choice(missing)])
    body = template.rstrip("?.!")
    return body + clause + template[len(body) :]
