// The chat page in headless Chromium (Debian's /usr/bin/chromium driven by playwright-core): type
// a message on a phone-sized screen, see a reply stream in; the screenshot is kept as a test
// artifact (MOE_ARTIFACT_DIR/chat_page.png).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";
import { startServer, requiredEnv } from "./server.mjs";

let server;
let browser;

before(async () => {
  server = await startServer(requiredEnv("MOE_CLI"), requiredEnv("MOE_MODEL"), ["--parallel", "2", "-c", "512"]);
  browser = await chromium.launch({
    executablePath: process.env.MOE_CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
});

after(async () => {
  if (browser) await browser.close();
  assert.equal(await server.stop(), 0);
});

test("a typed message gets a streamed reply", async () => {
  const page = await browser.newPage({ viewport: { width: 390, height: 844 }, isMobile: true });
  const pageErrors = [];
  page.on("pageerror", (error) => pageErrors.push(error));
  await page.goto(server.url + "/");
  await page.fill("#input", "And God said");
  await page.click("#send");
  const reply = page.locator(".msg.assistant").first();
  // The reply fills in while streaming ...
  await page.waitForFunction(() => {
    const r = document.querySelector(".msg.assistant");
    return r && r.textContent.length > 0;
  }, null, { timeout: 60000 });
  // ... and is marked done at the end of the stream.
  await page.waitForSelector(".msg.assistant.done", { timeout: 120000 });
  const text = await reply.textContent();
  assert.ok(text.length > 0, "the reply is empty");
  // The page rendered the reply chunk by chunk from the SSE stream (it counts them).
  const chunks = Number(await reply.getAttribute("data-chunks"));
  assert.ok(chunks >= 5, `the reply arrived in ${chunks} chunks, not streamed`);
  assert.equal(await page.locator(".msg.error").count(), 0);
  assert.equal(await page.locator(".msg.user").textContent(), "And God said");
  assert.deepEqual(pageErrors, []);
  // The layout fits the phone screen: no horizontal scrolling.
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `page is ${overflow}px wider than the screen`);
  const dir = requiredEnv("MOE_ARTIFACT_DIR");
  mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: path.join(dir, "chat_page.png"), fullPage: true });
});
