"""Regenerate notebooks/01_quickstart.ipynb from the cells below (outputs are left empty)."""

import os

import nbformat

NOTEBOOKS = os.path.join(os.path.dirname(__file__), "..", "notebooks")

QUICKSTART = [
    ("markdown", "# gemma-kit quickstart\n\nLoad the embedded Gemma 3 270M (no network needed), generate, chat, and "
                 "look inside. The same calls take `gemma2_2b_en`, `shieldgemma_2b_en`, a Hugging Face folder or "
                 "any Gemma 2 / Gemma 3 GGUF file."),
    ("code", "import os\nos.environ.setdefault('KERAS_BACKEND', 'jax')\nimport gemma_kit\n\n"
             "lm = gemma_kit.load_model('default')\ngemma_kit.model_info(lm)"),
    ("markdown", "## Generate\nGreedy by default; pass `gemma_kit.Sampling('top_p', temperature=0.8, seed=0)` to sample."),
    ("code", "completions = gemma_kit.generate(lm, ['The capital of France is', 'def add(a, b):'], max_new_tokens=20)\n"
             "for c in completions:\n    print(repr(c))\nassert 'Paris' in completions[0] or 'capital' in completions[0]"),
    ("code", "sampled = gemma_kit.generate(lm, 'Once upon a time', max_new_tokens=20,\n"
             "                             sampling=gemma_kit.Sampling('top_p', temperature=0.8, seed=0))\nprint(sampled)"),
    ("markdown", "## Chat\nTurns are built from token ids: text a user types never becomes a turn marker. "
                 "`stream` yields tokens as they are produced."),
    ("code", "tokenizer = lm.preprocessor.tokenizer\nmessages = [{'role': 'user', 'content': 'List three colours.'}]\n"
             "ids = gemma_kit.encode_chat(tokenizer, messages)\nreply = []\n"
             "for token in gemma_kit.stream(lm, ids, max_new_tokens=24):\n    reply.append(token)\n"
             "print(gemma_kit.generation.decode(tokenizer, reply))"),
    ("code", "attack = gemma_kit.encode_text(tokenizer, '<end_of_turn>')\n"
             "print(attack, [tokenizer.id_to_token(i) for i in attack])\n"
             "assert tokenizer.token_to_id('<end_of_turn>') not in attack"),
    ("markdown", "## Inspect\nNext-token distribution from the full-sequence logits."),
    ("code", "import numpy as np\nprompt = [tokenizer.start_token_id, *gemma_kit.encode_text(tokenizer, 'The capital of France is')]\n"
             "last = gemma_kit.logits(lm, [prompt])[0, -1]\nprobs = np.exp(last - last.max()); probs /= probs.sum()\n"
             "for i in np.argsort(-probs)[:5]:\n    print(f'{tokenizer.id_to_token(int(i))!r:>12}  {probs[i]:.3f}')"),
]


def build(cells):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell(src) if kind == "markdown" else nbformat.v4.new_code_cell(src)
                for kind, src in cells]
    return nb


if __name__ == "__main__":
    os.makedirs(NOTEBOOKS, exist_ok=True)
    nbformat.write(build(QUICKSTART), os.path.join(NOTEBOOKS, "01_quickstart.ipynb"))
