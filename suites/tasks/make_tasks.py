#!/usr/bin/env python3
"""make_tasks.py - writes the shipped evaluation data of suites/tasks/.

    python3 suites/tasks/make_tasks.py mc     # everyday-mc.jsonl (no dependencies)
    python3 suites/tasks/make_tasks.py text   # austen-pp.jsonl (needs Rscript and the
                                              # Debian package r-cran-janeaustenr)

Both outputs are committed; CI reads them and never runs this script. The output is
deterministic: the same script writes the same bytes (fixed seeds, sorted nothing by
hash). check_tasks.py checks the result independently of this file.

everyday-mc: hand-written knowledge, common-sense and language items (the right
answer is written first, then three wrong ones) plus generated arithmetic items whose
answers are computed. Items are shuffled with a fixed seed; the right answer's
position is drawn from a seeded shuffle of exactly n/4 copies of each of 0..3, so every
position holds the answer equally often.
"""
import json
import os
import random
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = 20240601

# (question, right answer, wrong, wrong, wrong): a context "Question: Q\nAnswer:" and
# choices written without a leading space (the task's target_delimiter " " adds it).
KNOWLEDGE = [
    ("How many legs does a spider have?", "eight", "six", "ten", "four"),
    ("How many legs does an insect have?", "six", "eight", "four", "ten"),
    ("How many legs does a bird have?", "two", "four", "six", "three"),
    ("How many legs does a cow have?", "four", "two", "six", "eight"),
    ("How many days are there in a week?", "seven", "five", "six", "eight"),
    ("How many months are there in a year?", "twelve", "ten", "eleven", "thirteen"),
    ("How many hours are there in a day?", "24", "12", "20", "48"),
    ("How many minutes are there in an hour?", "60", "100", "30", "24"),
    ("How many days are there in a leap year?", "366", "365", "364", "360"),
    ("How many years are there in a century?", "100", "10", "1000", "50"),
    ("How many weeks are there in a year?", "52", "48", "36", "60"),
    ("How many days are there in the month of January?", "31", "30", "28", "29"),
    ("Which month of the year has the fewest days?", "February", "January", "April", "June"),
    ("How many sides does a triangle have?", "three", "four", "five", "six"),
    ("How many sides does a hexagon have?", "six", "five", "seven", "eight"),
    ("What do you call a shape with eight sides?", "an octagon", "a hexagon", "a pentagon", "a heptagon"),
    ("How many centimetres are there in a metre?", "100", "10", "1000", "12"),
    ("How many grams are there in a kilogram?", "1000", "100", "10", "500"),
    ("How many players does a soccer team have on the field at one time?", "eleven", "nine", "seven", "fifteen"),
    ("What is the largest planet in our solar system?", "Jupiter", "Mars", "Venus", "Mercury"),
    ("Which planet is closest to the Sun?", "Mercury", "Venus", "Earth", "Mars"),
    ("Which planet is known as the Red Planet?", "Mars", "Venus", "Jupiter", "Saturn"),
    ("Which planet do we live on?", "Earth", "Mars", "Venus", "Jupiter"),
    ("What does the Earth travel around once a year?", "the Sun", "the Moon", "Mars", "Venus"),
    ("Which gas do plants take in from the air to make their food?", "carbon dioxide", "oxygen", "helium", "neon"),
    ("Which gas do people need to breathe in to stay alive?", "oxygen", "helium", "neon", "hydrogen"),
    ("Which gas makes up most of the air we breathe?", "nitrogen", "oxygen", "carbon dioxide", "helium"),
    ("At what temperature in degrees Celsius does pure water freeze at sea level?", "0", "100", "10", "32"),
    ("At what temperature in degrees Celsius does pure water boil at sea level?", "100", "0", "50", "212"),
    ("What is frozen water called?", "ice", "steam", "sand", "salt"),
    ("What is the chemical formula for water?", "H2O", "CO2", "O2", "NaCl"),
    ("What is it called when liquid water slowly turns into a gas?", "evaporation", "condensation", "freezing", "melting"),
    ("Which metal is a liquid at room temperature?", "mercury", "iron", "copper", "gold"),
    ("Which organ pumps blood around the human body?", "the heart", "the lungs", "the liver", "the stomach"),
    ("Which organs do people use to breathe?", "the lungs", "the kidneys", "the liver", "the stomach"),
    ("Which organ do people use to think?", "the brain", "the liver", "the lungs", "the stomach"),
    ("Which sense do people use their ears for?", "hearing", "sight", "smell", "taste"),
    ("What do bees make?", "honey", "milk", "silk", "cheese"),
    ("Which animal has a long trunk?", "the elephant", "the giraffe", "the zebra", "the lion"),
    ("What is the tallest land animal?", "the giraffe", "the elephant", "the horse", "the camel"),
    ("What is the largest animal living on Earth today?", "the blue whale", "the African elephant", "the giraffe", "the great white shark"),
    ("Which of these animals is a mammal?", "the dolphin", "the shark", "the salmon", "the octopus"),
    ("Which of these birds cannot fly?", "the penguin", "the eagle", "the sparrow", "the pigeon"),
    ("What covers the body of a bird?", "feathers", "scales", "fur", "shells"),
    ("What do fish use to breathe in water?", "gills", "lungs", "fins", "scales"),
    ("What does a frog start its life as after hatching from an egg?", "a tadpole", "a caterpillar", "a chick", "a puppy"),
    ("What is a baby cat called?", "a kitten", "a puppy", "a calf", "a foal"),
    ("What is a baby dog called?", "a puppy", "a kitten", "a foal", "a lamb"),
    ("What does a caterpillar turn into?", "a butterfly", "a spider", "a beetle", "a frog"),
    ("What do we call animals that eat only plants?", "herbivores", "carnivores", "omnivores", "predators"),
    ("What is the largest ocean on Earth?", "the Pacific Ocean", "the Atlantic Ocean", "the Indian Ocean", "the Arctic Ocean"),
    ("What is the largest continent by area?", "Asia", "Africa", "Europe", "Australia"),
    ("On which continent is Brazil?", "South America", "Africa", "Europe", "Asia"),
    ("What is the capital of France?", "Paris", "Lyon", "Marseille", "Nice"),
    ("What is the capital of Japan?", "Tokyo", "Osaka", "Kyoto", "Nagoya"),
    ("What is the capital of Italy?", "Rome", "Milan", "Naples", "Venice"),
    ("What is the capital of Canada?", "Ottawa", "Toronto", "Vancouver", "Montreal"),
    ("What is the capital of Australia?", "Canberra", "Sydney", "Melbourne", "Perth"),
    ("In which country are the pyramids of Giza?", "Egypt", "Mexico", "Greece", "India"),
    ("Who wrote the play 'Romeo and Juliet'?", "William Shakespeare", "Charles Dickens", "Jane Austen", "Mark Twain"),
    ("Who painted the Mona Lisa?", "Leonardo da Vinci", "Pablo Picasso", "Vincent van Gogh", "Claude Monet"),
    ("What language is mainly spoken in Brazil?", "Portuguese", "Spanish", "French", "Italian"),
    ("In which direction does the Sun rise each morning?", "east", "west", "north", "south"),
    ("What color do you get when you mix blue and yellow paint?", "green", "purple", "orange", "red"),
    ("What does a thermometer measure?", "temperature", "weight", "speed", "distance"),
    ("What is a scientist who studies rocks called?", "a geologist", "a biologist", "a chemist", "an astronomer"),
    ("What is a doctor for animals called?", "a veterinarian", "a dentist", "a pharmacist", "an optician"),
    ("Which musical instrument has black and white keys?", "the piano", "the violin", "the drum", "the trumpet"),
    ("What do green plants use as a source of energy to make their food?", "sunlight", "moonlight", "wind", "sound"),
    ("What is rain made of?", "water", "sand", "salt", "oil"),
]

