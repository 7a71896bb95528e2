# ruff: noqa: E501 - tables of wording read better one entry per line
"""Value pools for the training dialogues (training-only words; the held-out set in
``benchmarks/heldout/`` is written apart from these)."""

CITIES = (
    "Paris Tokyo London Berlin Madrid Rome Cairo Lima Oslo Seoul Sydney Toronto Boston "
    "Chicago Denver Dublin Vienna Prague Lisbon Athens Nairobi Mumbai Delhi Bangkok Hanoi "
    "Manila Jakarta Santiago Bogota Havana Warsaw Zurich Helsinki Istanbul Dubai Doha Kyiv "
    "Riga Tallinn Auckland Perth Quebec Seattle Austin Miami Phoenix Atlanta Houston Dallas "
    "Portland Calgary Montreal Osaka Kyoto Busan Taipei Shanghai Beijing Shenzhen Chengdu "
    "Hangzhou Singapore Lagos Accra Dakar Tunis Casablanca Marseille Lyon Munich Hamburg "
    "Milan Naples Seville Valencia Porto Krakow Budapest Bucharest Sofia Belgrade Zagreb"
).split() + [
    "New York",
    "San Francisco",
    "Los Angeles",
    "Rio de Janeiro",
    "Buenos Aires",
    "Mexico City",
    "Cape Town",
    "Hong Kong",
    "Kuala Lumpur",
    "Las Vegas",
    "St. Louis",
    "Tel Aviv",
    "Abu Dhabi",
    "New Delhi",
    "Ho Chi Minh City",
    "Salt Lake City",
]

COUNTRIES = (
    "France Japan Germany Spain Italy Egypt Peru Norway Brazil Canada Mexico India China "
    "Kenya Nigeria Chile Argentina Sweden Finland Poland Greece Turkey Vietnam Thailand "
    "Indonesia Australia Ireland Portugal Austria Switzerland Belgium Netherlands Denmark "
    "Iceland Morocco Ghana Colombia Cuba Ukraine Romania Hungary Croatia Serbia Korea"
).split()

FIRST = (
    "Alice Bob Carol Dave Emma Frank Grace Henry Ivy Jack Kate Liam Mia Noah Olivia Paul "
    "Quinn Ruth Sam Tina Uma Victor Wendy Xavier Yara Zoe Amir Bea Chen Diego Elena Farah "
    "Goran Hana Ilya Jonas Keiko Luca Maya Nadia Omar Priya Rosa Sven Tariq Ursula Wei "
    "Yusuf Sofia Mateo Aisha Kenji Lars Ingrid Raj Meera Pablo Lucia Tom Anna Ben Clara"
).split()
LAST = (
    "Smith Jones Garcia Miller Davis Lopez Wilson Moore Taylor Lee Martin Clark Lewis "
    "Walker Hall Young King Wright Scott Green Baker Adams Nelson Hill Ramirez Campbell "
    "Mitchell Roberts Carter Phillips Evans Turner Torres Parker Collins Edwards Stewart "
    "Nguyen Kim Patel Singh Khan Tanaka Sato Muller Schmidt Rossi Ferrari Novak Ivanova"
).split()

LANGUAGES = (
    "French Spanish German Italian Japanese Chinese Korean Portuguese Russian Arabic Hindi "
    "Dutch Swedish Polish Turkish Greek Vietnamese Thai Indonesian Czech Finnish Danish "
    "Norwegian Hebrew Ukrainian Romanian Hungarian Swahili English"
).split()

PHRASES = [
    "good morning",
    "where is the train station",
    "thank you very much",
    "I love you",
    "how much does this cost",
    "the bill, please",
    "nice to meet you",
    "see you tomorrow",
    "I am lost",
    "happy birthday",
    "can you help me",
    "what time is it",
    "I don't understand",
    "one coffee please",
    "where is the bathroom",
    "good night",
    "I am hungry",
    "the weather is nice today",
    "do you speak English",
    "call a doctor",
    "merry christmas",
    "my name is Anna",
    "how are you",
    "I would like a table for two",
    "open the window",
]

WORDS = (
    "serendipity ephemeral ubiquitous quixotic melancholy resilience eloquent gregarious "
    "candid benevolent ambiguous meticulous pragmatic nostalgia euphoria wanderlust "
    "zeitgeist paradigm catalyst enigma labyrinth solace verbose frugal tenacious "
    "lucid sublime arbitrary cynical diligent empathy fervent gullible hubris irony "
    "jubilant kinetic lethargic mundane nuance obscure placid quaint rhetoric stoic "
    "tangible vivid whimsical zealous integrity photosynthesis entropy algorithm"
).split()

TOPICS = [
    "technology",
    "sports",
    "politics",
    "science",
    "business",
    "health",
    "climate",
    "space",
    "football",
    "elections",
    "the stock market",
    "artificial intelligence",
    "movies",
    "music",
    "travel",
    "education",
    "cars",
    "gaming",
    "fashion",
    "food",
]

