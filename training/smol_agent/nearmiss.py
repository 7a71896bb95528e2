# ruff: noqa: E501 - tables of wording read better one entry per line
"""Requests that need no call although a listed tool sits in their domain (from step 600).

The first no-call data drew its requests from *unlisted* families, so a near miss was one of
values (a city, with only a weather tool listed, in a request for restaurants). The model then
called a listed tool for anything in its domain. Two kinds close that gap:

- ``OPERATIONS``: another operation on the listed tool's own objects ("cancel my alarm" with
  only an alarm *setter*, "sell my shares" with a price lookup). The answer says what the
  tool does and what it cannot do.
- ``QUESTIONS``: a question about the domain that general knowledge answers ("why do flights
  get delayed?" with a flight-status tool). The answer is short, true and fluent.

Keys are ``Family.gist``; slots are the family's own parameter slots, filled from its pools.
No wording here comes from ``benchmarks/first_use.py`` or the held-out set. Three entries
were taken out before any step trained on them (an alarm setter's "cancel my alarm", a price
lookup's "buy shares", "how are exchange rates set?"): they came from a note written after
reading the held-out failures, and the held-out set has requests like them.
"""

from __future__ import annotations

# gist -> [(ways to ask, what cannot be done[, the gists of families that can do it])]:
# an operation is asked only when no listed tool can do it
OPERATIONS: dict[str, list[tuple[list[str], str]]] = {
    "check the weather": [
        (
            [
                "what was the weather in {city} last week?",
                "how much did it rain in {city} last year",
                "what was the hottest day ever in {city}",
            ],
            "look up past weather",
            ("search the web", "look things up in an encyclopedia"),
        ),
        (
            ["send me a text if it rains in {city}", "alert me when a storm is coming to {city}"],
            "send weather alerts",
            ("send emails", "send text messages"),
        ),
    ],
    "get a weather forecast": [
        (
            [
                "what was the weather like in {city} yesterday?",
                "how cold was it in {city} last winter",
            ],
            "look up past weather",
        ),
        (
            ["warn me by email if snow is forecast for {city}"],
            "send weather alerts",
            ("send emails", "send text messages"),
        ),
    ],
    "send emails": [
        (
            [
                "delete the last email I sent to {to}",
                "unsend my email to {to}",
                "recall the message I sent {to}",
            ],
            "delete or unsend emails",
        ),
        (
            [
                "read me my latest emails",
                "do I have any new mail?",
                "check my inbox",
                "what did {to} write to me?",
            ],
            "read your inbox",
        ),
    ],
    "send text messages": [
        (
            [
                "read my last text from {contact}",
                "did {contact} text me back?",
                "show my unread messages",
            ],
            "read your messages",
        ),
        (["block {contact}", "delete my chat with {contact}"], "block contacts or delete chats"),
    ],
    "translate text": [
        (
            ["translate this photo of a menu", "read the sign in this picture and translate it"],
            "read text in pictures",
        ),
        (["translate this voice message for me", "listen to this and translate it"], "hear audio"),
    ],
    "look up word definitions": [
        (
            ["play the pronunciation of {word}", "say {word} out loud for me"],
            "play pronunciations",
        ),
        (
            ["translate {word} into German", "what's {word} in Japanese?"],
            "translate words",
            ("translate text",),
        ),
    ],
    "set timers": [
        (
            [
                "cancel my timer",
                "stop the {label} timer",
                "how much time is left on my timer?",
                "pause the timer",
            ],
            "cancel, pause or check timers",
        ),
        (["set an alarm for 7 tomorrow morning", "wake me at 6:30"], "set alarms", ("set alarms",)),
    ],
    "set reminders": [
        (
            [
                "delete my reminder to {task}",
                "what reminders do I have?",
                "cancel the reminder about {task}",
                "list my reminders",
            ],
            "list or delete reminders",
        ),
        (["email my reminders to my boss"], "send emails", ("send emails",)),
    ],
    "manage the calendar": [
        (
            [
                "cancel the {title} on my calendar",
                "delete the {title} event",
                "move {title} to next week",
            ],
            "cancel or move events",
        ),
        (
            [
                "what's on my calendar tomorrow?",
                "am I free on Friday afternoon?",
                "list my meetings this week",
            ],
            "read your calendar",
        ),
    ],
    "read the news": [
        (
            ["post this story to my blog", "subscribe me to {topic} news by email"],
            "publish or subscribe to news",
        ),
    ],
    "get stock prices": [
        (
            ["should I invest in {symbol}?", "will {symbol} go up next year?"],
            "give investment advice",
        ),
    ],
    "get cryptocurrency prices": [
        (
            [
                "buy 0.5 {coin} for me",
                "send my {coin} to my brother's wallet",
                "sell all my {coin}",
            ],
            "buy, sell or send crypto",
        ),
        (["open a wallet for {coin}", "mine some {coin}"], "create wallets or mine coins"),
    ],
    "look up populations": [
        (
            ["what's the area of {place} in square kilometers?", "how many square km is {place}?"],
            "look up areas",
            ("search the web", "look things up in an encyclopedia"),
        ),
        (
            ["who leads {place}?", "who runs {place}"],
            "look up leaders",
            ("search the web", "look things up in an encyclopedia"),
        ),
    ],
    "tell the time in other places": [
        (
            ["set my clock to {city} time", "change my time zone to {city}"],
            "change your clock or time zone",
        ),
        (["set an alarm for 9 in {city} time"], "set alarms", ("set alarms",)),
    ],
    "measure distances between places": [
        (
            [
                "book a taxi from {origin} to {destination}",
                "get me a train ticket from {origin} to {destination}",
            ],
            "book trips",
            ("order rides",),
        ),
        (
            [
                "is the road from {origin} to {destination} closed?",
                "how's traffic between {origin} and {destination}?",
            ],
            "check traffic or road closures",
            ("get directions", "search the web"),
        ),
    ],
    "get directions": [
        (
            ["book me a cab from {origin} to {destination}", "order a ride to {destination}"],
            "book rides",
            ("order rides",),
        ),
        (
            ["save {destination} as my home address", "share my location with my wife"],
            "save places or share your location",
        ),
    ],
    "convert units": [
        (["measure this room for me", "how long is my desk?"], "measure things"),
    ],
    "calculate tips": [
        (
            [
                "pay the bill",
                "pay {bill} to the restaurant with my card",
                "split the payment with my friends' cards",
            ],
            "pay bills",
        ),
    ],
    "find restaurants": [
        (
            [
                "book a table for four at 8pm",
                "reserve a table at the {cuisine} place tonight",
                "cancel my restaurant booking",
            ],
            "book or cancel tables",
        ),
        (
            ["order {cuisine} food to my door", "get me delivery from a {cuisine} place"],
            "order food delivery",
            ("order food",),
        ),
    ],
    "book hotels": [
        (
            [
                "cancel my hotel booking in {city}",
                "change my hotel reservation to 3 nights",
                "get a refund for my hotel",
            ],
            "change or cancel bookings",
        ),
        (
            ["book a flight to {city}", "rent a car in {city}"],
            "book flights or cars",
            ("search flights",),
        ),
    ],
    "check flight status": [
        (
            [
                "book me on flight {flight}",
                "change my seat on {flight}",
                "cancel my flight {flight}",
                "check me in for {flight}",
            ],
            "book, change or check in for flights",
        ),
        (["add a bag to my booking on {flight}"], "change bookings"),
    ],
    "search flights": [
        (
            [
                "cancel my flight to {destination}",
                "upgrade my ticket to business class",
                "check me in for my flight tomorrow",
            ],
            "cancel, upgrade or check in for flights",
        ),
        (
            ["is my flight to {destination} delayed?"],
            "check the status of a booked flight",
            ("check flight status",),
        ),
    ],
    "track packages": [
        (
            ["send a package to my mom", "schedule a courier pickup", "ship this box to Berlin"],
            "send packages",
        ),
        (
            ["return my order and get a refund", "change the delivery address of {tracking}"],
            "change deliveries or make returns",
        ),
    ],
    "search products": [
        (
            ["add {query} to my cart and check out", "pay for the {query} in my basket"],
            "buy things or place orders",
            ("order food",),
        ),
        (
            ["where is my order?", "return the {query} I bought"],
            "track or return orders",
            ("track packages",),
        ),
    ],
    "play music": [
        (
            ["what song is playing right now?", "what's this song called?", "recognize this tune"],
            "recognize songs",
        ),
        (
            ["make a playlist and share it with Sam", "download {song} to my phone"],
            "share or download music",
        ),
    ],
    "look up movies": [
        (["buy two tickets for {title} tonight", "book cinema seats for {title}"], "buy tickets"),
        (["play {title}", "stream {title} on the TV"], "play films"),
    ],
    "find recipes": [
        (
            ["order the ingredients for {dish}", "add the {dish} ingredients to my shopping cart"],
            "order groceries",
            ("search products",),
        ),
        (["set a timer for the oven", "preheat my oven"], "control the kitchen", ("set timers",)),
    ],
    "count calories": [
        (["log my lunch", "add 500 calories to my diary", "track what I ate today"], "log meals"),
    ],
    "control smart lights": [
        (
            ["lock the front door", "open the garage", "turn on the washing machine"],
            "control doors or appliances",
        ),
        (
            ["what's the temperature in the {room}?"],
            "read room temperatures",
            ("set the thermostat",),
        ),
    ],
    "set the thermostat": [
        (
            ["turn off the lights in the {room}", "close the blinds"],
            "control lights or blinds",
            ("control smart lights",),
        ),
        (["how much energy did I use this month?"], "report energy use"),
    ],
    "manage a to-do list": [
        (
            [
                "mark {task} as done",
                "delete {task} from my list",
                "what's on my to-do list?",
                "clear my to-do list",
            ],
            "complete, delete or list to-dos",
        ),
        (["share my to-do list with Anna"], "share lists"),
    ],
    "take notes": [
        (
            [
                "read me my notes",
                "find my note about the trip",
                "delete all my notes",
                "what did I write down yesterday?",
            ],
            "read, search or delete notes",
        ),
    ],
    "look up contacts": [
        (
            [
                "add a new contact called {name}",
                "delete {name} from my contacts",
                "change {name}'s number",
            ],
            "add, change or delete contacts",
        ),
        (
            ["call {name}", "text {name} that I'm late"],
            "call or text people",
            ("make phone calls", "send text messages"),
        ),
    ],
    "make phone calls": [
        (
            [
                "who called me this morning?",
                "show my missed calls",
                "block the last number that called",
            ],
            "read call history or block numbers",
        ),
        (["record this call"], "record calls"),
    ],
    "look up sports scores": [
        (
            ["bet 20 dollars on the {team} game", "buy tickets for the next {team} match"],
            "place bets or buy tickets",
        ),
        (["stream the {team} game", "watch the match live"], "stream games"),
    ],
    "check air quality": [
        (["turn on my air purifier", "buy an air filter"], "control devices or buy things"),
    ],
    "list public holidays": [
        (
            ["book a day off on the next holiday", "tell my team I'm off on the holiday"],
            "book leave or message people",
            ("manage the calendar", "send emails", "send text messages"),
        ),
    ],
    "log workouts": [
        (
            [
                "delete yesterday's workout",
                "show my workouts this month",
                "how many minutes did I run last week?",
            ],
            "read or delete workouts",
        ),
    ],
    "log expenses": [
        (
            [
                "how much did I spend on {category} last month?",
                "show my expenses",
                "delete my last expense",
            ],
            "read or delete expenses",
        ),
        (["pay my rent", "transfer 200 to my savings"], "make payments"),
    ],
    "calculate loan payments": [
        (
            ["apply for a loan", "get me a mortgage of {principal}", "what's my credit score?"],
            "apply for loans or check credit",
        ),
    ],
    "check the bank balance": [
        (
            [
                "transfer 100 dollars to my savings",
                "pay my credit card bill",
                "send money to Alex",
            ],
            "move money or pay bills",
        ),
        (["open a new savings account", "close my {account} account"], "open or close accounts"),
    ],
    "search jobs": [
        (
            [
                "apply to the {title} job for me",
                "send my CV to the company",
                "write my cover letter and submit it",
            ],
            "apply for jobs",
        ),
    ],
    "order rides": [
        (
            ["cancel my ride", "where is my driver?", "rate my last driver 5 stars"],
            "cancel, track or rate rides",
        ),
    ],
    "order food": [
        (
            ["cancel my order", "where's my food?", "complain about my last order"],
            "cancel, track or complain about orders",
        ),
    ],
    "shorten links": [
        (
            ["how many people clicked my short link?", "delete the short link I made"],
            "report clicks or delete links",
        ),
        (["what's on the page at {url}?"], "read web pages", ("summarize web pages",)),
    ],
    "generate passwords": [
        (
            [
                "what's my email password?",
                "save this password for my bank",
                "check if my password was leaked",
            ],
            "store, look up or check passwords",
        ),
    ],
    "work with files": [
        (
            ["delete {name}", "rename {name} to final.docx", "email {name} to my boss"],
            "delete, rename or send files",
            ("send emails",),
        ),
    ],
    "convert currencies": [
        (
            ["send 100 euros to my sister", "buy 500 dollars for my trip", "open a euro account"],
            "send or buy money",
        ),
        (
            ["will the dollar get stronger next month?", "predict the euro rate for next year"],
            "predict exchange rates",
        ),
    ],
    "set alarms": [
        (["start a 10 minute timer", "time my run"], "run timers", ("set timers",)),
    ],
    "search books": [
        (
            [
                "borrow {title} from the library",
                "buy {title} for my Kindle",
                "read {title} aloud to me",
            ],
            "borrow, buy or read books",
        ),
        (["write a review of {title} on my blog"], "post reviews"),
    ],
}

