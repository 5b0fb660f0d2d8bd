// Token ids of texts by the page's tokenizer, for comparing it with SentencePiece:
//   node tokenize.mjs TOKENIZER_MODEL < texts.json   (a JSON list of strings) -> JSON list of id lists
import {readFileSync} from "node:fs";

import {SentencePiece} from "./sentencepiece.js";

const tokenizer = new SentencePiece(readFileSync(process.argv[2]));
const texts = JSON.parse(readFileSync(0, "utf8"));
console.log(JSON.stringify(texts.map((text) => tokenizer.encode(text))));
