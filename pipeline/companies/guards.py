"""False-positive guards: names, tickers and contexts that look like a company and are not.

Precision comes before recall: a wrong company in an alert email costs more trust than a
missed one. Every set holds lower-case text and applies to any universe or watchlist, so
a user-supplied "Target" or "Apollo" is guarded like the bundled one.
"""

from __future__ import annotations

# Names that are also English words or places ("Target prices", "apple harvest", "Visa
# rules", "Shell shock"). Where a capital letter proves nothing -- at the start of a
# sentence, in a Title Case or ALL CAPS headline -- they link only when company words
# follow ("Target to cut jobs", "Apple's sales", "Oracle shares") or precede ("retailer
# Target"), or when the text links the same company by a stronger signal.
WORD_NAMES = frozenset(
    {
        "apple", "amazon", "target", "visa", "oracle", "block", "square", "shell", "meta",
        "alphabet", "carnival", "progressive", "travelers", "mosaic", "tapestry", "workday",
        "caterpillar", "carrier", "charter", "coherent", "flex", "vertex", "axon", "dover",
        "canon", "arm", "vale", "reliance", "anthem", "best buy", "global payments",
        "old dominion", "adobe", "gap", "puma", "match", "snap", "coach", "compass", "sunrise",
        "summit", "pinnacle", "harbor", "crest", "key", "general", "national", "american",
        "first", "united", "delta", "monster", "public storage", "genuine parts", "booking",
        "align", "cognizant", "microchip", "micron", "check point", "occidental", "coke",
    }
)  # fmt: skip

# Names that are mostly something else -- an index ("Dow", "Nasdaq"), a space mission
# ("Apollo"), a god, a city, a product category. They link only with explicit company
# context: "Nasdaq Inc", "Nasdaq shares", "exchange operator Nasdaq", or a stronger signal.
CONTEXT_NAMES = frozenset(
    {
        "dow", "nasdaq", "apollo", "ares", "southern", "hartford", "waters", "msci", "fox",
        "apa", "ball", "everest", "news", "prudential", "mitsubishi", "vinci", "ptc", "s&p",
        "principal", "regions", "citizens", "huntington", "edison", "constellation",
        "paramount", "sands", "williams", "cooper", "jacobs", "ross", "apache", "eqt", "casey's",
    }
)  # fmt: skip

# Company names that people carry ("Harrison Ford", "Michael Dell", "Greg Abbott"): no
# link right after a first name or a title.
PERSON_NAMES = frozenset(
    {
        "ford", "dell", "tesla", "disney", "hilton", "marriott", "schwab", "goldman", "abbott",
        "stryker", "gallagher", "lennox", "otis", "emerson", "eaton", "tyson", "zimmer",
        "grainger", "kraft", "lilly", "ralph lauren", "wynn", "hershey", "merck", "deere",
        "ferrari", "porsche", "honda", "mercedes", "philips", "rollins", "cummins", "boeing",
        "kroger", "mckesson", "morgan", "chase", "loews", "lowe's", "humana", "baxter",
        "mccormick", "mcdonald's", "roche", "raymond james", "jack henry",
    }
)  # fmt: skip
FIRST_NAMES_AND_TITLES = frozenset(
    {
        "mr", "mrs", "ms", "dr", "sir", "lord", "lady", "gov", "governor", "sen", "senator",
        "rep", "president", "judge", "justice", "prince", "king", "queen", "saint", "st",
        "harrison", "gerald", "henry", "betty", "edsel", "bill", "tom", "jim", "john", "michael",
        "nikola", "greg", "klaus", "paris", "conrad", "steve", "elaine", "roy", "hans",
        "robert", "maxine", "mike", "neil", "eli", "enzo", "ferdinand", "soichiro", "james",
        "david", "mark", "paul", "peter", "george", "richard", "william", "joseph", "thomas",
        "charles", "daniel", "matthew", "anthony", "donald", "kevin", "brian", "jason", "ryan",
        "gary", "larry", "jeff", "scott", "eric", "stephen", "andrew", "edward", "frank",
        "tony", "jack", "kate", "mary", "patricia", "jennifer", "linda", "elizabeth", "susan",
        "sarah", "karen", "nancy", "lisa", "margaret", "sandra", "ashley", "emily", "anna",
        "ralph", "walter", "harold", "arthur", "lucy", "sophie", "emma", "olivia", "laura",
        "doug", "ben", "sam", "joe", "chris", "dan", "matt", "nick", "alex", "will", "harry",
        "martin", "leo", "max", "felix", "victor", "oscar", "bruce", "kenneth", "ken", "rob",
        "ronald", "hugh", "dave", "jerome", "tim",
    }
)  # fmt: skip
# After a person-like name, these make it a person or a place, not the company.
PERSON_FOLLOWERS = frozenset(
    {"foundation", "administration", "presidency", "field", "center", "library", "museum", "school"}
)

