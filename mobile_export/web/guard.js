// An exported classifier folder (guard.tflite, tokenizer.model, guard.json from
// `gemma-kit export-guard`) run in the page with LiteRT.js on the CPU (WebAssembly).
// The inputs are built as guard.json's note says, the way mobile_export.guard_runtime
// builds them in Python.

import {Tensor, loadAndCompile, loadLiteRt} from "@litertjs/core";

import {SentencePiece} from "./sentencepiece.js";

const BLANKS = ["{user}", "{model}", "{guideline}"];

export class Guard {
  static async load(modelUrl, wasmUrl) {
    const base = modelUrl.endsWith("/") ? modelUrl : modelUrl + "/";
    const [config, tokenizer] = await Promise.all([
      fetch(base + "guard.json").then((r) => checked(r, "guard.json").json()),
      fetch(base + "tokenizer.model").then((r) => checked(r, "tokenizer.model").arrayBuffer()),
    ]);
    if (config.format !== "gemma-kit-guard/1") throw new Error(`guard.json: format ${config.format}, expected gemma-kit-guard/1`);
    // Threads need a cross-origin isolated page (the COOP / COEP headers web_demo sends).
    const threads = self.crossOriginIsolated === true;
    await loadLiteRt(wasmUrl, {threads});
    const model = await loadAndCompile(base + "guard.tflite", {
      accelerator: "wasm", cpuOptions: {numThreads: threads ? navigator.hardwareConcurrency : 1}});
    return new Guard(config, new SentencePiece(tokenizer), model, threads);
  }

  constructor(config, tokenizer, model, threads) {
    this.threads = threads;
    this.config = config;
    this.tokenizer = tokenizer;
    this.model = model;
    this.keys = config.policies.map((p) => p.key);
  }

  // {keys, scores: P(violation) per policy, tokens}; `response` null for the prompt use.
  async score(prompt, response = null) {
    const use = response === null ? "prompt" : "response";
    const spec = this.config.uses[use];
    if (!spec) throw new Error(`this classifier was exported without the ${use} use`);
    const prompts = this.config.policies.map((policy) => this.encode(spec.template, {
      "{user}": prompt, "{model}": response, "{guideline}": policy.guideline[use]}));
    const shared = commonPrefix(prompts);
    const suffixes = prompts.map((ids) => ids.slice(shared));
    const longest = shared + Math.max(...suffixes.map((s) => s.length));
    if (longest > spec.max_tokens) {
      throw new Error(`the text is too long for this classifier: ${longest} tokens, it takes at most ${spec.max_tokens}`);
    }
    // The signature with the fewest prefix tokens that hold the prefix.
    const [signature, prefixTokens] = Object.entries(spec.signatures)
      .filter(([, n]) => n >= shared).sort((a, b) => a[1] - b[1])[0];
    const rows = this.config.policies.length;
    const prefix = new Int32Array(prefixTokens);
    prefix.set(prompts[0].slice(0, shared));
    const suffix = new Int32Array(rows * spec.suffix_tokens);
    suffixes.forEach((ids, j) => suffix.set(ids, j * spec.suffix_tokens));
    const inputs = {
      prefix: new Tensor(prefix, [1, prefixTokens]),
      prefix_length: new Tensor(new Int32Array([shared]), [1]),
      suffix: new Tensor(suffix, [rows, spec.suffix_tokens]),
      last: new Tensor(new Int32Array(suffixes.map((s) => s.length - 1)), [rows]),
    };
    try {
      const outputs = await this.model.run(signature, inputs);
      const scores = Array.from(outputs.p_violation.toTypedArray());
      Object.values(outputs).forEach((t) => t.delete());
      return {keys: this.keys, scores, tokens: longest, signature};
    } finally {
      Object.values(inputs).forEach((t) => t.delete());
    }
  }

  // BOS, then each template part: a marker by id, or the filled text tokenized alone.
  encode(template, values) {
    const ids = [this.config.control_ids["<bos>"]];
    for (const part of template) {
      if (part in this.config.control_ids) ids.push(this.config.control_ids[part]);
      else ids.push(...this.tokenizer.encode(fill(part, values)));
    }
    return ids;
  }
}

// Each part holds at most one blank, filled once: typed "{guideline}" stays text.
function fill(part, values) {
  for (const blank of BLANKS) {
    const at = part.indexOf(blank);
    if (at >= 0) return part.slice(0, at) + values[blank] + part.slice(at + blank.length);
  }
  return part;
}

// Tokens every policy's prompt shares; each keeps at least its last token, where it is scored.
function commonPrefix(sequences) {
  const limit = Math.min(...sequences.map((s) => s.length)) - 1;
  let n = 0;
  while (n < limit && sequences.every((s) => s[n] === sequences[0][n])) n++;
  return n;
}

function checked(response, name) {
  if (!response.ok) throw new Error(`${name}: HTTP ${response.status} from ${response.url}`);
  return response;
}
