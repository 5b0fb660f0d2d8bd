// The page: ?model=URL of an exported classifier folder (default ./model/).
import {Guard} from "./guard.js";

const started = performance.now();
const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const modelUrl = params.get("model") ?? "./model/";
// What the page measured, for the browser test and the benchmark.
window.gemmaKit = {loadMs: null, results: []};

try {
  const guard = await Guard.load(modelUrl, new URL("./node_modules/@litertjs/core/wasm/", location.href).href);
  window.gemmaKit.loadMs = performance.now() - started;
  window.gemmaKit.threads = guard.threads ? navigator.hardwareConcurrency : 1;
  $("status").textContent = `ready: ${guard.keys.length} policies, loaded in ${Math.round(window.gemmaKit.loadMs)} ms, running on this device (WebAssembly CPU, ${guard.threads ? navigator.hardwareConcurrency + " threads" : "1 thread"})`;
  $("screen").disabled = false;
  $("screen").addEventListener("click", async () => {
    $("screen").disabled = true;
    $("verdict").textContent = "screening…";
    try {
      const response = $("response").value.trim() ? $("response").value : null;
      const t0 = performance.now();
      const result = await guard.score($("prompt").value, response);
      const ms = performance.now() - t0;
      window.gemmaKit.results.push({...result, ms, sinceStartMs: performance.now() - started});
      show(result, Number($("threshold").value), ms);
    } catch (error) {
      $("verdict").textContent = `error: ${error.message}`;
    } finally {
      $("screen").disabled = false;
    }
  });
} catch (error) {
  $("status").textContent = `could not load the classifier from ${modelUrl}: ${error.message}`;
}

function show({keys, scores, tokens}, threshold, ms) {
  const flagged = keys.filter((_, i) => scores[i] >= threshold);
  $("verdict").textContent = flagged.length ? `FLAGGED: ${flagged.join(", ")}` : "SAFE";
  $("verdict").className = flagged.length ? "flagged" : "";
  $("scores").replaceChildren(...keys.map((key, i) => {
    const row = document.createElement("tr");
    for (const text of [key, scores[i].toFixed(4)]) row.appendChild(document.createElement("td")).textContent = text;
    if (scores[i] >= threshold) row.className = "flagged";
    return row;
  }));
  $("status").textContent = `${tokens} tokens screened in ${Math.round(ms)} ms on this device`;
}
