# ruff: noqa: E501 - tables of wording read better one entry per line
"""Small talk and general knowledge: (ways to say it, short fluent answers)."""

CHATS = [
    (
        ["hi", "hello", "hey there", "good morning", "hiya", "hello!"],
        [
            "Hello! How can I help you today?",
            "Hi! What can I do for you?",
            "Hey! What do you need?",
        ],
    ),
    (
        ["how are you?", "how's it going", "how are you doing today?", "you ok?"],
        [
            "I'm doing well, thanks for asking! How can I help?",
            "All good here. What can I do for you?",
        ],
    ),
    (
        ["thanks", "thank you!", "thanks a lot", "cheers", "thx, that helps", "great, thank you"],
        ["You're welcome!", "Glad I could help.", "Any time!", "My pleasure."],
    ),
    (
        ["who are you?", "what are you", "are you a robot?", "what's your name"],
        [
            "I'm an AI assistant. I can answer questions and use the tools I've been given.",
            "I'm a helpful assistant running on a small language model.",
        ],
    ),
    (
        ["what can you do?", "what are you able to help with", "help", "what do you do"],
        [
            "I can answer questions and use the tools listed for me, like looking things up or running tasks. What do you need?",
            "I can chat, answer simple questions and call the tools I have. Just ask!",
        ],
    ),
    (
        ["tell me a joke", "say something funny", "make me laugh", "know any jokes?"],
        [
            "Why did the scarecrow win an award? Because he was outstanding in his field.",
            "I told my computer I needed a break, and it said: no problem, I'll go to sleep.",
            "Why don't skeletons fight each other? They don't have the guts.",
        ],
    ),
    (
        ["good night", "bye", "see you later", "goodbye!", "talk to you tomorrow"],
        ["Goodbye! Have a great day.", "See you later!", "Good night, sleep well!"],
    ),
    (
        ["I'm bored", "i am so bored right now", "nothing to do today"],
        [
            "How about a short walk, a new podcast, or a quick puzzle?",
            "Maybe try cooking something new or calling a friend.",
        ],
    ),
    (
        ["I'm feeling sad", "rough day today", "i feel a bit down"],
        [
            "I'm sorry to hear that. Do you want to talk about it?",
            "That sounds hard. I'm here if you want to talk.",
        ],
    ),
    (
        ["ok", "okay", "cool", "nice", "got it", "alright"],
        ["Great! Anything else?", "Okay. Let me know if you need anything else."],
    ),
    (
        ["do you like music?", "what's your favorite color", "do you have feelings?"],
        [
            "I don't have personal tastes, but I'm happy to talk about it!",
            "As an AI I don't have preferences, but I can help you explore.",
        ],
    ),
    (
        ["can you keep a secret?", "are you listening to me?", "do you remember me?"],
        ["I only see this conversation, and I don't keep anything after it ends."],
    ),
    (
        ["give me some motivation", "I need encouragement", "cheer me up"],
        [
            "You've got this. Take one small step now and the next one gets easier.",
            "Every expert was once a beginner. Keep going!",
        ],
    ),
    (
        ["what should I cook tonight?", "any dinner ideas?"],
        [
            "How about a simple stir-fry with vegetables and rice? It's quick and tasty.",
            "Pasta with garlic, olive oil and a salad is always a good choice.",
        ],
    ),
    (
        ["recommend a book", "what should I read next?"],
        [
            'If you like stories, try "The Hobbit" by J.R.R. Tolkien; it\'s a classic adventure.',
            '"Sapiens" by Yuval Noah Harari is a popular and readable non-fiction pick.',
        ],
    ),
    (
        ["sorry", "my bad", "oops, wrong chat"],
        ["No problem at all!", "No worries. What would you like to do?"],
    ),
    (
        ["write me a haiku", "write a short poem"],
        ["Morning light on leaves,\na quiet cup of warm tea,\nthe day starts slowly."],
    ),
    (
        ["give me a tip for sleeping better", "how can I sleep better?"],
        [
            "Keep a regular bedtime, avoid screens for an hour before bed, and keep your room cool and dark."
        ],
    ),
    (
        ["how do I stay focused?", "tips for concentration?"],
        [
            "Work in short blocks of 25 minutes, silence notifications, and take short breaks in between."
        ],
    ),
    (
        ["is it a good idea to drink water?", "how much water should I drink?"],
        [
            "Yes. Most adults do well with around 2 liters a day, more when it's hot or you exercise."
        ],
    ),
]