# Two-token pairs where the first is a universe name and the whole is another company or
# thing ("Volvo Cars" is not AB Volvo, "Dow Jones" is an index, "Merck KGaA" is German).
DIFFERENT_THINGS = frozenset(
    {
        ("volvo", "cars"), ("daimler", "truck"), ("merck", "kgaa"), ("dow", "jones"),
        ("nasdaq", "composite"), ("nasdaq", "100"), ("fox", "news"), ("hyundai", "heavy"),
        ("samsung", "biologics"), ("samsung", "sdi"), ("samsung", "heavy"), ("tata", "steel"),
        ("msci", "world"), ("msci", "emerging"), ("msci", "acwi"), ("msci", "index"),
        ("shell", "company"), ("shell", "companies"), ("apple", "daily"), ("amazon", "rainforest"),
        ("target", "date"), ("target", "price"), ("target", "prices"), ("target", "rate"),
        ("carnival", "cruise"), ("porsche", "se"), ("ford", "foundation"), ("the hartford", "courant"),
        ("adp", "news"), ("gm", "of"),
        ("lloyds", "steel"), ("square", "garden"), ("square", "enix"),
        ("bayer", "leverkusen"), ("siemens", "healthineers"), ("mitsubishi", "motors"),
        ("delta", "variant"), ("delta", "force"), ("delta", "region"), ("apollo", "program"),
        ("apollo", "mission"), ("apollo", "hospitals"), ("apollo", "tyres"),
        # Genetically modified, not General Motors: "GM crops", "GM mustard".
        *(("gm", w) for w in ("crop", "crops", "food", "foods", "seed", "seeds", "mustard",
                              "cotton", "maize", "corn", "wheat", "soy", "rice", "mosquitoes")),
        # Coca-Cola's bottlers are other listed companies.
        *((coke, w) for coke in ("coca - cola", "coca cola")
          for w in ("amatil", "hbc", "femsa", "europacific", "consolidated", "icecek", "bottling")),
        ("mitsubishi", "heavy"), ("mitsubishi", "electric"), ("mitsubishi", "chemical"),
        ("mitsubishi", "estate"), ("mitsubishi", "ufj"),
    }
)  # fmt: skip

# (word before, name): the name then means something else, in any position and any case
# ("Raises Price Target to $260", the most common broker headline; "Schengen Visa").
DIFFERENT_AFTER = frozenset(
    {
        *(
            (word, "target")
            for word in (
                "price", "earnings", "inflation", "sales", "profit", "revenue", "growth",
                "emissions", "deficit", "output", "production", "margin", "takeover",
                "acquisition", "buyout", "rate", "spending", "cost", "debt", "climate", "return",
                "budget", "savings", "capex", "delivery", "deliveries", "guidance", "valuation",
            )
        ),
        *((word, "visa") for word in ("schengen", "golden", "student", "work", "tourist", "travel", "entry")),
        ("nokia", "siemens"),  # Nokia Siemens Networks, Nokia's network arm
        *(
            (river, "delta")
            for river in (
                "mekong", "mississippi", "nile", "niger", "river", "yangtze", "sacramento", "okavango",
            )
        ),
    }
)  # fmt: skip

# Word names that are places after "the" ("protect the Amazon", "deforestation in the
# Amazon falls"): there they are the company only before one of its nouns ("the Amazon
# deal", "the Amazon founder") or with a stronger signal in the text.
THE_PLACES = frozenset({"amazon"})
THE_COMPANY_NOUNS = frozenset(
    {"deal", "founder", "ceo", "stock", "shares", "share", "stake", "unit", "division", "bid",
     "offer", "warehouse", "warehouses", "workers", "employees", "executives", "store", "stores",
     "platform", "app", "acquisition", "investment", "spokesperson", "spokesman", "spokeswoman",
     "subsidiary", "boss", "chief", "owner", "rival"}
)  # fmt: skip

# The same, only as written with a capital: "the Big Apple", not "wins big Apple order".
DIFFERENT_AFTER_CASED = frozenset({("Big", "apple")})

