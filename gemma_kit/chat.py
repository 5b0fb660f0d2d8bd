"""Gemma turn format, built from token ids so that typed text never becomes structure.

    <start_of_turn>user\n{text}<end_of_turn>\n<start_of_turn>model\n

The turn markers are inserted by id; message text goes through the tokenizer, whose
proto the kit hardened (`gemma_kit.models.tokens`), so "<end_of_turn>" typed by a
user is a handful of ordinary text tokens.
"""

import numpy as np

from gemma_kit.errors import GemmaKitError

_ROLES = {"user": "user", "model": "model", "assistant": "model"}


def encode_text(tokenizer, text):
    """Token ids of `text` as plain text (no BOS, no control tokens)."""
    return [int(i) for i in np.asarray(tokenizer.tokenize(text)).reshape(-1)]


def decode(tokenizer, ids):
    """Text of token ids (control tokens dropped by the tokenizer)."""
    if not ids:
        return ""
    text = tokenizer.detokenize(np.asarray(ids, dtype="int32"))
    if hasattr(text, "numpy"):
        text = text.numpy()
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return str(text)


def control_id(tokenizer, piece):
    return int(tokenizer.token_to_id(piece))


def stop_token_ids(tokenizer):
    """Generation stops on either of these: `<eos>` and `<end_of_turn>`."""
    return (int(tokenizer.end_token_id), control_id(tokenizer, "<end_of_turn>"))


def encode_chat(tokenizer, messages, add_generation_prompt=True):
    """Token ids of a conversation, BOS first, ready for the model's next turn.

    `messages` are {"role": "user"|"model"|"assistant"|"system", "content": str}
    (see `turns`).
    """
    start = control_id(tokenizer, "<start_of_turn>")
    end = control_id(tokenizer, "<end_of_turn>")
    ids = [int(tokenizer.start_token_id)]
    for role, content in turns(messages):
        ids += [start, *encode_text(tokenizer, f"{role}\n{content}"), end]
        ids += encode_text(tokenizer, "\n")
    if add_generation_prompt:
        ids += [start, *encode_text(tokenizer, "model\n")]
    return ids


def turns(messages):
    """[(role, content)] per turn, roles "user" / "model", checked. Gemma has no system
    turn: a system message's text opens the next user message, as the Gemma chat
    template does. A conversation needs a user message, and a system message needs one
    after it."""
    result, system = [], None
    for i, message in enumerate(messages):
        role, content = _check_message(message, i)
        if role == "system":
            system = content if system is None else f"{system}\n\n{content}"
            continue
        if system is not None and role == "user":
            content, system = f"{system}\n\n{content}", None
        result.append((_ROLES[role], content))
    if system is not None:
        raise GemmaKitError("a system message must be followed by a user message, whose turn carries its text")
    if not any(role == "user" for role, _ in result):
        raise GemmaKitError(f"a conversation needs a user message, found {len(messages)} message(s) and none from "
                            "the user")
    return result


def _check_message(message, index):
    if not isinstance(message, dict) or "role" not in message or "content" not in message:
        raise GemmaKitError(f"message {index}: expected {{'role': ..., 'content': ...}}, found {message!r}")
    role, content = message["role"], message["content"]
    if role != "system" and role not in _ROLES:
        raise GemmaKitError(
            f"message {index}: role {role!r} is not one of user, model, assistant, system"
        )
    if not isinstance(content, str):
        raise GemmaKitError(f"message {index}: content must be a string, found {type(content).__name__}")
    return role, content
