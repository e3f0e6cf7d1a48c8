"""Word banks of the offline text backend.

Combined with words taken from each world's own prompt, they give every world its flavour
and enough combinations that a feed of hundreds of posts does not repeat itself. Order
matters (picks are by index from a seeded RNG): append, never reorder, or every
offline world changes.
"""

from __future__ import annotations

FIRST_NAMES = (
    "Mira", "Tomas", "Aiko", "Kwame", "Lena", "Rafael", "Ines", "Oskar", "Yara", "Dmitri",
    "Noor", "Felix", "Amara", "Joon", "Sofia", "Ilya", "Priya", "Mateo", "Hana", "Emeka",
    "Freya", "Luca", "Zainab", "Arjun", "Elif", "Nikolai", "Ayesha", "Bruno", "Chiara", "Dario",
    "Esme", "Farah", "Gideon", "Hugo", "Ingrid", "Jasper", "Kaia", "Leif", "Marisol", "Nadia",
    "Orin", "Paloma", "Quentin", "Rosa", "Soren", "Talia", "Umar", "Vera", "Wren", "Ximena",
    "Yusuf", "Zora", "Anouk", "Bastian", "Celeste", "Dalia", "Emil", "Fenna", "Goran", "Halima",
    "Ivo", "Juno", "Kasimir", "Lorcan", "Maelle", "Nils", "Odette", "Pavel", "Rhea", "Selin",
    "Teodor", "Una", "Viggo", "Wanjiru", "Yasmin", "Zeno", "Alba", "Cyrus", "Dagny", "Ezra",
    "Greta", "Idris", "Jana", "Kenji", "Lucia", "Malik", "Nova", "Olek", "Petra", "Ravi",
    "Saoirse", "Tariq", "Vesna", "Xavi", "Yuki", "Zuri",
)  # fmt: skip

LAST_NAMES = (
    "Vale", "Okafor", "Lindqvist", "Moreau", "Takeda", "Abara", "Kovac", "Delgado", "Novak",
    "Haddad", "Sato", "Brennan", "Castell", "Duarte", "Eriksen", "Ferreira", "Galloway",
    "Hartmann", "Ibarra", "Jansen", "Kaur", "Larsen", "Mendoza", "Nakamura", "Oyelaran",
    "Petrov", "Quinn", "Rahimi", "Santos", "Thorne", "Uchida", "Varga", "Whitlock", "Yilmaz",
    "Zielinski", "Achterberg", "Blackwood", "Carvalho", "Dubois", "Estrada", "Falk", "Grimaldi",
    "Holm", "Iwasaki", "Juarez", "Kiplagat", "Lorenz", "Marchetti", "Nilsen", "Orlov",
    "Pereira", "Rasmussen", "Sorensen", "Tanaka", "Ulloa", "Vasquez", "Wexley", "Yoon",
    "Zamora", "Ashdown", "Bianchi", "Crane", "Daskalov", "Ekwueme", "Fontaine", "Greer", "Hale",
    "Ionescu", "Jovanovic", "Kang", "Lowe", "Mbeki", "Navarro", "Oakes", "Pryce", "Rowan",
    "Sable", "Tamura", "Underhill", "Voss", "Winter", "Xu", "Yates", "Zeller",
)  # fmt: skip

OCCUPATIONS = (
    "night-market cook", "cartographer", "street musician", "apprentice engineer",
    "retired sailor", "botanist", "courier", "archivist", "tea-house owner", "stunt pilot",
    "schoolteacher", "lighthouse keeper", "tailor", "beekeeper", "radio host", "photographer",
    "mechanic", "midwife", "astronomer", "fisher", "baker", "glassblower", "bookbinder", "nurse",
    "ferry captain", "gardener", "scrap collector", "historian", "chef", "dancer", "painter",
    "blacksmith", "brewer", "carpenter", "librarian", "student", "mail carrier", "shopkeeper",
    "potter", "translator", "architect", "night guard", "herbalist", "weather watcher",
    "tour guide", "toy maker", "barista", "journalist", "tattoo artist", "shepherd",
)  # fmt: skip

