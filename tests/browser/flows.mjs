// Browser flows of Berth's web UI, in Debian's headless Chromium driven
// by playwright-core. Run by the Rust tests (crates/berth/tests/cli/
// ui_browser.rs), which start Berth and push the images first:
//
//   node tests/browser/flows.mjs <flow> <base-url> <artifacts-dir> [args...]
//
// Exits non-zero with a clear message on failure; on success prints one
// JSON line (the flow's result). Screenshots: <artifacts-dir>/<flow>-*.png.

import { chromium } from "playwright-core";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [flow, base, artifacts, ...args] = process.argv.slice(2);
if (!flow || !base || !artifacts) {
  console.error("usage: flows.mjs <flow> <base-url> <artifacts-dir> [args...]");
  process.exit(2);
}
mkdirSync(artifacts, { recursive: true });

class FlowError extends Error {}
function check(cond, message) {
  if (!cond) throw new FlowError(message);
}

let shots = 0;
async function shot(page, name) {
  shots += 1;
  await page.screenshot({ path: join(artifacts, `${flow}-${shots}-${name}.png`), fullPage: true });
}

/// The page's status must be `want` and its heading `h1`.
async function visit(page, path, want = 200) {
  const resp = await page.goto(base + path);
  check(resp, `no answer for ${path}`);
  check(resp.status() === want, `${path}: status ${resp.status()}, expected ${want}`);
  return resp;
}

async function text(page) {
  return (await page.locator("main").innerText()).replace(/\s+/g, " ");
}

async function login(page, user, password) {
  await visit(page, "/ui/login?next=/");
  await page.getByLabel("User name").fill(user);
  await page.getByLabel("Password").fill(password);
  await Promise.all([page.waitForURL(base + "/"), page.getByRole("button", { name: "Log in" }).click()]);
  const header = await page.locator("header").innerText();
  check(header.includes(user), `after logging in, the header does not name ${user}: ${header}`);
  check(!header.includes("Log in"), "after logging in, the header still offers to log in");
}

/// No part of the page is wider than the window (readable on a phone).
async function fits(page, where) {
  const over = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(over <= 1, `${where}: the page is ${over}px wider than the window`);
}

