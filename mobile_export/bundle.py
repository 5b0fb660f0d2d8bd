"""Bundles the on-device runtimes load: LiteRT-LM `.litertlm` and MediaPipe `.task`.

Both carry the prefill/decode `.tflite`, the SentencePiece tokenizer and the Gemma chat
format: start token `<bos>`, stop tokens `<eos>` and `<end_of_turn>`, user turn
`<start_of_turn>user\\n` ... `<end_of_turn>\\n<start_of_turn>model\\n`. The template lives
in the bundle, once: an app that adds the turn markers itself doubles them.

- `.litertlm`: written by the `litert-lm-builder` package from an `LlmMetadata` proto.
- `.task`: an uncompressed zip (entries stored, their data on 4-byte boundaries) with
  `TF_LITE_PREFILL_DECODE`, `TOKENIZER_MODEL` and `METADATA`, a serialized
  `LlmParameters` message (mediapipe's `llm_params.proto`). No Python module for that
  proto ships any more, so `_llm_parameters` writes its few fields by hand.
"""

import os
import tempfile
import zipfile

from gemma_kit.errors import GemmaKitError
from gemma_kit.files import atomic_file

START, STOPS = "<bos>", ("<eos>", "<end_of_turn>")
TURN_MARKERS = ("<start_of_turn>", "<end_of_turn>")
USER_PREFIX, USER_SUFFIX = "<start_of_turn>user\n", "<end_of_turn>\n<start_of_turn>model\n"
MODEL_PREFIX, MODEL_SUFFIX = "", "<end_of_turn>\n"


def runtime_tokenizer(proto):
    """The SentencePiece model for the runtime: the start, stop and turn markers as
    user-defined pieces.

    The runtimes apply the bundle's template (and a `.task`'s start and stop tokens) as
    text through this tokenizer, so `<start_of_turn>` must encode to its token there;
    the kit's own tokenizer keeps the markers as control pieces, which text never
    produces. In the runtime, text a user
    types that contains a marker does become that token: that is the runtime's
    behaviour for every Gemma bundle."""
    from sentencepiece import sentencepiece_model_pb2

    model = sentencepiece_model_pb2.ModelProto()
    model.ParseFromString(proto)
    for piece in model.pieces:
        if piece.piece in (START, *STOPS, *TURN_MARKERS):
            piece.type = sentencepiece_model_pb2.ModelProto.SentencePiece.USER_DEFINED
    return model.SerializeToString()


def write_litertlm(path, tflite_path, tokenizer_proto, token_ids, max_tokens):
    """`token_ids`: {"<bos>": id, "<eos>": id, "<end_of_turn>": id} of this tokenizer."""
    from litert_lm_builder import litertlm_builder as builder

    metadata = builder.llm_metadata_pb2.LlmMetadata()
    metadata.start_token.token_ids.ids.append(token_ids[START])
    for stop in STOPS:
        metadata.stop_tokens.add().token_ids.ids.append(token_ids[stop])
    templates = metadata.prompt_templates
    templates.user.prefix, templates.user.suffix = USER_PREFIX, USER_SUFFIX
    templates.model.prefix, templates.model.suffix = MODEL_PREFIX, MODEL_SUFFIX
    metadata.max_num_tokens = int(max_tokens)
    metadata.llm_model_type.generic_model.SetInParent()
    with tempfile.TemporaryDirectory() as scratch:
        metadata_path, tokenizer_path = os.path.join(scratch, "metadata.pb"), os.path.join(scratch, "tokenizer.model")
        with open(metadata_path, "wb") as f:
            f.write(metadata.SerializeToString())
        with open(tokenizer_path, "wb") as f:
            f.write(runtime_tokenizer(tokenizer_proto))
        files = (builder.LitertLmFileBuilder()
                 .add_llm_metadata(metadata_path)
                 .add_sentencepiece_tokenizer(tokenizer_path)
                 .add_tflite_model(os.fspath(tflite_path), builder.TfLiteModelType.PREFILL_DECODE))
        with atomic_file(path) as staging, open(staging, "wb") as f:
            files.build(f)
    return os.fspath(path)


def write_task(path, tflite_path, tokenizer_proto):
    """A MediaPipe `.task` bundle."""
    entries = {"TF_LITE_PREFILL_DECODE": tflite_path, "TOKENIZER_MODEL": runtime_tokenizer(tokenizer_proto),
               "METADATA": _llm_parameters()}
    with atomic_file(path) as staging, zipfile.ZipFile(staging, "w", zipfile.ZIP_STORED) as bundle:
        for name, content in entries.items():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            # Zero bytes before the local header put the entry's data on a 4-byte boundary
            # (loaders map the model in place). Readers find entries through the central
            # directory, so the gap is legal; zipfile writes the next header at
            # `start_dir`, which is moved past the gap. (Padding in the header's extra
            # field instead is refused by LiteRT-LM's zip reader.)
            gap = -(bundle.start_dir + 30 + len(name.encode())) % 4
            bundle.fp.write(b"\0" * gap)
            bundle.start_dir += gap
            if isinstance(content, bytes):
                bundle.writestr(info, content)
            else:
                with open(content, "rb") as source, bundle.open(info, "w") as target:
                    while chunk := source.read(1 << 24):
                        target.write(chunk)
    return os.fspath(path)


def _llm_parameters():
    """LlmParameters: stop_tokens (5, repeated string), start_token (6, string) and
    prompt_template (8: prompt_prefix 2, prompt_suffix 3). Field 8 is marked deprecated
    in favour of per-role templates (17), but it is the one LiteRT-LM applies, and a
    model turn needs nothing beyond the user suffix."""
    template = _string(2, USER_PREFIX) + _string(3, USER_SUFFIX)
    return b"".join(_string(5, stop) for stop in STOPS) + _string(6, START) + _field(8, template)


def _string(number, text):
    return _field(number, text.encode())


def _field(number, payload):
    """A length-delimited protobuf field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _varint(value):
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def check_bundle(path):
    """Refuse a file that is not a complete bundle of its kind, by name."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise GemmaKitError(f"{path}: file not found")
    with open(path, "rb") as f:
        head = f.read(8)
    if path.endswith(".litertlm"):
        if head != b"LITERTLM":
            raise GemmaKitError(f"{path}: not a .litertlm file (magic {head!r}, expected b'LITERTLM')")
        import io

        from litert_lm_builder import litertlm_peek

        try:
            sections = litertlm_peek.read_litertlm_header(path, io.StringIO()).SectionMetadata()
            ends = [sections.Objects(i).EndOffset() for i in range(sections.ObjectsLength())]
        except Exception as e:  # noqa: BLE001 - the flatbuffer reader raises many types on damage
            raise GemmaKitError(f"{path}: damaged .litertlm header ({e})") from None
        size = os.path.getsize(path)
        if not ends or max(ends) > size:
            raise GemmaKitError(f"{path}: truncated .litertlm: its sections end at byte {max(ends, default=0)}, "
                                f"the file has {size}")
    elif path.endswith(".task"):
        try:
            with zipfile.ZipFile(path) as bundle:
                names = set(bundle.namelist())
                bad = bundle.testzip()
        except zipfile.BadZipFile as e:
            raise GemmaKitError(f"{path}: damaged or truncated .task ({e})") from None
        missing = {"TF_LITE_PREFILL_DECODE", "TOKENIZER_MODEL", "METADATA"} - names
        if missing or bad:
            raise GemmaKitError(f"{path}: .task bundle lacks {sorted(missing)}" if missing
                                else f"{path}: entry {bad} is damaged")
    else:
        raise GemmaKitError(f"{path}: expected a .litertlm or .task file")