PLACES = (
    "the {kw} quarter", "a workshop near the {kw}", "the edge of the {kw} district",
    "a rooftop above the {kw} market", "the old {kw} road", "a narrow street behind the {kw}",
    "the {kw} docks", "a courtyard full of {kw}", "the hill overlooking the {kw}",
    "a tiny flat by the {kw}",
)  # fmt: skip

HOOKS = (
    "keeps a notebook of every {kw} they have ever seen",
    "is quietly afraid of {kw} and hides it well",
    "collects stories from strangers and retells them badly",
    "goes out at dawn whatever the weather",
    "has never once left {place}",
    "answers every question with another question",
    "is rebuilding an old {thing} piece by piece",
    "feeds every stray animal on the street",
    "writes letters to the {kw} that they never send",
    "is training for a record nobody else cares about",
    "knows the history of every {thing} in town",
    "runs a secret supper club about {kw}",
    "is convinced the {kw} is trying to tell them something",
    "trades favours instead of money",
    "keeps moving house and documents each move",
    "has a rivalry with a neighbour over a {thing}",
    "is learning an instrument late in life",
    "photographs the same {thing} every single day",
    "hosts a loud weekly gathering about {kw}",
    "rescues broken {thing}s and gives them away",
    "measures everything, including feelings",
    "still believes the old legends about the {kw}",
    "is the first to hear every rumour",
    "grows impossible plants on a tiny balcony",
    "refuses to own anything they cannot carry",
    "maps shortcuts nobody else uses",
)  # fmt: skip

TRAITS = (
    "curious", "stubborn", "gentle", "sardonic", "restless", "meticulous", "warm", "shy",
    "bold", "dreamy", "practical", "nostalgic", "competitive", "generous", "skeptical",
    "playful", "earnest", "patient", "impulsive", "proud", "anxious", "cheerful", "blunt",
    "romantic", "methodical", "mischievous", "loyal", "solitary", "talkative", "stoic",
)  # fmt: skip

VALUES = (
    "values loyalty above comfort", "believes every object has a story",
    "would rather be kind than right", "cannot resist a good argument",
    "measures a day by what they made", "trusts food more than words",
    "keeps promises to a fault", "distrusts anything too shiny",
    "thinks the best things happen by accident", "wants to be remembered for one good thing",
    "hates waste in all its forms", "collects people the way others collect stamps",
    "treats every stranger as a future friend", "lives for small rituals",
)  # fmt: skip

INTERESTS = (
    "street food", "old maps", "night walks", "gardening", "music", "repairing things",
    "local gossip", "weather", "photography", "cooking", "history", "sport", "poetry",
    "markets", "architecture", "stargazing", "boats", "birds", "tea", "fashion", "games",
    "dancing", "trains", "cats", "books", "machines", "festivals", "rain", "handwriting",
    "bread", "swimming", "puzzles", "folk tales", "maps of the sky", "pottery", "bicycles",
)  # fmt: skip

#: (voice, description): the description is the profile's speaking style, the voice shapes
#: how captions are written.
SPEAKING_STYLES = (
    ("plain", "Short, plain sentences; says exactly what happened and little else."),
    ("lower", "Writes all in lowercase with loose punctuation and dry humour."),
    ("emoji", "Warm and chatty, sprinkles emoji at the end of sentences."),
    ("formal", "Careful, slightly formal phrasing; signs off with an initial."),
    ("excited", "Enthusiastic and breathless, generous with exclamation marks."),
    ("poetic", "Lyrical, notices light and sound, trails off with ellipses."),
    ("questions", "Thinks out loud and ends by asking followers a question."),
    ("terse", "Telegraphic fragments. Few words. No fluff."),
)  # fmt: skip

AGES = (
    "in their early twenties", "in their late twenties", "in their thirties",
    "in their forties", "middle-aged", "in their late fifties", "in their sixties",
    "elderly", "barely out of school",
)  # fmt: skip

