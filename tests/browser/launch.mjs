// Debian's chromium, headless, as both browser scripts (drive.mjs, console.mjs) start it:
// no sandbox (CI runs as root), no GPU, no /dev/shm (small in containers). CHROMIUM
// overrides the binary.
import puppeteer from "puppeteer-core";

export function launchChromium() {
  return puppeteer.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"],
  });
}