COMMON_SENSE = [
    ("If you drop a glass on a stone floor, what will most likely happen to it?", "it will break", "it will float", "it will melt", "it will grow"),
    ("What do people usually use to cut paper?", "scissors", "a spoon", "a pillow", "a sponge"),
    ("Where should you keep ice cream so that it stays frozen?", "in a freezer", "in an oven", "on a shelf", "in a toaster"),
    ("What should you do before crossing a busy street?", "look both ways", "close your eyes", "walk backwards", "lie down"),
    ("What can you carry to stay dry when it rains?", "an umbrella", "a spoon", "a candle", "a pillow"),
    ("What do people usually wear on their feet?", "shoes", "hats", "gloves", "scarves"),
    ("What do you use to write on paper?", "a pen", "a fork", "a cup", "a sock"),
    ("If you are thirsty, what should you drink?", "water", "sand", "soap", "glue"),
    ("Where do people usually sleep at night?", "in a bed", "in a fridge", "in an oven", "in a sink"),
    ("What do you use to unlock a door?", "a key", "a spoon", "a towel", "a pencil"),
    ("What happens to an ice cube left in a warm room?", "it melts", "it freezes", "it burns", "it grows"),
    ("When do people usually see the stars in the sky?", "at night", "at noon", "at lunchtime", "in the afternoon"),
    ("Which of these is the heaviest?", "a car", "a feather", "a pencil", "a leaf"),
    ("Which of these animals is the largest?", "an elephant", "a mouse", "a rabbit", "a cat"),
    ("What do people usually use to eat soup?", "a spoon", "a knife", "a fork", "a comb"),
    ("What will most likely happen to a house plant that is never watered?", "it will dry out and die", "it will grow much faster", "it will turn into a tree", "it will start to sing"),
    ("Why do people wear coats in winter?", "to keep warm", "to keep cool", "to get wet", "to run faster"),
    ("What is a broom used for?", "sweeping floors", "cooking dinner", "reading books", "mailing letters"),
    ("What do people use to tell the time?", "a clock", "a cup", "a shoe", "a plate"),
    ("Where would you go to borrow a book?", "a library", "a bakery", "a car wash", "a swimming pool"),
    ("Where would you go to buy a loaf of bread?", "a bakery", "a library", "a garage", "a museum"),
    ("Where do very sick people often go to get treatment?", "a hospital", "a cinema", "a stadium", "a bakery"),
    ("What do you put on an envelope before mailing a letter?", "a stamp", "a sock", "a spoon", "a candle"),
    ("If the sky fills with dark grey clouds, what may soon follow?", "rain", "an eclipse", "a heat wave", "an earthquake"),
    ("What do people use to dry themselves after a shower?", "a towel", "a plate", "a book", "a hammer"),
    ("What is the meal eaten in the morning called?", "breakfast", "dinner", "supper", "lunch"),
    ("What lets people cross a river without getting wet?", "a bridge", "a blanket", "a shovel", "a mirror"),
    ("Which of these would melt in a hot oven?", "butter", "a rock", "a brick", "a clay pot"),
    ("Which of these would float on water?", "a wooden stick", "a stone", "a hammer", "a metal key"),
    ("What do most people do when they feel very tired?", "go to sleep", "run a race", "climb a tree", "paint a wall"),
    ("What is polite to say when someone gives you a gift?", "thank you", "go away", "not again", "who cares"),
    ("What do people say when they accidentally bump into someone?", "sorry", "congratulations", "happy birthday", "good night"),
    ("What does a hungry person want to do?", "eat something", "take a bath", "read a map", "buy socks"),
    ("What can you put on if you feel cold?", "a sweater", "sunglasses", "sandals", "a swimsuit"),
    ("What do people use to see things that are far away?", "binoculars", "earplugs", "a blanket", "a sponge"),
    ("What do people use to drive a nail into wood?", "a hammer", "a feather", "a sponge", "a sock"),
    ("What is a refrigerator used for?", "keeping food cold", "washing clothes", "drying hair", "playing music"),
    ("What do people wear to protect their eyes from bright sunshine?", "sunglasses", "earmuffs", "a scarf", "mittens"),
    ("What happens to water left in a freezer for a long time?", "it turns to ice", "it boils", "it turns to steam", "it catches fire"),
    ("What may grow if you plant a seed and water it?", "a plant", "a rock", "a chair", "a car"),
    ("What might a person who cannot see well wear?", "glasses", "gloves", "boots", "a belt"),
    ("What do people use to brush their teeth?", "a toothbrush", "a paintbrush", "a broom", "a rake"),
    ("What happens to a candle that burns for several hours?", "it gets shorter", "it gets taller", "it turns green", "it gets heavier"),
    ("What should a driver do when a traffic light turns red?", "stop", "go faster", "sound the horn", "flash the lights"),
    ("What do people often eat at a birthday party?", "cake", "soap", "gravel", "paper"),
    ("What can you use to call a friend who lives far away?", "a phone", "a spoon", "a ladder", "a pillow"),
    ("Which of these is the hottest?", "a candle flame", "an ice cube", "a snowball", "a glass of cold milk"),
    ("What do people wear on their hands to keep them warm?", "gloves", "shoes", "earrings", "belts"),
    ("What is a ladder used for?", "reaching high places", "cooking food", "digging holes", "cutting wood"),
    ("Where do fish live?", "in water", "in trees", "in deserts", "in clouds"),
    ("Why do people put food in an oven?", "to cook it", "to freeze it", "to wash it", "to paint it"),
    ("What can you use to carry water from a well?", "a bucket", "a net", "a sieve", "a fork"),
    ("What could help you find your way in a city you do not know?", "a map", "a sandwich", "a blanket", "a ball"),
    ("What do people use to open a can of soup?", "a can opener", "a hairbrush", "a pillow", "a sponge"),
    ("Which of these usually moves the fastest?", "an airplane", "a bicycle", "a person walking", "a snail"),
    ("Which of these animals moves the slowest?", "a snail", "a horse", "a dog", "a cheetah"),
    ("What do people do with a book?", "read it", "eat it", "wear it", "drink it"),
    ("Where do people usually keep their clothes?", "in a closet", "in an oven", "in a fridge", "in a bathtub"),
    ("What can light your way on a dark path at night?", "a flashlight", "a sponge", "a blanket", "a spoon"),
    ("Who brings food to your table in a restaurant?", "a waiter", "a pilot", "a plumber", "a farmer"),
]