HAIR = (
    "short curly black hair", "a long silver braid", "a shaved head", "messy auburn hair",
    "tightly coiled hair under a scarf", "a neat grey bob", "sun-bleached shaggy hair",
    "two dark braids", "a bright dyed streak in dark hair", "thinning white hair",
    "a tall afro", "a tidy black ponytail", "wavy chestnut hair", "cropped red hair",
)  # fmt: skip

CLOTHING = (
    "a patched canvas work jacket", "a faded floral shirt", "an oversized knitted sweater",
    "a sharp tailored coat", "oil-stained overalls", "a long travelling cloak",
    "a crisp uniform with polished buttons", "layers of mismatched scarves",
    "a linen apron over rolled sleeves", "a weathered leather vest",
    "a bright raincoat", "an embroidered tunic", "a simple dark turtleneck",
)  # fmt: skip

DETAILS = (
    "round wire glasses", "a small scar across one eyebrow", "ink-stained fingers",
    "a chipped front tooth in a wide grin", "a row of earrings", "freckles everywhere",
    "a carefully waxed moustache", "a pencil tucked behind one ear", "a worn pendant",
    "paint under the fingernails", "a tattoo of a {kw} on the wrist", "deep laugh lines",
    "a flower pinned to the collar", "a camera strap around the neck",
)  # fmt: skip

EXPRESSIONS = (
    "a half-smile", "a curious look", "a confident grin", "a thoughtful expression",
    "a tired but kind face", "raised eyebrows", "a warm laugh", "a steady gaze",
)  # fmt: skip

BIOS = (
    "{Occupation} by day, {interest} nerd by night. Posting from {place}.",
    "Born near the {kw}. {Occupation}. Here for {interest} and small victories.",
    "{Occupation}. {Trait} about {interest}. Will talk to you about the {kw} for hours.",
    "I work as a {occupation} and notice everything. Mostly {interest}.",
    "Still figuring it out. {Occupation}, {interest}, and too much {kw}.",
    "{Occupation} from {place}. Opinions on {interest} available on request.",
    "Professional {occupation}, amateur {interest} expert, lifelong {kw} fan.",
    "Documenting life around the {kw}, one {interest} at a time.",
    "{Trait} {occupation}. Ask me about {interest}.",
    "If it involves {interest} or the {kw}, I was probably there.",
)  # fmt: skip

SETTINGS = (
    "Life in {name} gathers around {kw1} and {kw2}; people work, trade and gossip in the "
    "shadow of {kw3}, and every season brings its own small festival.",
    "{name} is a patchwork of neighbourhoods shaped by {kw1}. Mornings start at the "
    "{kw2} market, evenings end on rooftops arguing about {kw3}.",
    "In {name}, {kw1} is part of everyday life. Narrow streets lead to {kw2}, and "
    "everyone has a story about {kw3}.",
    "{name} runs on routine and rumour: {kw1} at dawn, {kw2} by noon, and long nights "
    "spent talking about {kw3}.",
    "The people of {name} live between {kw1} and {kw2}, mending what breaks and "
    "celebrating whatever {kw3} brings.",
    "{name} is small enough that everyone knows everyone. Its heart is {kw1}; its "
    "pride is {kw2}; its oldest argument is about {kw3}.",
)  # fmt: skip

SUMMARIES = (
    "{name} is a world of {kw1}, {kw2} and {kw3}. Its people share their days, "
    "their work and their small discoveries here.",
    "Welcome to {name}, where {kw1} meets {kw2}. Everyone here has a story about {kw3}.",
    "{name}: {kw1}, {kw2}, and a community that never stops talking about {kw3}.",
    "A world built around {kw1} and {kw2}. In {name}, even {kw3} has regulars.",
)  # fmt: skip

TONES = (
    "warm and curious", "wry and observant", "hopeful despite everything",
    "cosy, slow and neighbourly", "bright and adventurous", "moody and contemplative",
    "playful and a little chaotic", "earnest and community-minded", "dreamy and strange",
    "gritty but tender", "quietly funny",
)  # fmt: skip