const flows = {
  // Home → list → repository → image, anonymously, on a phone and wide.
  async browse(page, [repo, tag]) {
    const sizes = [];
    for (const [w, h] of [[390, 844], [1440, 900]]) {
      await page.setViewportSize({ width: w, height: h });
      await visit(page, "/");
      check((await text(page)).includes(repo), `home does not show ${repo}`);
      await fits(page, `home at ${w}px`);
      await shot(page, `home-${w}`);
      await page.getByRole("link", { name: "Repositories", exact: true }).first().click();
      await page.waitForURL(/\/ui\/repos/);
      check((await text(page)).includes(repo), `the list does not show ${repo}`);
      await fits(page, `list at ${w}px`);
      await shot(page, `list-${w}`);
      await page.getByRole("link", { name: repo, exact: true }).first().click();
      await page.waitForURL(/\/ui\/repo\//);
      const repoText = await text(page);
      check(repoText.includes(`docker pull`), `the repository page has no pull command: ${repoText}`);
      await fits(page, `repository at ${w}px`);
      await shot(page, `repo-${w}`);
      await page.getByRole("link", { name: tag, exact: true }).first().click();
      await page.waitForURL(/\/ui\/image\//);
      const h1 = await page.locator("h1").innerText();
      check(h1 === `${repo}:${tag}`, `the image page is titled ${h1}`);
      const imageText = await text(page);
      for (const want of ["Platforms", "Layers", "Signatures", "Built on"]) {
        check(imageText.includes(want), `the image page lacks ${want}`);
      }
      await fits(page, `image at ${w}px`);
      await shot(page, `image-${w}`);
      sizes.push(w);
    }
    // Keyboard: the skip link is the first stop.
    await page.keyboard.press("Tab");
    const focused = await page.evaluate(() => document.activeElement.textContent);
    check(focused.includes("Skip to content"), `the first tab stop is ${focused}`);
    return { widths: sizes };
  },

  async login(page, [user, password]) {
    await login(page, user, password);
    await shot(page, "home");
    return { user };
  },

  // Typing in the search box suggests; open the repository, an image,
  // star it, and find it on home.
  async "search-star"(page, [user, password, repo, tag]) {
    await login(page, user, password);
    const box = page.getByRole("searchbox", { name: "Search repositories" });
    await box.pressSequentially(repo.slice(0, 3), { delay: 30 });
    const suggestion = page.locator("#q-suggest a", { hasText: repo });
    await suggestion.first().waitFor({ timeout: 5000 });
    await shot(page, "suggest");
    await suggestion.first().click();
    await page.waitForURL(/\/ui\/repo\//);
    await page.getByRole("link", { name: tag, exact: true }).first().click();
    await page.waitForURL(/\/ui\/image\//);
    await shot(page, "image");
    await page.goBack();
    await page.getByRole("button", { name: "☆ Star" }).click();
    await page.getByRole("button", { name: "★ Starred" }).waitFor();
    await shot(page, "starred");
    await visit(page, "/");
    const starred = await page.locator("section", { has: page.locator("h2#starred") }).innerText();
    check(starred.includes(repo), `home's starred list lacks ${repo}: ${starred}`);
    await shot(page, "home");
    return { starred: repo };
  },

  // Make a key, read it once, see it is not shown again.
  async "apikey-create"(page, [user, password, label]) {
    await login(page, user, password);
    await visit(page, "/ui/apikeys");
    await page.getByLabel("Label").fill(label);
    await page.getByLabel(/Scopes/).fill("");
    await page.getByRole("button", { name: "Make key" }).click();
    const key = (await page.locator("#new-key").innerText()).trim();
    check(key.length > 10, `no key shown: ${key}`);
    await shot(page, "made");
    await visit(page, "/ui/apikeys");
    check(!(await page.content()).includes(key), "the key is shown a second time");
    check((await text(page)).includes(label), "the key is not listed");
    return { key };
  },

  async "apikey-revoke"(page, [user, password, label]) {
    await login(page, user, password);
    await visit(page, "/ui/apikeys");
    await page.getByRole("button", { name: `Revoke ${label}` }).click();
    await page.waitForURL(base + "/ui/apikeys");
    check(!(await text(page)).includes(label), "the key is still listed after revoking it");
    await shot(page, "revoked");
    return { revoked: label };
  },

  async logout(page, [user, password]) {
    await login(page, user, password);
    await page.getByRole("button", { name: "Log out" }).click();
    await page.waitForURL(base + "/");
    const header = await page.locator("header").innerText();
    check(header.includes("Log in") && !header.includes(user), `after logging out the header is: ${header}`);
    const resp = await page.goto(base + "/ui/apikeys");
    check(page.url().includes("/ui/login"), `after logging out, API keys went to ${page.url()} (${resp.status()})`);
    await shot(page, "out");
    return { user };
  },

  // Log in through an OpenID provider's own pages (oidc-provider's
  // development login and consent forms), see what its groups allow, make
  // an API key, log out.
  async openid(page, [provider, user, visible, hidden]) {
    await visit(page, "/ui/login?next=/");
    await shot(page, "login-page");
    await page.getByRole("link", { name: provider }).click();
    const name = page.locator('input[name="login"]');
    await name.waitFor();
    check(!page.url().startsWith(base), `the provider's page is on Berth: ${page.url()}`);
    await name.fill(user);
    await page.locator('input[name="password"]').fill("any");
    await shot(page, "provider-login");
    await page.getByRole("button", { name: "Sign-in" }).click();
    await page.getByRole("button", { name: "Continue" }).click();
    await page.waitForURL(base + "/");
    const header = await page.locator("header").innerText();
    check(header.includes(user), `after the OpenID login, the header does not name ${user}: ${header}`);
    const t = await text(page);
    check(t.includes(visible), `home does not show ${visible}, which ${user}'s groups may read`);
    check(!t.includes(hidden), `home shows ${hidden}, which ${user}'s groups may not read`);
    await shot(page, "home");
    await visit(page, "/ui/apikeys");
    await page.getByLabel("Label").fill("sso");
    await page.getByRole("button", { name: "Make key" }).click();
    const key = (await page.locator("#new-key").innerText()).trim();
    check(key.length > 10, `no key shown: ${key}`);
    await shot(page, "key");
    // Logging out goes through the provider's end-session page (its own
    // session ends too), which sends the browser back home.
    await page.getByRole("button", { name: "Log out" }).click();
    await page.waitForURL((u) => !String(u).startsWith(base));
    await shot(page, "provider-logout");
    await page.getByRole("button", { name: /sign me out/i }).click();
    await page.waitForURL(base + "/");
    const out = await page.locator("header").innerText();
    check(out.includes("Log in") && !out.includes(user), `after logging out the header is: ${out}`);
    const after = await page.goto(base + "/ui/apikeys");
    check(page.url().includes("/ui/login"), `after logging out, API keys went to ${page.url()} (${after.status()})`);
    // Logging in again asks the provider for the user again: its session
    // ended with Berth's.
    await page.getByRole("link", { name: provider }).click();
    await page.locator('input[name="login"]').waitFor();
    return { key };
  },

  // A user denied a repository sees it nowhere.
  async denied(page, [user, password, hidden, visible]) {
    await login(page, user, password);
    for (const path of ["/", "/ui/repos", `/ui/repos?q=${encodeURIComponent(hidden)}`]) {
      await visit(page, path);
      const t = await text(page);
      const links = await page.locator(`a[href="/ui/repo/${hidden}"]`).count();
      check(links === 0, `${path} links to ${hidden}`);
      // (A search page repeats what was typed in its heading.)
      check(path.includes("?q=") || !t.includes(hidden), `${path} shows ${hidden}`);
      check(path.includes("?q=") || t.includes(visible), `${path} does not show ${visible}`);
    }
    const box = page.getByRole("searchbox", { name: "Search repositories" });
    await box.fill("");
    await box.pressSequentially(hidden.slice(0, 4), { delay: 30 });
    await page.waitForTimeout(600);
    const suggested = await page.locator("#q-suggest").innerText().catch(() => "");
    check(!suggested.includes(hidden), `the search box suggests ${hidden}`);
    await visit(page, `/ui/repo/${hidden}`, 404);
    check((await page.locator("h1").innerText()) === "Not found", "the denied repository's page is no 404 page");
    await shot(page, "denied");
    return { hidden };
  },
};

const run = flows[flow];
if (!run) {
  console.error(`unknown flow ${flow}; flows: ${Object.keys(flows).join(", ")}`);
  process.exit(2);
}
const profile = mkdtempSync(join(tmpdir(), "berth-chromium-"));
let context;
let status = 0;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    viewport: { width: 1280, height: 900 },
  });
  context.setDefaultTimeout(15000);
  const page = context.pages()[0] ?? (await context.newPage());
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  // Pages answered 404 on purpose log "Failed to load resource": the
  // assets are checked by their responses instead.
  page.on("console", (m) => {
    if (m.type() === "error" && !m.text().startsWith("Failed to load resource")) errors.push(m.text());
  });
  page.on("response", (r) => {
    if (r.url().includes("/ui/assets/") && r.status() !== 200) errors.push(`${r.url()}: ${r.status()}`);
  });
  const result = await run(page, args);
  // A missing asset or a script error (CSP included) fails the flow.
  check(errors.length === 0, `the browser reported errors: ${errors.join(" | ")}`);
  console.log(JSON.stringify({ flow, ok: true, ...result }));
} catch (e) {
  console.error(`flow ${flow} failed: ${e instanceof FlowError ? e.message : e.stack || e}`);
  status = 1;
} finally {
  if (context) await context.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}
process.exit(status);