LANGUAGE = [
    # opposites
    ("What is the opposite of 'hot'?", "cold", "big", "fast", "happy"),
    ("What is the opposite of 'up'?", "down", "left", "over", "near"),
    ("What is the opposite of 'early'?", "late", "soon", "quick", "often"),
    ("What is the opposite of 'happy'?", "sad", "glad", "kind", "tall"),
    ("What is the opposite of 'big'?", "small", "large", "heavy", "round"),
    ("What is the opposite of 'fast'?", "slow", "quick", "loud", "late"),
    ("What is the opposite of 'full'?", "empty", "heavy", "round", "tidy"),
    ("What is the opposite of 'young'?", "old", "tall", "kind", "quiet"),
    ("What is the opposite of 'wet'?", "dry", "cold", "soft", "dark"),
    ("What is the opposite of 'day'?", "night", "week", "noon", "sun"),
    ("What is the opposite of 'push'?", "pull", "lift", "kick", "throw"),
    ("What is the opposite of 'loud'?", "quiet", "bright", "sharp", "heavy"),
    ("What is the opposite of 'strong'?", "weak", "tall", "angry", "brave"),
    ("What is the opposite of 'win'?", "lose", "play", "score", "try"),
    ("What is the opposite of 'buy'?", "sell", "pay", "spend", "shop"),
    ("What is the opposite of 'first'?", "last", "next", "second", "early"),
    ("What is the opposite of 'inside'?", "outside", "under", "beside", "behind"),
    ("What is the opposite of 'remember'?", "forget", "recall", "think", "learn"),
    ("What is the opposite of 'clean'?", "dirty", "tidy", "fresh", "bright"),
    ("What is the opposite of 'true'?", "false", "real", "right", "sure"),
    # plurals
    ("What is the plural of 'child'?", "children", "childs", "childes", "childrens"),
    ("What is the plural of 'foot'?", "feet", "foots", "feets", "footes"),
    ("What is the plural of 'tooth'?", "teeth", "tooths", "teeths", "toothes"),
    ("What is the plural of 'man'?", "men", "mans", "mens", "manes"),
    ("What is the plural of 'woman'?", "women", "womans", "womens", "womanes"),
    ("What is the plural of 'goose'?", "geese", "gooses", "geeses", "goosen"),
    ("What is the plural of 'city'?", "cities", "citys", "cityes", "citie"),
    ("What is the plural of 'baby'?", "babies", "babys", "babyes", "babie"),
    # past tense
    ("What is the past tense of 'go'?", "went", "goed", "goes", "going"),
    ("What is the past tense of 'eat'?", "ate", "eated", "eats", "eating"),
    ("What is the past tense of 'run'?", "ran", "runned", "runs", "running"),
    ("What is the past tense of 'see'?", "saw", "seed", "sees", "seeing"),
    ("What is the past tense of 'write'?", "wrote", "writed", "writes", "writing"),
    ("What is the past tense of 'swim'?", "swam", "swimmed", "swims", "swimming"),
    # same meaning
    ("Which word means the same as 'big'?", "large", "tiny", "thin", "quick"),
    ("Which word means the same as 'happy'?", "glad", "sad", "angry", "tired"),
    ("Which word means the same as 'begin'?", "start", "finish", "stop", "leave"),
    ("Which word means the same as 'couch'?", "sofa", "table", "lamp", "shelf"),
    ("Which word means the same as 'gift'?", "present", "letter", "ticket", "basket"),
    ("Which word means the same as 'shut'?", "close", "open", "push", "throw"),
    # rhymes
    ("Which word rhymes with 'cat'?", "hat", "dog", "cup", "sun"),
    ("Which word rhymes with 'night'?", "light", "day", "dark", "moon"),
    ("Which word rhymes with 'cake'?", "lake", "cook", "bread", "pie"),
    ("Which word rhymes with 'tree'?", "bee", "leaf", "wood", "root"),
    # alphabet
    ("Which letter comes right after 'C' in the alphabet?", "D", "B", "E", "F"),
    ("How many letters are there in the English alphabet?", "26", "24", "28", "30"),
    # kinds of things
    ("Which of these is a fruit?", "an apple", "a carrot", "a potato", "an onion"),
    ("Which of these is a day of the week?", "Tuesday", "January", "August", "December"),
    ("Which of these is a month of the year?", "March", "Monday", "Friday", "Sunday"),
    ("Which of these is a musical instrument?", "a guitar", "a hammer", "a kettle", "a ladder"),
]

