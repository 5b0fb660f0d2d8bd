"""Supervised tuning data: JSONL conversations rendered in the Gemma turn format, with
the loss on the model's tokens only, in padded or packed batches.

One example per line, either a chat or a prompt / response pair:

    {"messages": [{"role": "user", "content": "..."}, {"role": "model", "content": "..."}]}
    {"prompt": "...", "response": "..."}

`render` gives the ids `gemma_kit.encode_chat` gives at inference (turn markers by id,
text through the hardened tokenizer), except that a model turn's content is tokenized
apart from its "model\\n" header, as it is when the model generates it. The loss covers
each model turn's content and its `<end_of_turn>`, so the model learns to answer and
to stop; BOS, user turns, headers and padding carry no loss.
"""

import json

import keras
import numpy as np

from gemma_kit.chat import control_id, encode_text, turns
from gemma_kit.errors import GemmaKitError


def read_jsonl(path):
    """The file's examples, each a list of chat messages."""
    examples = []
    try:
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if line.strip():
                    examples.append(_messages(f"{path}:{number}", line))
    except FileNotFoundError:
        raise GemmaKitError(f"{path}: file not found") from None
    except UnicodeDecodeError as e:
        raise GemmaKitError(f"{path}: not UTF-8 text (byte {e.start} of a line)") from None
    if not examples:
        raise GemmaKitError(f"{path}: no examples")
    return examples


def _messages(where, line):
    try:
        record = json.loads(line)
    except json.JSONDecodeError as e:
        raise GemmaKitError(f"{where}: not JSON ({e.msg})") from None
    if not isinstance(record, dict):
        raise GemmaKitError(f"{where}: expected an object, found {type(record).__name__}")
    if "messages" in record:
        messages = record["messages"]
    elif "prompt" in record and "response" in record:
        messages = [{"role": "user", "content": record["prompt"]}, {"role": "model", "content": record["response"]}]
    else:
        raise GemmaKitError(f"{where}: expected the key 'messages', or 'prompt' and 'response'; found {sorted(record)}")
    if not isinstance(messages, list):
        raise GemmaKitError(f"{where}: 'messages' must be a list, found {type(messages).__name__}")
    try:
        roles = [role for role, _ in turns(messages)]
    except GemmaKitError as e:
        raise GemmaKitError(f"{where}: {e}") from None
    if "model" not in roles:
        raise GemmaKitError(f"{where}: no model turn to learn from")
    return messages


def render(tokenizer, messages):
    """(token ids, loss mask) of one conversation: BOS + turns, mask 1 on each model
    turn's content and `<end_of_turn>`."""
    start, end = control_id(tokenizer, "<start_of_turn>"), control_id(tokenizer, "<end_of_turn>")
    newline = encode_text(tokenizer, "\n")
    ids, mask = [int(tokenizer.start_token_id)], [0]
    for role, content in turns(messages):
        if role == "model":
            header = [start, *encode_text(tokenizer, "model\n")]
            answer = [*encode_text(tokenizer, content), end]
            ids += header + answer + newline
            mask += [0] * len(header) + [1] * len(answer) + [0] * len(newline)
        else:
            turn = [start, *encode_text(tokenizer, f"{role}\n{content}"), end, *newline]
            ids += turn
            mask += [0] * len(turn)
    return ids, mask


