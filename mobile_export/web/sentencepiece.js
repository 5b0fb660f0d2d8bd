// SentencePiece BPE encoding in the page, read from the tokenizer.model an export ships.
// Gemma's tokenizer: BPE pieces with scores, byte fallback, spaces as U+2581. Control
// pieces (turn markers, BOS) are never produced from text: an app inserts them by id,
// so typed "<end_of_turn>" stays text.

const NORMAL = 1, CONTROL = 3, USER_DEFINED = 4, BYTE = 6;
const SPACE = "\u2581";

// The few protobuf fields of sentencepiece_model.proto this needs.
function* fields(bytes, start = 0, end = bytes.length) {
  let pos = start;
  const varint = () => {
    let result = 0, shift = 0, byte;
    do {
      byte = bytes[pos++];
      result += (byte & 0x7f) * 2 ** shift;
      shift += 7;
    } while (byte & 0x80);
    return result;
  };
  while (pos < end) {
    const key = varint();
    const number = Math.floor(key / 8), wire = key & 7;
    if (wire === 0) yield {number, value: varint()};
    else if (wire === 1) { yield {number, offset: pos}; pos += 8; }
    else if (wire === 2) { const length = varint(); yield {number, offset: pos, length}; pos += length; }
    else if (wire === 5) { yield {number, offset: pos}; pos += 4; }
    else throw new Error(`tokenizer.model: unsupported protobuf wire type ${wire}`);
  }
}

export class SentencePiece {
  constructor(modelBytes) {
    const bytes = new Uint8Array(modelBytes);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const text = new TextDecoder();
    this.pieces = new Map();     // piece -> [id, score] for NORMAL and USER_DEFINED pieces
    this.controls = new Map();   // piece -> id for CONTROL pieces
    this.bytes = new Map();      // byte value -> id of <0xXX>
    this.userDefined = [];
    this.addDummyPrefix = true;
    this.removeExtraWhitespaces = true;
    let id = 0;
    for (const field of fields(bytes)) {
      if (field.number === 1) {
        let piece = "", score = 0, type = NORMAL;
        for (const f of fields(bytes, field.offset, field.offset + field.length)) {
          if (f.number === 1) piece = text.decode(bytes.subarray(f.offset, f.offset + f.length));
          else if (f.number === 2) score = view.getFloat32(f.offset, true);
          else if (f.number === 3) type = f.value;
        }
        if (type === NORMAL || type === USER_DEFINED) this.pieces.set(piece, [id, score]);
        if (type === USER_DEFINED) this.userDefined.push(piece);
        if (type === CONTROL) this.controls.set(piece, id);
        if (type === BYTE) this.bytes.set(parseInt(piece.slice(3, 5), 16), id);
        id++;
      } else if (field.number === 3) {  // normalizer_spec
        for (const f of fields(bytes, field.offset, field.offset + field.length)) {
          if (f.number === 3) this.addDummyPrefix = f.value !== 0;
          if (f.number === 4) this.removeExtraWhitespaces = f.value !== 0;
        }
      }
    }
    this.size = id;
    this.userDefined.sort((a, b) => b.length - a.length);  // longest match first
  }

  // Token ids of `text` as plain text: no BOS, no control tokens.
  encode(text) {
    if (this.removeExtraWhitespaces) text = text.trim().replace(/ +/g, " ");
    let normalized = text.replaceAll(" ", SPACE);
    if (this.addDummyPrefix && normalized) normalized = SPACE + normalized;
    // Initial symbols: user-defined pieces whole (never merged further), else characters.
    const symbols = [];
    for (let pos = 0; pos < normalized.length;) {
      const match = this.userDefined.find((piece) => normalized.startsWith(piece, pos));
      const piece = match ?? String.fromCodePoint(normalized.codePointAt(pos));
      symbols.push({piece, frozen: match !== undefined});
      pos += piece.length;
    }
    // Merge the adjacent pair that forms the best-scoring piece, the leftmost on ties.
    for (;;) {
      let best = -1, bestScore = -Infinity;
      for (let i = 0; i + 1 < symbols.length; i++) {
        if (symbols[i].frozen || symbols[i + 1].frozen) continue;
        const entry = this.pieces.get(symbols[i].piece + symbols[i + 1].piece);
        if (entry && entry[1] > bestScore) { best = i; bestScore = entry[1]; }
      }
      if (best < 0) break;
      symbols.splice(best, 2, {piece: symbols[best].piece + symbols[best + 1].piece, frozen: false});
    }
    const ids = [];
    for (const {piece} of symbols) {
      const entry = this.pieces.get(piece);
      if (entry) ids.push(entry[0]);
      else for (const byte of new TextEncoder().encode(piece)) ids.push(this.bytes.get(byte));
    }
    return ids;
  }
}