MEDIA = (
    "soft painterly illustration", "35mm film photography", "detailed digital painting",
    "watercolour and ink", "cinematic photography", "gouache storybook illustration",
    "retro-futurist poster art", "clean semi-realistic 3D render", "grainy documentary photos",
    "hand-drawn comic style with flat colours",
)  # fmt: skip

PALETTES = (
    "warm ambers and deep teals", "muted pastels", "neon accents on deep blue",
    "earthy greens and ochres", "sun-washed whites and sea blues", "rich jewel tones",
    "sepia and faded red", "cool greys with a single warm accent", "candy-bright colours",
    "dusky violets and gold",
)  # fmt: skip

LIGHTING = (
    "golden-hour light", "soft overcast light", "lantern glow", "crisp morning light",
    "moody low-key lighting", "dappled light through leaves", "harsh midday sun",
    "blue-hour twilight",
)  # fmt: skip

THEMES = (
    "daily work", "neighbourhood life", "food and cooking", "festivals", "friendship",
    "small discoveries", "weather and seasons", "craft and repair", "travel", "rumours",
    "rivalries", "love and longing", "old traditions", "new inventions", "nightlife",
    "nature", "music", "trade", "memory", "family",
)  # fmt: skip

THINGS = (
    "lantern", "bicycle", "teapot", "map", "notebook", "kite", "radio", "umbrella", "boat",
    "clock", "jar of honey", "loaf of bread", "pair of boots", "letter", "camera", "guitar",
    "plant cutting", "key", "chair", "window box", "bowl of noodles", "scarf", "ladder",
    "compass", "sketchbook", "mug", "basket of fruit", "street sign", "candle", "telescope",
)  # fmt: skip

MOTIFS = (
    "lanterns", "market stalls", "old bicycles", "rooftops", "tea cups", "street signs",
    "small boats", "stone bridges", "stray cats", "hidden gardens", "steam and smoke",
    "hand-painted shopfronts", "washing lines", "spiral staircases", "clock towers",
    "paper kites", "tiled courtyards", "rain puddles", "crowded trams", "window plants",
)  # fmt: skip

TIMES = (
    "this morning", "at dawn", "just now", "tonight", "after the rain", "on my lunch break",
    "before anyone else was awake", "late last night", "on the way home", "this afternoon",
    "at the end of a long shift", "during the festival", "in the first cold hour of the day",
    "while waiting for the tram", "right before closing", "on my day off",
)  # fmt: skip

ACTIONS = (
    "fixed", "found", "sketched", "tasted", "walked past", "traded for", "photographed",
    "lost and found again", "repaired", "cooked with", "argued about", "painted",
    "finally finished", "borrowed", "rediscovered", "carried home", "built", "cleaned",
)  # fmt: skip

ADJECTIVES = (
    "tiny", "battered", "glowing", "ridiculous", "perfect", "strange", "quiet", "stubborn",
    "beautiful", "ancient", "brand-new", "crooked", "shimmering", "humble", "enormous",
    "forgotten", "lucky", "noisy", "delicate", "suspicious", "sun-warmed", "soggy",
    "magnificent", "lopsided", "secret",
)  # fmt: skip

FEELINGS = (
    "oddly proud", "a little homesick", "ridiculously happy", "tired but good", "restless",
    "grateful", "nostalgic", "curious", "completely calm", "slightly worried",
    "full of plans", "annoyed and amused at once", "lighter than yesterday", "inspired",
)  # fmt: skip

OPENERS = (
    "{Time} I {action} a {adj} {thing}.",
    "Quick one:",
    "Okay, confession:",
    "Small joys, part {n}:",
    "Report from {place}:",
    "Not sure who needs to hear this:",
    "Day {n} of my {interest} project.",
    "{Time}, the whole street smelled of {kw}.",
    "Update nobody asked for:",
    "Some days are made of {kw}.",
    "Field notes, {time}:",
    "This was {time}.",
    "Tell me I'm not the only one:",
    "A thing happened {time}.",
    "Still thinking about {time}.",
    "Me, {time}:",
    "Reminder to myself:",
    "Can we talk about {interest} for a second?",
    "News from my corner of the world:",
    "Proof that {time} was worth getting up for.",
)  # fmt: skip