class SupervisedBatches(keras.utils.PyDataset):
    """Batches for `keras.Model.fit`: x = {"token_ids", "padding_mask"} [batch, length],
    y = the next token, sample_weight = its loss mask. Every batch has `batch_size`
    rows: the last one is filled with padding rows that carry no loss.

    Padded: one conversation per row, cut to `sequence_length` + 1 tokens (the cut is
    counted in `truncated`). Packed: conversations, each starting with BOS, are joined
    into one stream and cut into rows; as keras-hub's Gemma has no segment mask, a
    token can attend to an earlier conversation in its row (the usual concat-and-chunk
    packing). The order is a function of (seed, epoch) alone, which is what makes an
    interrupted run resumable: set `epoch` (and `skip` batches) and the same batches
    come back.
    """

    def __init__(self, rows, batch_size, sequence_length, pad_id, packing=False, shuffle=True, seed=0):
        super().__init__()
        if not rows:
            raise GemmaKitError("no examples to batch")
        self.rows, self.batch_size, self.length = rows, int(batch_size), int(sequence_length)
        self.pad_id, self.packing, self.shuffle, self.seed = int(pad_id), packing, shuffle, seed
        self.epoch, self.skip = 0, 0
        self.truncated = 0 if packing else sum(len(ids) > self.length + 1 for ids, _ in rows)
        width = self.length + 1
        self._count = -(-sum(len(ids) for ids, _ in rows) // width) if packing else len(rows)

    def __len__(self):
        return -(-self._count // self.batch_size) - self.skip

    def __getitem__(self, index):
        ids, mask = self._epoch_arrays()
        rows = slice((index + self.skip) * self.batch_size, (index + self.skip + 1) * self.batch_size)
        ids, mask = _full_batch(ids[rows], self.batch_size, -1), _full_batch(mask[rows], self.batch_size, 0)
        inputs, real = ids[:, :-1], ids[:, :-1] != -1
        x = {"token_ids": np.where(real, inputs, self.pad_id).astype("int32"), "padding_mask": real}
        # Targets at padding are 0 with weight 0.
        return x, np.maximum(ids[:, 1:], 0).astype("int32"), mask[:, 1:].astype("float32")

    def loss_width(self, epochs):
        """The most loss-carrying targets of one row in any of `epochs`, rounded up to 8
        (at most the sequence length)."""
        epochs = epochs if self.packing else [0]  # padded rows hold the same loss in any order
        most = max(int(mask[:, 1:].astype(np.int64).sum(1).max()) for _, mask in map(self._arrays, epochs))
        return max(1, min(self.length, -(-most // 8) * 8))

    def _epoch_arrays(self):
        if getattr(self, "_cached_epoch", None) != self.epoch:
            self._cached, self._cached_epoch = self._arrays(self.epoch), self.epoch
        return self._cached

    def _order(self, epoch):
        if not self.shuffle:
            return np.arange(len(self.rows))
        return np.random.default_rng([self.seed, epoch]).permutation(len(self.rows))

    def _arrays(self, epoch):
        """int [rows, length + 1] ids (-1 where padding) and their loss mask."""
        width = self.length + 1
        order = self._order(epoch)
        if self.packing:
            stream = np.concatenate([self.rows[i][0] for i in order])
            weights = np.concatenate([self.rows[i][1] for i in order])
            count = -(-len(stream) // width)
            ids, mask = np.full(count * width, -1, np.int64), np.zeros(count * width, np.int8)
            ids[: len(stream)], mask[: len(stream)] = stream, weights
            return ids.reshape(count, width), mask.reshape(count, width)
        ids, mask = np.full((len(order), width), -1, np.int64), np.zeros((len(order), width), np.int8)
        for row, i in enumerate(order):
            tokens, weights = self.rows[i][0][:width], self.rows[i][1][:width]
            ids[row, : len(tokens)], mask[row, : len(tokens)] = tokens, weights
        return ids, mask


def _full_batch(rows, batch_size, fill):
    """`rows` with rows of `fill` added up to `batch_size`: a short last batch would be a
    new shape, compiled again for one step (about 5 s for the 270M's training step), and
    one that data parallelism cannot split across devices. The added rows carry no loss
    weight, and the loss averages over the weighted tokens."""
    missing = batch_size - len(rows)
    return np.concatenate([rows, np.full((missing, rows.shape[1]), fill, rows.dtype)]) if missing else rows


def supervised_batches(tokenizer, examples, batch_size=4, sequence_length=None, packing=False, shuffle=True, seed=0,
                       max_length=512):
    """`SupervisedBatches` of rendered `examples` (lists of messages, or a JSONL path).
    `sequence_length` defaults to the longest example (rounded up to 8, at most
    `max_length`), so a fixed shape compiles once without padding to a far bound."""
    if isinstance(examples, (str, bytes)) or hasattr(examples, "__fspath__"):
        examples = read_jsonl(examples)
    rows = [render(tokenizer, messages) for messages in examples]
    if sequence_length is None:
        longest = max(len(ids) for ids, _ in rows) - 1
        sequence_length = min(max_length, -(-longest // 8) * 8)
    rows = [(np.asarray(ids, np.int64), np.asarray(mask, np.int8)) for ids, mask in rows]
    return SupervisedBatches(rows, batch_size, sequence_length, tokenizer.pad_token_id, packing, shuffle, seed)
