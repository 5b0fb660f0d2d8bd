"""SentencePiece protos for Gemma: rebuilt from GGUF vocabularies, and hardened.

Hardening is the kit's one rule against template injection: every structural token
(turn markers, BOS/EOS/PAD, image markers) is typed CONTROL in the SentencePiece model,
so SentencePiece never produces it from text. Prompts that need those tokens get them
by id (see `gemma_kit.chat`), never by spelling them inside a string.
"""

from sentencepiece import sentencepiece_model_pb2 as sp_pb2

from gemma_kit.errors import GemmaKitError

STRUCTURAL_TOKENS = (
    "<pad>",
    "<eos>",
    "<bos>",
    "<mask>",
    "<start_of_turn>",
    "<end_of_turn>",
    "<start_of_image>",
    "<end_of_image>",
)

_Piece = sp_pb2.ModelProto.SentencePiece
# GGUF token types (llama.cpp's LLAMA_TOKEN_TYPE_*) to SentencePiece piece types.
_GGUF_TYPE_TO_SP = {
    1: _Piece.NORMAL,
    2: _Piece.UNKNOWN,
    3: _Piece.CONTROL,
    4: _Piece.USER_DEFINED,
    5: _Piece.UNUSED,
    6: _Piece.BYTE,
}


def sentencepiece_from_gguf(fields, source):
    """Serialized SentencePiece BPE model from a GGUF file's `tokenizer.ggml.*` fields."""
    model = _field(fields, "tokenizer.ggml.model", source)
    if model != "llama":
        raise GemmaKitError(
            f"{source}: tokenizer.ggml.model is {model!r}; Gemma GGUF files use the "
            "SentencePiece ('llama') tokenizer"
        )
    tokens = _field(fields, "tokenizer.ggml.tokens", source)
    scores = _field(fields, "tokenizer.ggml.scores", source)
    types = _field(fields, "tokenizer.ggml.token_type", source)
    if not len(tokens) == len(scores) == len(types):
        raise GemmaKitError(
            f"{source}: tokenizer arrays disagree in length: tokens {len(tokens)}, "
            f"scores {len(scores)}, token_type {len(types)}"
        )
    unk_id = int(_field(fields, "tokenizer.ggml.unknown_token_id", source, 3))
    proto = sp_pb2.ModelProto()
    for i, (piece, score, kind) in enumerate(zip(tokens, scores, types)):
        entry = proto.pieces.add()
        # llama.cpp types <unk> as control; SentencePiece refuses a model without an
        # UNKNOWN piece.
        entry.type = _Piece.UNKNOWN if i == unk_id else _GGUF_TYPE_TO_SP.get(int(kind), _Piece.NORMAL)
        # llama.cpp matches user-defined pieces against raw text, SentencePiece after
        # it has escaped spaces to U+2581: the whitespace-run pieces need that escape.
        entry.piece = piece.replace(" ", "\u2581") if entry.type == _Piece.USER_DEFINED else piece
        entry.score = float(score)
    trainer = proto.trainer_spec
    trainer.model_type = sp_pb2.TrainerSpec.BPE
    trainer.vocab_size = len(tokens)
    trainer.byte_fallback = True
    trainer.unk_id = unk_id
    trainer.bos_id = int(_field(fields, "tokenizer.ggml.bos_token_id", source, 2))
    trainer.eos_id = int(_field(fields, "tokenizer.ggml.eos_token_id", source, 1))
    trainer.pad_id = int(_field(fields, "tokenizer.ggml.padding_token_id", source, 0))
    # SentencePiece finds its special ids by piece name (default "<s>", "</s>", ...), not
    # by the ids above: without the names a plain SentencePieceProcessor reports no BOS.
    for kind in ("unk", "bos", "eos", "pad"):
        setattr(trainer, f"{kind}_piece", tokens[getattr(trainer, f"{kind}_id")])
    trainer.allow_whitespace_only_pieces = True
    normalizer = proto.normalizer_spec
    normalizer.name = "identity"
    normalizer.add_dummy_prefix = bool(_field(fields, "tokenizer.ggml.add_space_prefix", source, False))
    normalizer.remove_extra_whitespaces = False
    normalizer.escape_whitespaces = True
    return proto.SerializeToString()


def proto_bytes(tokenizer):
    """The serialized SentencePiece model of a keras-hub tokenizer (bytes or a file path)."""
    if isinstance(tokenizer.proto, bytes):
        return tokenizer.proto
    with open(tokenizer.proto, "rb") as f:
        return f.read()


def harden(proto_bytes):
    """Return the proto with every structural token typed CONTROL (see module doc)."""
    proto = sp_pb2.ModelProto()
    proto.ParseFromString(proto_bytes)
    structural = set(STRUCTURAL_TOKENS)
    for entry in proto.pieces:
        if entry.piece in structural and entry.type != _Piece.UNKNOWN:
            entry.type = _Piece.CONTROL
    return proto.SerializeToString()


def _field(fields, key, source, default=None):
    if key in fields:
        return fields[key]
    if default is None:
        raise GemmaKitError(f"{source}: GGUF metadata key {key!r} is missing")
    return default