# Words after a hyphen that make the name before it a company: "Amazon-backed Anthropic",
# "Meta-owned WhatsApp".
HYPHEN_FOLLOWERS = frozenset(
    {"backed", "owned", "led", "funded", "controlled", "operated", "run", "made", "branded", "supplied"}
)

# Words after a name that make it a company in any position (headline-initial included).
COMPANY_FOLLOWERS = frozenset(
    {
        "inc", "corp", "co", "plc", "ltd", "ag", "se", "sa", "nv", "group", "shares", "share",
        "stock", "stake", "says", "said", "to", "will", "would", "could", "may", "is", "was",
        "has", "had", "reports", "reported", "posts", "posted", "beats", "beat", "misses",
        "missed", "raises", "raised", "cuts", "cut", "slashes", "lifts", "boosts", "hikes",
        "sees", "expects", "forecasts", "warns", "plans", "launches", "unveils", "announces",
        "agrees", "buys", "bought", "sells", "sold", "acquires", "acquired", "files", "sues",
        "sued", "faces", "wins", "won", "loses", "lost", "hires", "names", "appoints",
        "recalls", "rises", "rose", "jumps", "jumped", "gains", "gained", "climbs", "surges",
        "soars", "rallies", "falls", "fell", "drops", "dropped", "slips", "slides", "sinks",
        "tumbles", "plunges", "slumps", "dips", "rebounds", "earnings", "results", "revenue",
        "profit", "profits", "sales", "ceo", "cfo", "chief", "quarterly", "q1", "q2", "q3",
        "q4", "deal", "bid", "ipo", "layoffs", "investors", "shareholders", "board", "tops",
        "lowers", "trims", "ups", "downgraded", "upgraded", "downgrade", "upgrade", "outlook",
        "guidance", "dividend", "buyback", "settles", "confirms", "denies", "invests",
        "stores", "rival", "executives", "boss", "adds", "nears", "weighs", "mulls", "eyes",
        "hits", "sets", "gets", "nabs", "lands", "delays", "pushes", "opens", "closes", "pays",
        "offers", "ends", "halts", "suspends", "bets", "signs", "seeks", "struggles", "extends",
        "expands", "shuts", "shutters", "reaches", "strikes", "partners", "teams", "joins",
        "initiated", "valuation", "moves", "makes", "takes", "gives", "reveals", "unveiled",
        "considers", "explores", "readies", "supplier", "suppliers", "analyst", "analysts",
        "employees", "workers", "unit", "subsidiary", "founder", "spokesperson", "spokesman",
        "spokeswoman",
    }
)  # fmt: skip
# Words before a name that say it is a company ("retailer Target", "exchange operator
# Nasdaq", "shares of Oracle").
DESCRIPTORS = frozenset(
    {
        "firm", "company", "maker", "chipmaker", "automaker", "carmaker", "operator", "giant",
        "retailer", "lender", "bank", "insurer", "group", "owner", "parent", "rival", "rivals",
        "peer", "peers", "conglomerate", "producer", "supplier", "provider", "manager",
        "investor", "developer", "platform", "startup", "brand", "airline", "miner", "major",
        "titan", "behemoth", "processor", "network", "distributor", "utility", "railroad",
        "pharma", "drugmaker", "biotech", "exchange", "insurers", "banks", "lenders",
    }
)  # fmt: skip
# Words after a name that is mostly something else (an index, a mission, a network) that
# make it the company: "Nasdaq Inc", "Dow Reports Second Quarter Results", "Fox declares
# dividend". Not "to" or "rises": "Dow to open higher" is the index.
CONTEXT_FOLLOWERS = frozenset({"inc", "corp", "incorporated", "shares", "plc"})
# A company's own verbs, which count for such a name only when a results word follows
# within three words ("Nasdaq Reports Second Quarter 2025 Results", "Dow declares quarterly
# dividend"); "News reports say", "Southern reported heavy storms" stay unlinked.
CONTEXT_VERBS = frozenset({"reports", "reported", "announces", "announced", "declares", "declared", "posts"})
RESULTS_WORDS = frozenset(
    {"quarter", "quarterly", "results", "earnings", "dividend", "q1", "q2", "q3", "q4", "first",
     "second", "third", "fourth", "fiscal", "annual", "full", "profit", "revenue"}
)  # fmt: skip

# Only these follow "of" in "shares of X", "stake in X": a bare "of" is no descriptor.
OF_HEADS = frozenset({"shares", "stake", "stock", "ceo", "owner", "chief", "investors", "shareholders"})

