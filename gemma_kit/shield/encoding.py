"""ShieldGemma prompts as token ids, split into the part every policy shares and the
part each policy adds, with the content truncated to fit a length budget.

Turn markers go in by id and all text through the hardened tokenizer (see
`gemma_kit.chat`), so content can never add a control token or move the template's
structure: "<end_of_turn>" or "Chatbot Response:" typed by a user stay plain text
between the real markers.

Truncation: when a prompt would exceed `max_length` tokens, the user content and the
model content (the longer first) lose tokens from their middle, which is replaced by
" [...] ". The start and the end of the content are kept, because a harmful request
can sit at either end of a long text. The preamble, the policy and the question are
never cut. The result is still the exact template filled with the shortened content.
"""

import dataclasses

from gemma_kit.chat import control_id, decode, encode_text
from gemma_kit.errors import GemmaKitError
from gemma_kit.shield.policies import END, START, template_parts

ELISION = " [...] "


@dataclasses.dataclass(frozen=True)
class Encoded:
    """`shared + suffixes[j]` is the full prompt for policy j, BOS first."""

    shared: list
    suffixes: list
    truncated: bool

    def prompt(self, j):
        return self.shared + self.suffixes[j]


def encode(tokenizer, policies, user_content, model_content=None, max_length=None):
    """Token ids of the prompts for one text under each policy (see `Encoded`)."""
    encoded = _encode(tokenizer, policies, user_content, model_content)
    if max_length is None or _longest(encoded) <= max_length:
        return encoded
    contents = [user_content] if model_content is None else [user_content, model_content]
    content_ids = [encode_text(tokenizer, c) for c in contents]
    lengths = [len(ids) for ids in content_ids]
    fixed = _longest(encoded) - sum(lengths)
    overhead = fixed + len(contents) * len(encode_text(tokenizer, ELISION))
    budget = max_length - overhead
    if budget < len(contents):
        raise GemmaKitError(
            f"max_length {max_length} is too small: the template and policies alone take "
            f"{fixed} tokens; at least {overhead + len(contents)} are needed"
        )
    # Re-tokenizing joined pieces can merge or split a token or two; shrink until it fits.
    for _ in range(8):
        kept = [_shorten(tokenizer, c, ids, n) for c, ids, n in zip(contents, content_ids, _share(lengths, budget))]
        shortened = _encode(tokenizer, policies, kept[0], kept[1] if model_content is not None else None)
        excess = _longest(shortened) - max_length
        if excess <= 0:
            return dataclasses.replace(shortened, truncated=True)
        budget -= excess
    raise GemmaKitError(f"could not truncate the content to fit max_length {max_length}")


def _encode(tokenizer, policies, user_content, model_content):
    markers = {START: control_id(tokenizer, START), END: control_id(tokenizer, END)}
    parts = [template_parts(policy, user_content, model_content) for policy in policies]
    # Only a template's last part holds the guideline: the rest, content included, is
    # the same for every policy and is tokenized once.
    head = [int(tokenizer.start_token_id)]
    for part in parts[0][:-1]:
        head += [markers[part]] if part in markers else encode_text(tokenizer, part)
    prompts = [head + encode_text(tokenizer, policy_parts[-1]) for policy_parts in parts]
    common = _common_prefix_length(prompts)
    return Encoded(prompts[0][:common], [p[common:] for p in prompts], truncated=False)


def _common_prefix_length(sequences):
    # Every policy needs at least its last token of its own: that is where it is scored.
    limit = min(len(s) for s in sequences) - 1
    n = 0
    while n < limit and all(s[n] == sequences[0][n] for s in sequences):
        n += 1
    return n


def _longest(encoded):
    return len(encoded.shared) + max(len(s) for s in encoded.suffixes)


def _share(lengths, budget):
    """Token allowance per content: short ones keep everything, the rest split evenly."""
    allowance = [0] * len(lengths)
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    for rank, i in enumerate(order):
        allowance[i] = min(lengths[i], budget // (len(lengths) - rank))
        budget -= allowance[i]
    return allowance


def _shorten(tokenizer, text, ids, keep):
    """`text` (tokenized as `ids`) with its middle replaced by ELISION, `keep` tokens kept."""
    if len(ids) <= keep:
        return text
    head = (keep + 1) // 2
    return decode(tokenizer, ids[:head]) + ELISION + decode(tokenizer, ids[len(ids) - (keep - head):])