BODIES = (
    "Spent an hour watching the {kw} and felt {feeling}.",
    "The {kw} was {adj} today, and so was I.",
    "Someone left a {adj} {thing} by the {kw}. I have questions.",
    "Tried to explain {interest} to a stranger near the {kw}. They stayed for tea.",
    "The light over the {kw} did something I still can't describe.",
    "I {action} a {adj} {thing} and now I can't stop thinking about the {kw}.",
    "Every time I pass the {kw} I notice something new. Today: a {adj} {thing}.",
    "My {interest} habit has officially taken over the flat. Blaming the {kw}.",
    "Nobody warned me the {kw} would be this {adj} at this hour.",
    "Traded a story about the {kw} for a {adj} {thing}. Good deal.",
    "Walked the long way round the {kw} just to feel {feeling}.",
    "If you hear a {adj} noise near the {kw}, that was me and my {thing}.",
    "Three things I learned about {interest} today, all thanks to the {kw}.",
    "Turns out the {kw} is best enjoyed with a {thing} and zero plans.",
    "There is a {adj} {thing} in my life now and it came from the {kw}.",
    "The regulars at the {kw} have opinions about my {thing}. Loud ones.",
    "Sat by the {kw} until my tea went cold. {Feeling}.",
    "Kept count of the {kw} on my route: more than yesterday, fewer than I hoped.",
    "Made a list of everything {adj} around the {kw}. It got long.",
    "The {kw} and I have an understanding now. Mostly.",
    "Fixed my {thing}, broke my {thing}, found a {adj} view of the {kw}.",
    "Half the street came out to see the {kw} {time}.",
    "Somebody has to keep records of the {kw}. Apparently it's me.",
    "Brought my {thing} to the {kw}. Regret nothing.",
)  # fmt: skip

SECONDS = (
    "Feeling {feeling}.",
    "Worth every minute.",
    "My {interest} notebook is filling up fast.",
    "The {thing} stays, obviously.",
    "Tomorrow I'm going back with better shoes.",
    "Yes, I took too many pictures.",
    "The neighbours think I've lost it.",
    "Somewhere, my old teacher is shaking their head.",
    "Small world, big {kw}.",
    "Adding it to the list of {adj} things.",
    "Still smiling about it.",
    "Do not ask how long it took.",
    "Next time, I'm bringing snacks.",
    "It smelled like {kw} and rain.",
    "I regret nothing, except the {thing}.",
)  # fmt: skip

CLOSERS = (
    "More soon.",
    "Who else was there?",
    "Worth it.",
    "Ask me about it.",
    "Same time tomorrow?",
    "That's the post.",
    "Carry on.",
    "You had to be there.",
    "Anyway.",
    "Recommendations welcome.",
    "Send help (or tea).",
    "See you by the {kw}.",
    "",
    "",
)  # fmt: skip

QUESTIONS = (
    "What would you have done?",
    "Anyone else seen this?",
    "Tell me your favourite spot by the {kw}?",
    "Am I overthinking it?",
    "Should I go back tomorrow?",
    "Who's coming next time?",
)  # fmt: skip

EMOJI = ("✨", "🌙", "☕", "🌿", "🔥", "🎶", "🌧️", "🧭", "📸", "🍞", "💛", "🌊", "🏮", "🐾")

SHOTS = (
    "close-up photo", "wide shot", "overhead view", "candid snapshot", "street-level view",
    "still life", "window view", "low-angle shot",
)  # fmt: skip

STOPWORDS = frozenset(
    """
    about above after again against also among another around because been before being
    below between both could does doing down during each every from further have having
    here into itself just more most much must only other over same should some such than
    that their theirs them themselves then there these they this those through under until
    very were what when where which while whom with within without would your yours
    world worlds people everyone someone something character characters post posts social
    network generia make made like want wants please create every full many kind lots
    will shall each place places thing things where live lives living
    """.split()
)
