// Drive the page in headless Debian Chromium as a person would: type each text, press
// Screen, read what appears. Prints one JSON line: the page's load time, and per text
// the verdict and score table shown, the scores and the milliseconds.
//   node screen.mjs URL TEXTS_JSON      TEXTS_JSON: [{"prompt": "...", "response": null}, ...]
import {chromium} from "playwright-core";

const [url, textsJson] = process.argv.slice(2);
const texts = JSON.parse(textsJson);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  // No network but loopback here: Chromium's own background connections are turned off.
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage();
  const console_ = [];
  page.on("console", (m) => console_.push(m.text()));
  page.on("pageerror", (e) => console_.push(String(e)));
  await page.goto(url);
  await page.waitForFunction(() => window.gemmaKit?.loadMs !== null || /could not load/.test(document.body.innerText),
                             null, {timeout: 300000});
  const status = await page.textContent("#status");
  if (!(await page.evaluate(() => window.gemmaKit.loadMs))) throw new Error(`${status}\n${console_.join("\n")}`);
  const shown = [];
  for (const [i, {prompt, response}] of texts.entries()) {
    await page.fill("#prompt", prompt);
    await page.fill("#response", response ?? "");
    await page.click("#screen");
    await page.waitForFunction((n) => window.gemmaKit.results.length === n || /^error/.test(
      document.getElementById("verdict").textContent), i + 1, {timeout: 300000});
    shown.push({verdict: await page.textContent("#verdict"), table: await page.innerText("#scores"),
                status: await page.textContent("#status")});
  }
  const measured = await page.evaluate(() => window.gemmaKit);
  console.log(JSON.stringify({...measured, shown, console: console_}));
} finally {
  await browser.close();
}
