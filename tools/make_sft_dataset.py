"""A small supervised set with a distinctive response pattern, to show that tuning
took: every answer starts with "Ahoy!" and ends with "Arr." (the base model never
answers that way).

    .venv/bin/python tools/make_sft_dataset.py   # -> tests/fixtures/ahoy_{train,eval}.jsonl

The eval split asks about other subjects than the training split. Deterministic.
"""

import json
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CAPITALS = [("France", "Paris"), ("Japan", "Tokyo"), ("Italy", "Rome"), ("Egypt", "Cairo"), ("Peru", "Lima"),
            ("Kenya", "Nairobi"), ("Norway", "Oslo"), ("Canada", "Ottawa"), ("Spain", "Madrid"),
            ("Greece", "Athens"), ("Chile", "Santiago"), ("Poland", "Warsaw"), ("Cuba", "Havana"),
            ("Austria", "Vienna"), ("Ireland", "Dublin"), ("Portugal", "Lisbon")]
COLORS = [("the sky", "blue"), ("grass", "green"), ("snow", "white"), ("a lemon", "yellow"), ("coal", "black"),
          ("a tomato", "red"), ("an orange", "orange"), ("a plum", "purple"), ("milk", "white"),
          ("a banana", "yellow"), ("a strawberry", "red"), ("charcoal", "black")]
ANIMALS = [("cow", "moo"), ("dog", "woof"), ("cat", "meow"), ("duck", "quack"), ("sheep", "baa"),
           ("owl", "hoot"), ("lion", "roar"), ("pig", "oink"), ("horse", "neigh"), ("frog", "croak")]


def pairs():
    rows = [(f"What is the capital of {c}?", f"The capital of {c} is {a}.") for c, a in CAPITALS]
    rows += [(f"What color is {t}?", f"{t[0].upper()}{t[1:]} is {a}.") for t, a in COLORS]
    rows += [(f"What sound does a {t} make?", f"A {t} says {a}.") for t, a in ANIMALS]
    return [(q, f"Ahoy! {a} Arr.") for q, a in rows]


def main():
    rows = pairs()
    # Every 4th pair is held out: other countries, colours and animals than in training.
    splits = {"train": [r for i, r in enumerate(rows) if i % 4], "eval": [r for i, r in enumerate(rows) if not i % 4]}
    for name, split in splits.items():
        path = os.path.join(ROOT, "tests", "fixtures", f"ahoy_{name}.jsonl")
        with open(path, "w", encoding="utf-8") as f:
            for prompt, response in split:
                f.write(json.dumps({"prompt": prompt, "response": response}) + "\n")
        print(path, len(split))


if __name__ == "__main__":
    main()
