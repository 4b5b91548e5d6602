// Drives Debian's chromium (headless) with puppeteer-core for tests/integration/18_browser.py.
// Usage: node drive.mjs '<json>' where json = {page, urls, victimPid, artifacts, consoles}:
//   page       URL of page.html (served on loopback by the Python test)
//   urls       the brokers' ws:// URLs, master first
//   victimPid  the master's pid: killed (SIGKILL) in the middle of a batch of sends
//   artifacts  directory for the screenshots
//   consoles   optional {before: [...], after: [...]} of {name, url, wait_role, wait_group, wait_timeline}:
//              admin console pages (/console) to screenshot before the kill and after the
//              reconnect, once their broker has the role, the group view lists wait_group and
//              the failover timeline (epoch:broker,...) wait_timeline
// Prints one JSON object on stdout: what the page saw (receipted and received bodies, the
// brokers it connected to, errors) and how long the reconnect took. The Python side judges.
import fs from "node:fs";
import path from "node:path";
import { launchChromium } from "./launch.mjs";

const args = JSON.parse(process.argv[2]);
const out = { steps: [] };
const step = (name) => out.steps.push({ name, at_ms: Date.now() });

async function screenshotConsoles(browser, suffix) {
  for (const c of (args.consoles || {})[suffix] || []) {
    const tab = await browser.newPage();
    await tab.setViewport({ width: 1280, height: 900 });
    if (c.user) await tab.authenticate({ username: c.user, password: c.password });
    await tab.goto(c.url, { waitUntil: "load" });
    await tab.waitForFunction(() => document.body.dataset.loaded === "yes", { timeout: 15000 });
    if (c.wait_role) {
      await tab.waitForFunction((role) => document.body.dataset.role === role, { timeout: 20000 }, c.wait_role);
    }
    if (c.wait_group) {
      await tab.waitForFunction((g) => (document.body.dataset.group || "").includes(g), { timeout: 20000 }, c.wait_group);
    }
    if (c.wait_timeline) {
      await tab.waitForFunction((t) => (document.body.dataset.timeline || "").includes(t), { timeout: 20000 }, c.wait_timeline);
    }
    const file = path.join(args.artifacts, `console-${c.name}-${suffix}.png`);
    await tab.screenshot({ path: file, fullPage: true });
    out[`console_${c.name}_${suffix}`] = await tab.evaluate(() => ({
      role: document.body.dataset.role, group: document.body.dataset.group || "",
      timeline: document.body.dataset.timeline || "", charts: document.body.dataset.charts || "" }));
    await tab.close();
  }
}

const browser = await launchChromium();
try {
  fs.mkdirSync(args.artifacts, { recursive: true });
  const page = await browser.newPage();
  await page.setViewport({ width: 1000, height: 700 });
  page.on("console", (m) => process.stderr.write(`page: ${m.text()}\n`));
  page.on("pageerror", (e) => process.stderr.write(`page error: ${e}\n`));
  await page.goto(args.page, { waitUntil: "load" });
  await page.evaluate((urls) => window.tandem.start(urls, "/queue/browser"), args.urls);
  await page.waitForFunction(() => window.tandem.connected(), { timeout: 15000 });
  step("connected");
  await screenshotConsoles(browser, "before");
  out.batch_a = await page.evaluate(() => window.tandem.sendBatch("a", 50, 10000));
  step("batch a receipted");
  await page.screenshot({ path: path.join(args.artifacts, "page-before-failover.png") });
  // A batch in flight when the master dies: some RECEIPTs come, the rest never do.
  const inFlight = page.evaluate(() => window.tandem.sendBatch("c", 1000, 8000));
  // Kill while the batch is on the wire: its first frames may be receipted, the rest never.
  await new Promise((resolve) => setTimeout(resolve, 15));
  const killedAt = Date.now();
  process.kill(args.victimPid, "SIGKILL");
  step("master killed");
  await page.waitForFunction(() => window.tandem.snapshot().connects >= 2 && window.tandem.connected(), { timeout: 30000 });
  out.reconnect_ms = Date.now() - killedAt;
  step("reconnected");
  out.batch_c = await inFlight;
  out.batch_b = await page.evaluate(() => window.tandem.sendBatch("b", 50, 10000));
  step("batch b receipted");
  const receipted = [...out.batch_a, ...out.batch_c, ...out.batch_b];
  try {
    await page.waitForFunction((want) => {
      const got = new Set(window.tandem.snapshot().received);
      return want.every((b) => got.has(b));
    }, { timeout: 20000 }, receipted);
  } catch (e) {
    out.wait_error = String(e);
  }
  step("all receipted received");
  await page.screenshot({ path: path.join(args.artifacts, "page-after-failover.png") });
  await screenshotConsoles(browser, "after");
  Object.assign(out, await page.evaluate(() => window.tandem.snapshot()));
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(out) + "\n");