# Bare tickers that are words, names or common acronyms: linked only as $ICE or NYSE: ICE.
WORD_TICKERS = frozenset(
    {
        "A", "ALL", "AN", "ARE", "AS", "AT", "BE", "BIG", "BY", "CAN", "CAR", "CAT", "CEO", "DO",
        "EAT", "FAST", "FOR", "FUN", "GO", "GOOD", "HAS", "HE", "HI", "I", "IT", "KEY", "LOW",
        "MAN", "NEW", "NOW", "OLD", "ON", "ONE", "OR", "OUT", "PLAY", "REAL", "RUN", "SEE", "SO",
        "TV", "TWO", "UP", "US", "WELL", "YOU", "AI", "EV", "IPO", "GDP", "CPI", "SEC", "FED",
        "USA", "UK", "EU", "NYSE", "COST", "DASH", "DECK", "DOC", "DOW", "ECHO", "FIX", "FLEX",
        "GEN", "HOOD", "HUM", "ICE", "KEYS", "KIM", "LEN", "MAS", "MET", "REG", "TAP", "TECH",
        "TEL", "XYZ", "APP", "AMP", "ARES", "COO", "COR", "LITE", "LUV", "PEAK", "POOL", "DAY",
        "CMS", "APA", "PTC", "FICO", "SPOT", "RACE", "SHOP", "ARM", "BUD", "SAN", "RIO", "VALE",
        "WIT", "ERIC", "TKO", "MSCI", "NDAQ", "BALL", "NEWS", "FOX", "WAT", "EXE", "TER",
        "TRI", "ING", "BEN", "CASH", "CASY", "EVRG", "WY", "ED", "ES", "EL", "FE", "IP", "IR",
        "CEG", "CNC", "CRL", "EOG", "MO", "MAR", "ROL", "SNA", "STE", "SW", "TT", "TXT", "PH",
        "PM", "MS", "GS", "BA", "HD", "MA", "PG", "V", "T", "C", "F", "D", "J", "L", "O", "Q",
        "B", "E", "CB", "CF", "CI", "CL", "DD", "DE", "DG", "EG", "GD", "GE", "GL", "GM", "HP",
        "KO", "KR", "LH", "MU", "NI", "RF", "RL", "TD", "TM", "UL", "VZ", "WM", "BN",
        "RY", "DB", "JD", "LI", "BX", "BR", "BG", "CAH", "AME", "WEC", "DTE", "AEE", "NEE",
        "VMC", "OMC", "CCI", "STT", "IEX", "CCL", "CHRW", "ETR", "HAL", "HIG", "SPY", "QQQ",
        # A central bank's Monetary Policy Committee, Groupe PSA (Peugeot), the FANG stocks,
        # the Norwegian krone ("NOK 70 million").
        "MPC", "PSA", "FANG", "NOK",
    }
)  # fmt: skip

# Capitalised words after a bare ticker that make it the start of another company's name
# ("ECL Finance", "SWK Holdings", "MGM Growth Properties", "VST Industries").
LISTING_NAME_WORDS = frozenset(
    {
        "holdings", "holding", "industries", "finance", "financial", "growth", "properties",
        "capital", "partners", "technologies", "resources", "ventures", "realty", "securities",
        "limited", "ltd", "infra", "infrastructure", "minerals", "mining", "pharma",
        "pharmaceuticals", "enterprises", "investments", "bancorp", "bancshares",
    }
)  # fmt: skip

# A company followed by these speaks about another one: "UBS upgrades Orbix", "JPMorgan
# analysts said". It stays linked, as a passing mention.
ANALYST_ACTIONS = frozenset(
    {
        "upgrades", "downgrades", "initiates", "reiterates", "resumes", "assumes", "reinstates",
        "analyst", "analysts", "strategist", "strategists", "economist", "economists",
    }
)  # fmt: skip
# ... and these, when a price target or rating follows: "Barclays trims Pinnacle price
# target", "Moody's places Voltara on review", "Morgan Stanley kept its rating".
TARGET_MOVES = frozenset(
    {
        "raises", "lifts", "boosts", "hikes", "ups", "cuts", "trims", "lowers", "slashes", "sets",
        "kept", "keeps", "maintains", "affirms", "places", "puts", "assigns", "starts", "moves",
    }
)  # fmt: skip
TARGET_WORDS = frozenset(
    {
        "pt",
        "rating",
        "ratings",
        "review",
        "overweight",
        "underweight",
        "outperform",
        "underperform",
        "coverage",
    }
)