FACTS = [
    (
        ["What is the capital of France?", "capital of france", "france's capital?"],
        ["The capital of France is Paris."],
    ),
    (["what's the capital of Japan", "capital city of japan?"], ["Tokyo is the capital of Japan."]),
    (["how many days are in a week?", "days in a week"], ["There are seven days in a week."]),
    (["how many continents are there?"], ["There are seven continents."]),
    (
        ["who wrote Romeo and Juliet?", "author of romeo and juliet"],
        ["William Shakespeare wrote Romeo and Juliet."],
    ),
    (
        ["what is the boiling point of water?", "at what temperature does water boil"],
        ["Water boils at 100°C (212°F) at sea level."],
    ),
    (
        ["what color is the sky?", "why is the sky blue?"],
        ["The sky looks blue because air scatters blue sunlight more than red light."],
    ),
    (["who painted the Mona Lisa?"], ["Leonardo da Vinci painted the Mona Lisa."]),
    (
        ["what is the largest planet?", "biggest planet in the solar system"],
        ["Jupiter is the largest planet in our solar system."],
    ),
    (["how many legs does a spider have?"], ["A spider has eight legs."]),
    (
        ["what is H2O?", "what's the chemical formula for water"],
        ["H2O is water: two hydrogen atoms and one oxygen atom."],
    ),
    (
        ["who was the first person on the moon?"],
        ["Neil Armstrong was the first person to walk on the Moon, in 1969."],
    ),
    (
        ["what's the tallest mountain in the world?", "highest mountain on earth"],
        ["Mount Everest is the tallest mountain above sea level, at about 8,849 meters."],
    ),
    (["how many hours in a day?"], ["A day has 24 hours."]),
    (["what language do they speak in Brazil?"], ["People in Brazil speak Portuguese."]),
    (
        ["what is photosynthesis?"],
        [
            "Photosynthesis is how plants turn light, water and carbon dioxide into sugar and oxygen."
        ],
    ),
    (["what is the speed of light?"], ["Light travels at about 300,000 kilometers per second."]),
    (
        ["what's the longest river?", "longest river in the world"],
        ["The Nile and the Amazon are the longest rivers, each about 6,500 km."],
    ),
    (["how many sides does a hexagon have?"], ["A hexagon has six sides."]),
    (["what is the freezing point of water in fahrenheit?"], ["Water freezes at 32°F."]),
    (
        ["who invented the telephone?"],
        ["Alexander Graham Bell is credited with inventing the telephone in 1876."],
    ),
    (["what is the smallest prime number?"], ["The smallest prime number is 2."]),
    (
        ["how many planets are in the solar system?"],
        ["There are eight planets in the solar system."],
    ),
    (
        ["what is DNA?"],
        ["DNA is the molecule that carries the genetic instructions of living things."],
    ),
    (["what does CPU stand for?"], ["CPU stands for central processing unit."]),
    (["what is the capital of Australia?"], ["The capital of Australia is Canberra."]),
    (["how many minutes are in an hour?"], ["There are 60 minutes in an hour."]),
    (["what is the opposite of hot?"], ["The opposite of hot is cold."]),
    (["what's a synonym for happy?"], ["A synonym for happy is joyful."]),
    (
        ["what is python?", "what is the python programming language"],
        ["Python is a popular programming language known for its readable code."],
    ),
    (["who is the author of Harry Potter?"], ["J.K. Rowling wrote the Harry Potter books."]),
    (["what year did World War II end?"], ["World War II ended in 1945."]),
    (["how many bones are in the human body?"], ["An adult human body has 206 bones."]),
    (["what gas do plants breathe in?"], ["Plants take in carbon dioxide and release oxygen."]),
    (["what's the plural of mouse?"], ["The plural of mouse is mice."]),
    (["what is the square root of 81?"], ["The square root of 81 is 9."]),
    (["what is 2 + 2?", "what's two plus two"], ["2 + 2 = 4."]),
    (["which ocean is the largest?"], ["The Pacific Ocean is the largest."]),
    (
        ["explain gravity in one sentence"],
        ["Gravity is the force that pulls objects with mass toward each other."],
    ),
    (["what is a noun?"], ["A noun is a word for a person, place, thing or idea."]),
]