# Arithmetic: the question text is parsed and recomputed by check_tasks.py and by
# tests/test_tasks.c, so it keeps exactly this form.
OPS = {"+": " + ", "-": " - ", "*": " times ", "/": " divided by "}


def arith_question(a, op, b):
    return "What is %d%s%d?" % (a, OPS[op], b)


def compute(a, op, b):
    return {"+": a + b, "-": a - b, "*": a * b, "/": a // b}[op]


def digit_swap(n):
    s = str(n)
    if len(s) < 2:
        return None
    t = s[:-2] + s[-1] + s[-2]
    return int(t) if t[0] != "0" and int(t) != n else None


def distractors(rng, a, op, b, n):
    """Three plausible wrong answers: off by one, digits swapped, off by ten, a
    neighbour in the times table."""
    if op == "*":
        cands = [a * (b + 1), a * (b - 1), (a + 1) * b, (a - 1) * b, n + 1, n - 1, digit_swap(n)]
    elif op == "/":
        cands = [n + 1, n - 1, n + 2, n - 2, n * 2, b]
    else:
        cands = [n + 1, n - 1, digit_swap(n), n + 10, n - 10, n + 2, n - 2]
    first = [c for c in cands[:2]]
    rng.shuffle(first)
    rest = cands[2:]
    rng.shuffle(rest)
    out = []
    for c in first[:1] + rest + first[1:]:
        if c is not None and c > 0 and c != n and c not in out:
            out.append(c)
    return out[:3]


def arithmetic_items(rng):
    spec = [("+", 18), ("-", 16), ("*", 16), ("/", 10)]
    seen, items = set(), []
    for op, count in spec:
        k = 0
        while k < count:
            if op == "+":
                a, b = rng.randint(11, 79), rng.randint(11, 79)
            elif op == "-":
                a = rng.randint(30, 99)
                b = rng.randint(11, a - 5)
            elif op == "*":
                a, b = rng.randint(3, 12), rng.randint(3, 12)
            else:
                b, q = rng.randint(2, 9), rng.randint(3, 12)
                a = b * q
            q = arith_question(a, op, b)
            if q in seen:
                continue
            n = compute(a, op, b)
            wrong = distractors(rng, a, op, b, n)
            if len(wrong) < 3:
                continue
            seen.add(q)
            items.append(("arithmetic", q, str(n)) + tuple(str(w) for w in wrong))
            k += 1
    return items


def build_mc():
    rng = random.Random(SEED)
    items = arithmetic_items(rng)
    for cat, rows in (("knowledge", KNOWLEDGE), ("common_sense", COMMON_SENSE), ("language", LANGUAGE)):
        items += [(cat,) + r for r in rows]
    rng.shuffle(items)
    pos = [i % 4 for i in range(len(items))]
    rng.shuffle(pos)
    out = []
    for i, (cat, q, right, *wrong) in enumerate(items):
        wrong = list(wrong)
        rng.shuffle(wrong)
        choices = wrong[:pos[i]] + [right] + wrong[pos[i]:]
        out.append({"id": "everyday-mc-%03d" % (i + 1), "category": cat,
                    "context": "Question: %s\nAnswer:" % q, "choices": choices, "answer": pos[i]})
    return out


def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


# ---- the text ------------------------------------------------------------------------
TEXT_CHAPTERS = 5      # Pride and Prejudice, chapters 1..5


def build_text():
    """Chapters 1-5 of Pride and Prejudice from the janeaustenr data (Debian package
    r-cran-janeaustenr): title lines and chapter headings dropped, the ~70-column line
    wrapping joined into one line per paragraph (paragraphs separated by a blank line),
    the underscores that mark italics removed. Nothing else is changed."""
    lines = subprocess.run(["Rscript", "-e", "writeLines(janeaustenr::prideprejudice)"],
                           check=True, capture_output=True).stdout.decode("utf-8").split("\n")
    chapters, cur = [], None
    for ln in lines:
        s = ln.strip()
        if s.startswith("Chapter ") and s[8:].isdigit():
            cur = []
            chapters.append(cur)
            if len(chapters) > TEXT_CHAPTERS:
                break
            continue
        if cur is not None:
            cur.append(s)
    docs = []
    for ch in chapters[:TEXT_CHAPTERS]:
        paras, p = [], []
        for s in ch + [""]:
            if s:
                p.append(s)
            elif p:
                paras.append(" ".join(p))
                p = []
        docs.append({"text": "\n\n".join(paras).replace("_", "")})
    return docs


def main():
    what = sys.argv[1:] or ["mc"]
    if "mc" in what:
        rows = build_mc()
        write_jsonl(os.path.join(HERE, "everyday-mc.jsonl"), rows)
        print("everyday-mc.jsonl: %d items" % len(rows))
    if "text" in what:
        docs = build_text()
        write_jsonl(os.path.join(HERE, "austen-pp.jsonl"), docs)
        print("austen-pp.jsonl: %d documents, %d words" % (len(docs), sum(len(d["text"].split()) for d in docs)))


if __name__ == "__main__":
    main()