# gist -> [(ways to ask, short true answers)]
QUESTIONS: dict[str, list[tuple[list[str], list[str]]]] = {
    "check the weather": [
        (
            ["why is the sky blue?", "what makes the sky blue"],
            [
                "Sunlight scatters off the air's molecules, and blue light scatters the most, so the sky looks blue."
            ],
        ),
        (
            ["what causes thunder?", "why does thunder happen"],
            ["Lightning heats the air so fast that it expands with a bang; that sound is thunder."],
        ),
        (
            ["what's the difference between weather and climate?"],
            [
                "Weather is what the air does on a given day; climate is the average pattern over many years."
            ],
        ),
    ],
    "get a weather forecast": [
        (
            ["how do meteorologists predict the weather?", "how are forecasts made"],
            [
                "They feed measurements of the air, sea and land into computer models that simulate how the atmosphere will change."
            ],
        ),
        (
            ["why are forecasts sometimes wrong?"],
            [
                "The atmosphere is chaotic: small errors in today's measurements grow over the days, so longer forecasts are less certain."
            ],
        ),
    ],
    "send emails": [
        (
            ["what does CC mean in an email?", "what's the difference between cc and bcc"],
            [
                "CC sends a visible copy to other people; BCC sends a copy that the other recipients cannot see."
            ],
        ),
        (
            ["how do I write a polite follow-up email?"],
            [
                "Keep it short: mention your earlier message, restate what you need, and thank them for their time."
            ],
        ),
    ],
    "send text messages": [
        (
            ["what does lol mean?", "what does brb stand for"],
            ["'lol' means 'laughing out loud' and 'brb' means 'be right back'."],
        ),
    ],
    "translate text": [
        (
            ["how many languages are there in the world?"],
            ["There are about 7,000 living languages in the world."],
        ),
        (
            ["what's the hardest language to learn?", "which languages are hardest to learn"],
            [
                "For English speakers, languages like Japanese, Arabic and Mandarin usually take the longest to learn."
            ],
        ),
    ],
    "look up word definitions": [
        (
            ["what's the longest word in English?"],
            [
                "A famous long one is 'pneumonoultramicroscopicsilicovolcanoconiosis', a lung disease, with 45 letters."
            ],
        ),
        (
            ["what's the difference between a noun and a verb?"],
            ["A noun names a thing, like 'dog'; a verb names an action, like 'run'."],
        ),
    ],
    "set timers": [
        (
            ["how long should I boil an egg?", "how many minutes for a soft boiled egg"],
            ["About 6 minutes for a soft yolk and 9 to 10 minutes for a hard one."],
        ),
        (
            ["how long is a pomodoro?"],
            ["A pomodoro is 25 minutes of focused work followed by a 5 minute break."],
        ),
    ],
    "set reminders": [
        (
            ["how can I stop forgetting things?", "tips to remember stuff better"],
            ["Write things down right away, keep one list, and review it every morning."],
        ),
    ],
    "manage the calendar": [
        (
            ["how many days are in a leap year?", "how long is a leap year"],
            ["A leap year has 366 days instead of 365: February gets a 29th day."],
        ),
        (["how many weeks are in a year?"], ["A year has 52 weeks and one or two days."]),
    ],
    "read the news": [
        (
            ["how can I tell if a news story is fake?", "how do I spot fake news"],
            [
                "Check who published it, look for the same story from other trusted outlets, and be wary of headlines that make you angry."
            ],
        ),
    ],
    "get stock prices": [
        (
            ["what is a stock?", "what does owning a share mean"],
            [
                "A stock is a small piece of ownership in a company; its price moves with what buyers and sellers expect."
            ],
        ),
        (
            ["what's a dividend?"],
            ["A dividend is part of a company's profit paid out to its shareholders."],
        ),
        (
            ["what's the difference between a stock and a bond?"],
            [
                "A stock is a share of a company; a bond is a loan to a company or government that pays interest."
            ],
        ),
    ],
    "get cryptocurrency prices": [
        (
            ["what is a blockchain?", "how does blockchain work"],
            [
                "A blockchain is a shared ledger: records are grouped in blocks, and each block is linked to the one before, so past entries are hard to change."
            ],
        ),
        (
            ["who created bitcoin?"],
            [
                "Bitcoin was created in 2009 by someone using the name Satoshi Nakamoto, whose identity is still unknown."
            ],
        ),
    ],
    "look up populations": [
        (
            ["why do cities grow so fast?"],
            [
                "People move to cities for jobs, schools and services, and cities often have more births than deaths."
            ],
        ),
        (
            ["what's the most spoken language in the world?"],
            [
                "English has the most speakers in total, and Mandarin Chinese has the most native speakers."
            ],
        ),
    ],
    "tell the time in other places": [
        (
            ["why do we have time zones?", "what are time zones for"],
            [
                "The sun rises at different times around the globe, so time zones keep 12 o'clock close to when the sun is highest."
            ],
        ),
        (
            ["what is daylight saving time?"],
            [
                "Clocks move forward an hour in spring and back in autumn so that evenings get more daylight."
            ],
        ),
    ],
    "measure distances between places": [
        (
            ["what's the longest river in the world?"],
            [
                "The Nile (about 6,650 km) is usually listed first, with the Amazon (about 6,400 km) close behind."
            ],
        ),
    ],
    "get directions": [
        (
            ["how does GPS work?", "how does my phone know where I am"],
            [
                "Your phone measures how long signals take to arrive from several satellites and works out its position from them."
            ],
        ),
    ],
    "convert units": [
        (
            ["why does the US use miles?", "why doesn't america use the metric system"],
            [
                "The US kept the older British units it started with; changing road signs, tools and habits never won enough support."
            ],
        ),
    ],
    "convert temperatures": [
        (
            ["at what temperature does water boil?", "boiling point of water?"],
            ["Water boils at 100 degrees Celsius (212 Fahrenheit) at sea level."],
        ),
        (
            ["what is absolute zero?"],
            [
                "Absolute zero, 0 kelvin or minus 273.15 Celsius, is the coldest possible temperature."
            ],
        ),
    ],
    "calculate tips": [
        (
            ["is tipping expected in Japan?", "do people tip in japan"],
            ["No, tipping is not customary in Japan and can even cause confusion."],
        ),
        (
            ["how much should I tip in the US?"],
            ["In US restaurants 15 to 20 percent of the bill is usual."],
        ),
    ],
    "find restaurants": [
        (
            ["what is umami?"],
            [
                "Umami is the savory taste, found in foods like broth, cheese, tomatoes and soy sauce."
            ],
        ),
        (
            ["where does sushi come from?", "is sushi japanese"],
            [
                "Modern sushi is Japanese; it grew out of an old Asian way of preserving fish in fermented rice."
            ],
        ),
    ],
    "book hotels": [
        (
            ["what's the difference between a hotel and a hostel?"],
            [
                "A hostel rents cheap beds, often in shared rooms; a hotel rents private rooms with more services."
            ],
        ),
        (
            ["what time is check-in usually?"],
            ["Most hotels let you check in around 2 or 3 pm and check out by 11 am or noon."],
        ),
    ],
    "check flight status": [
        (
            ["why do flights get delayed?", "what usually causes flight delays"],
            [
                "Bad weather, busy airports, late incoming planes and technical checks cause most delays."
            ],
        ),
        (
            ["why do my ears pop on a plane?"],
            [
                "Air pressure in the cabin changes during climb and descent, and your ears pop as the pressure evens out."
            ],
        ),
    ],
    "search flights": [
        (
            ["when is the cheapest time to book a flight?", "how early should I book flights"],
            [
                "Booking one to three months ahead usually gives good prices for trips in your own region."
            ],
        ),
        (
            ["how do planes stay in the air?"],
            [
                "Wings are shaped to push air down as the plane moves forward, and the air pushes the wings up: that's lift."
            ],
        ),
    ],
    "track packages": [
        (
            ["what does 'in transit' mean?", "what does out for delivery mean"],
            [
                "'In transit' means the parcel is moving between depots; 'out for delivery' means it is on the van today."
            ],
        ),
    ],
    "search products": [
        (
            ["how do I know if a review is fake?"],
            [
                "Be wary of many short five-star reviews posted at once, vague praise, and reviewers with no other history."
            ],
        ),
    ],
    "play music": [
        (
            ["how many strings does a guitar have?", "how many strings are on a guitar"],
            ["A standard guitar has six strings."],
        ),
        (
            ["how many keys does a piano have?", "how many keys on a piano"],
            ["A full-size piano has 88 keys: 52 white and 36 black."],
        ),
        (
            ["who wrote the moonlight sonata?"],
            ["Ludwig van Beethoven wrote the Moonlight Sonata in 1801."],
        ),
    ],
    "look up movies": [
        (
            ["any tips for a movie night?", "how do I plan a movie night"],
            ["Pick a theme, choose a film everyone can agree on, and keep snacks simple."],
        ),
        (
            ["how are movies rated?"],
            [
                "Rating boards look at violence, language and other content to say which ages a film suits."
            ],
        ),
    ],
    "find recipes": [
        (
            ["why does bread rise?", "what makes dough rise"],
            [
                "Yeast eats the sugars in the dough and gives off carbon dioxide, which makes the dough rise."
            ],
        ),
        (
            ["can I freeze cooked rice?"],
            [
                "Yes: cool it quickly, freeze it in a sealed bag, and reheat it until it is steaming hot."
            ],
        ),
    ],
    "count calories": [
        (
            ["what is a calorie?", "what does a calorie measure"],
            [
                "A calorie is a unit of energy; food calories tell you how much energy food gives your body."
            ],
        ),
        (
            ["is fat bad for you?"],
            ["Not all fat is bad: fats from nuts, fish and olive oil are healthy in moderation."],
        ),
    ],
    "control smart lights": [
        (
            ["are LED bulbs worth it?", "do led lights save money"],
            ["Yes, LED bulbs use far less power than old bulbs and last many years."],
        ),
    ],
    "set the thermostat": [
        (
            ["what's a comfortable room temperature?", "best temperature for sleeping?"],
            ["About 20 to 22 degrees Celsius suits most rooms, a bit cooler for sleeping."],
        ),
    ],
    "set the volume": [
        (
            ["how loud is too loud for headphones?"],
            [
                "Keep headphones below about 60 percent volume and take breaks to protect your hearing."
            ],
        ),
    ],
    "manage a to-do list": [
        (
            ["how do I prioritize my tasks?", "tips for getting things done"],
            [
                "Do the most important task first, break big tasks into small steps, and drop what doesn't matter."
            ],
        ),
    ],
    "make phone calls": [
        (
            ["who invented the telephone?"],
            ["Alexander Graham Bell is credited with inventing the telephone in 1876."],
        ),
    ],
    "look up sports scores": [
        (
            ["how long is a football match?", "how long does a soccer game last"],
            ["A football match has two halves of 45 minutes, plus added time."],
        ),
        (
            ["how many players are on a basketball team?"],
            ["Each basketball team has five players on the court at a time."],
        ),
    ],
    "check air quality": [
        (
            ["what causes smog?"],
            [
                "Smog forms when car and factory fumes react with sunlight and get trapped near the ground."
            ],
        ),
    ],
    "look up sunrise and sunset": [
        (
            ["why are sunsets red?", "why is the sunset orange"],
            [
                "At sunset light crosses more air, which scatters the blue away and leaves reds and oranges."
            ],
        ),
        (
            ["why are days longer in summer?"],
            [
                "The Earth's tilt points your half toward the sun in summer, so the sun stays up longer."
            ],
        ),
    ],
    "list public holidays": [
        (
            ["why do we celebrate new year on january 1?"],
            ["The Romans began their year on January 1, and the Gregorian calendar kept it."],
        ),
    ],
    "read horoscopes": [
        (
            ["do horoscopes actually work?", "is astrology real"],
            [
                "There is no scientific evidence that star signs predict personality or events, but many people enjoy them."
            ],
        ),
    ],
    "log workouts": [
        (
            ["how much exercise do I need a week?", "how often should I work out"],
            [
                "Adults are advised to get about 150 minutes of moderate exercise a week, plus some strength work."
            ],
        ),
        (
            ["should I stretch before running?"],
            [
                "A short warm-up of easy jogging and dynamic stretches works better than long static stretches."
            ],
        ),
    ],
    "log expenses": [
        (
            ["how can I save more money?", "tips for budgeting"],
            [
                "Track what you spend, set a monthly budget, and move savings aside as soon as you are paid."
            ],
        ),
    ],
    "calculate loan payments": [
        (
            ["what is compound interest?"],
            [
                "Compound interest is interest earned on both the money you put in and the interest already added."
            ],
        ),
        (
            ["what's the difference between fixed and variable rates?"],
            ["A fixed rate stays the same for the term; a variable rate moves with the market."],
        ),
    ],
    "check the bank balance": [
        (
            ["what's the difference between a debit and a credit card?"],
            [
                "A debit card spends money from your account; a credit card borrows money you pay back later."
            ],
        ),
    ],
    "search jobs": [
        (
            ["how long should a CV be?", "tips for a job interview"],
            [
                "Keep a CV to one or two pages; for interviews, research the company and prepare examples of your work."
            ],
        ),
    ],
    "summarize web pages": [
        (
            ["what is a URL?", "what does https mean"],
            ["A URL is a web address; 'https' means the connection to the site is encrypted."],
        ),
    ],
    "generate passwords": [
        (
            ["what makes a password strong?", "how long should a password be"],
            [
                "Use at least 12 characters, mix words, numbers and symbols, and never reuse a password."
            ],
        ),
        (
            ["what is two-factor authentication?"],
            [
                "Two-factor authentication asks for a second proof, like a code on your phone, besides your password."
            ],
        ),
    ],
    "roll dice and pick random numbers": [
        (
            ["what are the odds of rolling a six?", "chance of rolling two sixes"],
            ["One in six for a single die, and one in 36 for two sixes."],
        ),
    ],
    "convert currencies": [
        (
            ["what currency do they use in Switzerland?"],
            ["Switzerland uses the Swiss franc (CHF)."],
        ),
    ],
    "set alarms": [
        (
            ["how much sleep do adults need?", "how many hours should I sleep"],
            ["Most adults need 7 to 9 hours of sleep a night."],
        ),
        (
            ["is snoozing the alarm bad for you?"],
            [
                "Snoozing breaks up your last bit of sleep; it's usually better to set the alarm later and get up at once."
            ],
        ),
    ],
    "change the case of text": [
        (
            ["what is title case?", "when should I use capital letters"],
            [
                "Title case capitalizes the main words of a title; in sentences, capitals start the sentence and names."
            ],
        ),
    ],
    "analyse and change text": [
        (["how many words is a typical novel?"], ["A typical novel runs 70,000 to 100,000 words."]),
    ],
}
