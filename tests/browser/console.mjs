// Drives Debian's chromium (headless) through the console's send and browse panels for
// tests/integration/18_browser.py. Usage: node console.mjs '<json>' where json =
//   {console, user, password, login, passcode, destination, body, artifacts}:
//   console   the admin port's /console URL (HTTP Basic: user, password; group "admin")
//   login     STOMP login and passcode typed into the send panel
//   body      the test message: sent through the send panel (@stomp/stompjs over ws://),
//             then looked for in the browse panel of `destination`
// Prints one JSON object: the send panel's result line, the browse panel's rows, errors.
// Screenshots: console-send.png, console-browse.png in `artifacts`.
import fs from "node:fs";
import path from "node:path";
import { launchChromium } from "./launch.mjs";

const args = JSON.parse(process.argv[2]);
const out = { errors: [] };

const browser = await launchChromium();
try {
  fs.mkdirSync(args.artifacts, { recursive: true });
  const tab = await browser.newPage();
  await tab.setViewport({ width: 1280, height: 900 });
  tab.on("pageerror", (e) => out.errors.push(String(e)));
  await tab.authenticate({ username: args.user, password: args.password });
  await tab.goto(args.console, { waitUntil: "load" });
  await tab.waitForFunction(() => document.body.dataset.loaded === "yes" && document.body.dataset.role === "master",
                            { timeout: 15000 });
  out.stompjs_loaded = await tab.evaluate(() => Boolean(window.StompJs));
  // The send panel, as an operator fills it in.
  await tab.$eval("#send-destination", (e, v) => { e.value = v; }, args.destination);
  await tab.$eval("#send-body", (e, v) => { e.value = v; }, args.body);
  await tab.type("#send-login", args.login);
  await tab.type("#send-passcode", args.passcode);
  await tab.click("#send-button");
  try {
    await tab.waitForFunction(() => Boolean(document.body.dataset.sent), { timeout: 15000 });
  } catch (e) {
    out.errors.push("send panel: " + String(e));
  }
  out.send_result = await tab.$eval("#send-result", (e) => e.textContent);
  await tab.screenshot({ path: path.join(args.artifacts, "console-send.png"), fullPage: true });
  // The destinations table lists the queue once the next poll has run; its browse button
  // opens the browse panel. Find and click in one step: the table is redrawn every poll.
  await tab.waitForFunction((name) => [...document.querySelectorAll("#destinations tbody tr")]
    .some((r) => r.cells[0].textContent === name && r.querySelector("button.browse")), { timeout: 15000 }, args.destination);
  await tab.evaluate((name) => {
    const row = [...document.querySelectorAll("#destinations tbody tr")].find((r) => r.cells[0].textContent === name);
    row.querySelector("button.browse").click();
  }, args.destination);
  try {
    await tab.waitForFunction((body) => [...document.querySelectorAll("#browse tbody tr")]
      .some((r) => r.cells[6].textContent.startsWith(body)), { timeout: 15000 }, args.body);
  } catch (e) {
    out.errors.push("browse panel: " + String(e));
  }
  out.browse_rows = await tab.evaluate(() => [...document.querySelectorAll("#browse tbody tr")]
    .map((r) => [...r.cells].map((c) => c.textContent)));
  out.browse_problem = await tab.$eval("#browse-problem", (e) => e.textContent);
  await tab.$eval("#browse-panel", (e) => e.scrollIntoView());
  await tab.screenshot({ path: path.join(args.artifacts, "console-browse.png"), fullPage: true });
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(out) + "\n");
