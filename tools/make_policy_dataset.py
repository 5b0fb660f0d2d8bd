"""A labelled set for a custom policy, "Spoilers", to train and test agile classifiers
(`gemma_kit.finetune.train_policy_classifier`) offline.

    .venv/bin/python tools/make_policy_dataset.py   # -> tests/fixtures/spoilers_{train,test}.jsonl

Texts about invented books, films and series (so no model knows the plots). A text
violates the policy when it reveals an ending or a twist; the negatives talk about the
same works without doing so, including near misses ("the ending is great, no spoilers").
The test split uses other titles, characters and events than the training split, and
templates of its own, so that scoring well needs the policy, not memory. Deterministic.
"""

import json
import os
import random

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEY = "spoilers"
DESCRIPTION = "reveals how a book, film or series ends, or its major plot twists"

TITLES = (["The Glass Orchard", "Night Ferry", "Salt and Iron", "The Ninth Lantern", "Copper Valley", "Winter Atlas",
           "The Paper Crown", "Harbor of Ash", "Silent Meridian", "The Clockmaker's Son", "Blue Hour", "Red Quarry"],
          ["The Hollow Bell", "Ember Coast", "The Quiet Cartographer", "Moth Season", "Iron Lullaby",
           "The Last Orchard"])
NAMES = (["Mara", "Tobias", "Ines", "Colm", "Yara", "Felix", "Odile", "Rafe", "Nadia", "Bram"],
         ["Lucan", "Sefa", "Imre", "Greta", "Dov"])
EVENTS = (["dies in the final chapter", "turns out to be the killer", "was the narrator's father all along",
           "betrays the crew in the last episode", "never wakes up from the coma", "is revealed to be a ghost",
           "burns the manuscript at the end", "marries the detective in the finale"],
          ["is secretly the villain's sister", "drowns in the last scene", "was dead from the very first page",
           "stole the crown herself"])
SPOILERS = ([
    "Heads up for anyone reading {t}: {n} {e}.",
    "I can't believe that in {t}, {n} {e}!",
    "The big twist in {t} is that {n} {e}.",
    "Ending of {t} explained: {n} {e}, and the rest was a setup.",
    "So {n} {e} in {t}. I did not see that coming.",
    "Finished {t} last night. Turns out {n} {e}.",
    "Spoiler: {n} {e}. That is how {t} wraps up.",
    "My book club guessed it early: in {t}, {n} {e}.",
    "The last episode of {t} shows that {n} {e}.",
    "Don't read this if you care about {t}, but {n} {e}.",
    "Everyone talks about the finale of {t}, where {n} {e}.",
    "It all makes sense once you learn {n} {e} ({t}).",
], [
    "Just so you know, at the end of {t} {n} {e}.",
    "Wait until you find out that {n} {e} in {t}.",
    "{t} ends with the reveal that {n} {e}.",
])
SAFE = ([
    "Has anyone read {t}? I heard {n} is a great character.",
    "{t} is two hours long and the soundtrack is lovely.",
    "I loved the ending of {t}, but I won't spoil it for you.",
    "Who plays {n} in the film version of {t}?",
    "The first chapter of {t} introduces {n} and the old house by the sea.",
    "Is {t} suitable for children? My son likes {n}.",
    "I just started {t}; so far {n} seems kind and a little lonely.",
    "The trailer for {t} looks amazing, {n} is my favourite already.",
    "Does anyone know how many pages {t} has? I want to read about {n}.",
    "I'm not going to tell you what happens to {n} in {t}, just watch it.",
    "The author of {t} said {n} was inspired by her grandmother.",
    "We watched the first half of {t} tonight and {n} was hilarious.",
], [
    "No spoilers please, I'm only halfway through {t} and {n} just arrived.",
    "{t} has beautiful cinematography and {n} has great lines.",
    "When does the sequel to {t} come out? I want more of {n}.",
])


def examples(split, count, rng):
    titles, names, events = TITLES[split], NAMES[split], EVENTS[split]
    rows = []
    for i in range(count):
        violates = i % 2 == 0
        template = rng.choice((SPOILERS if violates else SAFE)[split])
        text = template.format(t=rng.choice(titles), n=rng.choice(names), e=rng.choice(events))
        rows.append({"prompt": text, "labels": {KEY: int(violates)}})
    rng.shuffle(rows)
    return rows


def main():
    rng = random.Random(0)
    for split, name, count in ((0, "train", 240), (1, "test", 120)):
        path = os.path.join(ROOT, "tests", "fixtures", f"spoilers_{name}.jsonl")
        with open(path, "w", encoding="utf-8") as f:
            for row in examples(split, count, rng):
                f.write(json.dumps(row) + "\n")
        print(path, count)


if __name__ == "__main__":
    main()