COMPANIES = [
    ("Apple", "AAPL"),
    ("Microsoft", "MSFT"),
    ("Google", "GOOGL"),
    ("Amazon", "AMZN"),
    ("Tesla", "TSLA"),
    ("Nvidia", "NVDA"),
    ("Meta", "META"),
    ("Netflix", "NFLX"),
    ("Intel", "INTC"),
    ("IBM", "IBM"),
    ("Disney", "DIS"),
    ("Nike", "NKE"),
    ("Coca-Cola", "KO"),
    ("Boeing", "BA"),
    ("Pfizer", "PFE"),
    ("Walmart", "WMT"),
    ("Visa", "V"),
    ("Oracle", "ORCL"),
    ("AMD", "AMD"),
    ("Uber", "UBER"),
    ("Spotify", "SPOT"),
    ("Adobe", "ADBE"),
]
CRYPTO = ["bitcoin", "ethereum", "solana", "dogecoin", "cardano", "litecoin", "ripple"]

SONGS = [
    "Bohemian Rhapsody",
    "Imagine",
    "Hotel California",
    "Billie Jean",
    "Hey Jude",
    "Smells Like Teen Spirit",
    "Wonderwall",
    "Hallelujah",
    "Yesterday",
    "Purple Rain",
    "Dancing Queen",
    "Let It Be",
    "Shape of You",
    "Rolling in the Deep",
    "Blinding Lights",
    "Clocks",
    "Africa",
    "Superstition",
    "Respect",
    "Take On Me",
    "Zombie",
    "Creep",
]
ARTISTS = [
    "Queen",
    "The Beatles",
    "Adele",
    "Coldplay",
    "Taylor Swift",
    "Beyonce",
    "Drake",
    "Radiohead",
    "ABBA",
    "Nirvana",
    "Miles Davis",
    "Bob Marley",
    "Daft Punk",
    "Shakira",
    "Ed Sheeran",
    "Billie Eilish",
    "Eminem",
    "Rihanna",
    "Metallica",
    "Norah Jones",
]
MOVIES = [
    "Inception",
    "The Matrix",
    "Titanic",
    "Interstellar",
    "Jaws",
    "Casablanca",
    "Up",
    "Frozen",
    "Gladiator",
    "Avatar",
    "Parasite",
    "Alien",
    "Rocky",
    "Amelie",
    "Coco",
    "Arrival",
    "Heat",
    "Memento",
    "The Godfather",
    "Spirited Away",
    "Toy Story",
    "Moana",
]
SHOWS = [
    "Friends",
    "The Office",
    "Breaking Bad",
    "Seinfeld",
    "Sherlock",
    "Succession",
    "The Crown",
    "Lost",
    "Fargo",
    "Severance",
    "Dark",
    "Narcos",
]
TEAMS = [
    "Real Madrid",
    "Barcelona",
    "Liverpool",
    "Arsenal",
    "Chelsea",
    "Juventus",
    "Bayern",
    "Lakers",
    "Celtics",
    "Warriors",
    "Yankees",
    "Red Sox",
    "Dodgers",
    "Packers",
    "Patriots",
    "Chiefs",
    "Ajax",
    "Benfica",
    "Porto",
    "Napoli",
    "Inter",
    "Milan",
    "Knicks",
    "Bulls",
]
DISHES = [
    "lasagna",
    "pad thai",
    "chicken curry",
    "banana bread",
    "pancakes",
    "ramen",
    "tacos",
    "risotto",
    "paella",
    "apple pie",
    "guacamole",
    "falafel",
    "brownies",
    "chili",
    "tomato soup",
    "sushi",
    "pesto pasta",
    "fried rice",
    "omelette",
    "hummus",
    "goulash",
]
FOODS = [
    "an apple",
    "a banana",
    "rice",
    "an egg",
    "avocado",
    "salmon",
    "broccoli",
    "oatmeal",
    "a bagel",
    "peanut butter",
    "greek yogurt",
    "almonds",
    "a donut",
    "chicken breast",
    "a slice of pizza",
    "orange juice",
    "tofu",
    "cheddar cheese",
    "a croissant",
    "lentils",
]
PRODUCTS = [
    "wireless headphones",
    "a standing desk",
    "running shoes",
    "a coffee maker",
    "a yoga mat",
    "an air fryer",
    "a mechanical keyboard",
    "a backpack",
    "a rain jacket",
    "a phone charger",
    "a desk lamp",
    "noise cancelling earbuds",
    "a water bottle",
    "a blender",
    "a tent",
    "a gaming mouse",
    "an electric toothbrush",
    "a webcam",
]
ROOMS = [
    "living room",
    "kitchen",
    "bedroom",
    "bathroom",
    "office",
    "garage",
    "hallway",
    "porch",
    "basement",
    "kids room",
    "dining room",
    "garden",
]
DEVICES = ["lights", "fan", "heater", "tv", "speaker", "air conditioner", "lamp"]
ACTIVITIES = [
    "running",
    "cycling",
    "swimming",
    "yoga",
    "walking",
    "weightlifting",
    "hiking",
    "rowing",
    "dancing",
    "tennis",
    "boxing",
    "pilates",
]
CATEGORIES = [
    "food",
    "transport",
    "rent",
    "entertainment",
    "utilities",
    "health",
    "shopping",
    "travel",
    "groceries",
    "education",
]
PLANTS = ["fern", "cactus", "basil", "orchid", "monstera", "tomatoes", "roses", "succulents"]
PETS = ["Rex", "Luna", "Milo", "Bella", "Max", "Coco", "Simba", "Nala", "Oscar", "Daisy"]
SIGNS = [
    "aries",
    "taurus",
    "gemini",
    "cancer",
    "leo",
    "virgo",
    "libra",
    "scorpio",
    "sagittarius",
    "capricorn",
    "aquarius",
    "pisces",
]
JOBS = [
    "data analyst",
    "nurse",
    "software engineer",
    "teacher",
    "graphic designer",
    "accountant",
    "electrician",
    "chef",
    "project manager",
    "barista",
    "pilot",
]
COLORS = ["red", "blue", "green", "yellow", "purple", "orange", "white", "black", "pink"]
DRAW_SUBJECTS = [
    "a cat wearing a hat",
    "a lighthouse at sunset",
    "a dragon over a castle",
    "a bowl of fruit",
    "a robot reading a book",
    "mountains in the snow",
    "a red sports car",
    "a cozy cabin in the woods",
    "an astronaut riding a horse",
    "a city skyline at night",
    "a fox in the rain",
    "a sunflower field",
    "a cup of coffee on a desk",
    "a pirate ship",
    "a panda eating bamboo",
    "a watercolor of a beach",
    "a tiny house on a hill",
    "a blue bird on a branch",
    "a futuristic train",
    "a birthday cake with candles",
]
TRACKING = [
    "1Z999AA10123456784",
    "9400111899223856",
    "LX123456789CN",
    "JD014600006253",
    "TBA30491827",
    "CP998877665DE",
    "RR552211004US",
    "7713245598",
]
AIRLINES = [
    ("BA", "British Airways"),
    ("LH", "Lufthansa"),
    ("AF", "Air France"),
    ("UA", "United"),
    ("DL", "Delta"),
    ("EK", "Emirates"),
    ("QF", "Qantas"),
    ("NH", "ANA"),
    ("KL", "KLM"),
    ("AA", "American"),
]
FILES = [
    "report.pdf",
    "notes.txt",
    "budget.xlsx",
    "photo.jpg",
    "slides.pptx",
    "data.csv",
    "resume.docx",
    "invoice_march.pdf",
    "todo.md",
    "backup.zip",
]
EMAIL_DOMAINS = ["gmail.com", "example.com", "work.org", "mail.net", "company.io"]
SUBJECTS = [
    "the meeting tomorrow",
    "lunch on Friday",
    "the project update",
    "my vacation",
    "the quarterly report",
    "dinner plans",
    "the invoice",
    "the new schedule",
    "the party",
    "tonight's game",
    "the trip",
    "the contract",
]
MESSAGES = [
    "I'll be 10 minutes late",
    "see you at 6",
    "can you call me back",
    "happy birthday!",
    "the meeting moved to 3pm",
    "don't forget the milk",
    "I landed safely",
    "running late, start without me",
    "thanks for dinner",
    "are we still on for tonight",
    "the package arrived",
    "please send me the slides",
]
TASKS = [
    "buy milk",
    "call the dentist",
    "pay the electricity bill",
    "water the plants",
    "book flights",
    "finish the report",
    "pick up the kids",
    "renew my passport",
    "clean the garage",
    "send the invoice",
    "walk the dog",
    "submit the form",
    "buy a birthday gift for mom",
    "take out the trash",
    "back up my laptop",
]
EVENTS = [
    "team meeting",
    "dentist appointment",
    "yoga class",
    "lunch with Sam",
    "project review",
    "parent teacher conference",
    "flight to Paris",
    "birthday party",
    "job interview",
    "book club",
    "haircut",
    "doctor's appointment",
    "standup",
    "date night",
]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
DATES = [
    "2025-03-14",
    "2025-07-04",
    "2025-12-25",
    "2026-01-01",
    "2025-11-02",
    "2026-02-14",
    "2025-09-30",
    "2026-05-20",
    "2025-08-08",
    "2026-10-31",
]
MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
TEXTS = [
    "The quick brown fox jumps over the lazy dog",
    "To be or not to be, that is the question",
    "All that glitters is not gold",
    "I think, therefore I am",
    "A journey of a thousand miles begins with a single step",
    "Practice makes perfect",
    "Knowledge is power",
    "The early bird catches the worm",
    "Time flies like an arrow",
    "Hello world",
    "Less is more",
    "Actions speak louder than words",
]
URLS = [
    "https://example.com/blog/post-1",
    "https://docs.python.org/3/library/json.html",
    "https://news.site/article/42",
    "https://shop.example.org/item?id=991",
    "https://github.com/user/repo",
    "https://en.wikipedia.org/wiki/Moon",
]
