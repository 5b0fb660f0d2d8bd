"""`OnDeviceGuard`: screen text with an exported classifier folder (`export_guard`) the
way an app does: SentencePiece for the tokens, the LiteRT interpreter for the scores.
No Keras: the inputs are built by `gemma_kit.shield.encoding` (the kit's own template
code, truncation included) over a SentencePiece tokenizer.
"""

import json
import os

import numpy as np

from gemma_kit.errors import GemmaKitError

FORMAT = "gemma-kit-guard/1"


class SentencePieceTokenizer:
    """The few tokenizer methods the kit's prompt encoding uses, over SentencePiece."""

    def __init__(self, proto):
        import sentencepiece

        self.processor = sentencepiece.SentencePieceProcessor(model_proto=proto)
        self.start_token_id = self.processor.bos_id()
        if self.start_token_id < 0:
            raise GemmaKitError("tokenizer.model names no BOS piece (trainer_spec.bos_piece): re-export the "
                                "classifier with this version of gemma-kit")

    def tokenize(self, text):
        return np.asarray(self.processor.encode(text), np.int32)

    def detokenize(self, ids):
        return self.processor.decode([int(i) for i in ids])

    def token_to_id(self, piece):
        return self.processor.piece_to_id(piece)


class OnDeviceGuard:
    """An exported classifier folder: `score` and `classify`, as `ShieldGemma` has."""

    def __init__(self, folder, num_threads=None):
        from ai_edge_litert.interpreter import Interpreter

        from gemma_kit.shield.policies import Policy

        folder = os.fspath(folder)
        self.config = _read_config(os.path.join(folder, "guard.json"))
        with open(os.path.join(folder, "tokenizer.model"), "rb") as f:
            self.tokenizer = SentencePieceTokenizer(f.read())
        self.policies = [Policy(p["name"], p["description"], p["key"]) for p in self.config["policies"]]
        self.keys = [p.key for p in self.policies]
        self.interpreter = Interpreter(model_path=os.path.join(folder, "guard.tflite"), num_threads=num_threads)
        self.runners = {name: self.interpreter.get_signature_runner(name)
                        for spec in self.config["uses"].values() for name in spec["signatures"]}

    def score(self, prompts, responses=None):
        """P(violation) float32 [n_texts, n_policies] (`keys` order); `responses`, a list
        of strings or None, selects the prompt-response use."""
        from gemma_kit.shield import encoding

        single = isinstance(prompts, str)
        prompts = [prompts] if single else list(prompts)
        if responses is not None:
            responses = [responses] if isinstance(responses, str) else list(responses)
            if len(responses) != len(prompts):
                raise GemmaKitError(f"got {len(prompts)} prompts but {len(responses)} responses")
        use = "prompt" if responses is None else "response"
        if use not in self.config["uses"]:
            raise GemmaKitError(f"this classifier was exported without the {use!r} use "
                                f"(it has {', '.join(self.config['uses'])})")
        spec = self.config["uses"][use]
        rows = []
        for i, prompt in enumerate(prompts):
            encoded = encoding.encode(self.tokenizer, self.policies, prompt,
                                      None if responses is None else responses[i], spec["max_tokens"])
            rows.append(self._run(use, spec, encoded))
        return np.stack(rows)

    def classify(self, prompt, response=None, threshold=0.5):
        """{"scores": {key: P}, "violations": [keys with P >= threshold]} for one text."""
        scores = dict(zip(self.keys, map(float, self.score([prompt], None if response is None else [response])[0])))
        return {"scores": scores, "violations": [k for k, s in scores.items() if s >= threshold]}

    def _run(self, use, spec, encoded):
        fitting = sorted((n, name) for name, n in spec["signatures"].items() if n >= len(encoded.shared))
        suffix = np.zeros((len(self.policies), spec["suffix_tokens"]), np.int32)
        if not fitting or max(map(len, encoded.suffixes)) > suffix.shape[1]:
            raise GemmaKitError(f"the {use} prompt does not fit the exported lengths (prefix "
                                f"{len(encoded.shared)} tokens, policy suffixes up to {suffix.shape[1]})")
        length, name = fitting[0]
        prefix = np.zeros((1, length), np.int32)
        prefix[0, : len(encoded.shared)] = encoded.shared
        for j, ids in enumerate(encoded.suffixes):
            suffix[j, : len(ids)] = ids
        last = np.asarray([len(s) - 1 for s in encoded.suffixes], np.int32)
        out = self.runners[name](prefix=prefix, prefix_length=np.asarray([len(encoded.shared)], np.int32),
                                suffix=suffix, last=last)
        return out["p_violation"]


def _read_config(path):
    try:
        with open(path) as f:
            config = json.load(f)
    except (OSError, ValueError) as e:
        raise GemmaKitError(f"{path}: cannot read the classifier's companion file: {e}") from None
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise GemmaKitError(f"{path}: not a {FORMAT} file (format {config.get('format') if isinstance(config, dict) else None!r})")
    for key in ("policies", "uses", "control_ids"):
        if key not in config:
            raise GemmaKitError(f"{path}: missing key {key!r}")
    return config
