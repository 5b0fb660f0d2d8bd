"""Regenerate tests/fixtures/tiny_shield_tokenizer.model: a small SentencePiece BPE model
trained (by SentencePiece's own trainer) on ShieldGemma prompts, shaped like Gemma's
(pad 0, eos 1, bos 2, unk 3, turn markers as user-defined pieces, byte fallback, no
dummy prefix). The shield parity tests pair it with tiny random transformers models,
so that the template is tokenized by two independent tokenizers.

    .venv/bin/python tools/make_shield_tokenizer.py
"""

import io
import os
import sys

import sentencepiece as spm

sys.path.insert(0, os.path.dirname(__file__))
from reference_strings import PROMPTS, SHIELD_CASES  # noqa: E402

from gemma_kit.shield.policies import POLICIES, build_prompt  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "tiny_shield_tokenizer.model")
VOCAB = 1024


def corpus():
    lines = []
    for policy in POLICIES:
        for user, response in SHIELD_CASES:
            lines += build_prompt(policy, user).split("\n")
            lines += build_prompt(policy, user, response or "Sure.").split("\n")
    lines += PROMPTS + ["Yes", "No", "Yes.", "No."] * 50
    return [line for line in lines if line]


def main():
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus()), model_writer=model, model_type="bpe", vocab_size=VOCAB,
        byte_fallback=True, add_dummy_prefix=False, normalization_rule_name="identity",
        remove_extra_whitespaces=False, allow_whitespace_only_pieces=True, split_digits=True,
        pad_id=0, eos_id=1, bos_id=2, unk_id=3, pad_piece="<pad>", eos_piece="<eos>",
        bos_piece="<bos>", unk_piece="<unk>", control_symbols=["<mask>"],
        user_defined_symbols=["<start_of_turn>", "<end_of_turn>"], num_threads=1,
        character_coverage=1.0, minloglevel=2)
    with open(OUT, "wb") as f:
        f.write(model.getvalue())
    sp = spm.SentencePieceProcessor(model_proto=model.getvalue())
    for piece in ("Yes", "No", "<start_of_turn>", "<end_of_turn>"):
        assert sp.piece_to_id(piece) != sp.unk_id(), piece
    print(f"wrote {OUT}: {sp.get_piece_size()} pieces")


if __name__ == "__main__":
    main()
