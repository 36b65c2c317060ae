// Shared steps of the browser suite: sign in as a demo account, save a screenshot, scan for
// accessibility problems, and fail on anything the browser console reports (a script error, a
// Content-Security-Policy violation, a failed request); the demo's sample resident, and signed
// channel requests as the demo's WeChat channel.
import { expect } from '@playwright/test';
import AxeBuilder from '@axe-core/playwright';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

export const DEMO = {
  admin: ['admin', 'yibao-demo-admin'],
  station: ['nt-st01', 'yibao-demo-station'],
  tax: ['nt-tax', 'yibao-demo-tax'],
  auditor: ['auditor', 'yibao-demo-auditor'],
};

/** Collects console errors and failed requests of a page; `assertClean` fails the test on any. */
export function watch(page) {
  const problems = [];
  page.on('console', (m) => {
    // A 4xx answer to a form is the page showing the user's mistake (checked by each test); the
    // browser logs it as "Failed to load resource". Anything else logged as an error counts,
    // a Content-Security-Policy violation above all.
    if (m.type() === 'error' && !/Failed to load resource: the server responded with a status of 4\d\d/.test(m.text())) {
      problems.push(`console: ${m.text()}`);
    }
  });
  page.on('pageerror', (e) => problems.push(`uncaught: ${e.message}`));
  page.on('requestfailed', (r) => {
    // A request cut short because the page moved on is not a failure.
    if (r.failure()?.errorText !== 'net::ERR_ABORTED') problems.push(`request failed: ${r.url()} ${r.failure()?.errorText}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 500) problems.push(`HTTP ${r.status()}: ${r.url()}`);
    if (r.status() >= 400 && r.url().includes('/assets/')) problems.push(`HTTP ${r.status()}: ${r.url()}`);
  });
  return {
    problems,
    assertClean() { expect(problems, problems.join('\n')).toEqual([]); },
  };
}

export async function signIn(page, [username, password]) {
  await page.goto('/console/login');
  await page.getByLabel('用户名').fill(username);
  await page.getByLabel('密码').fill(password);
  await page.getByRole('button', { name: '登录' }).click();
  await expect(page.getByRole('button', { name: '退出' })).toBeVisible();
}

/** A full-page screenshot in e2e/screenshots/NAME.png. */
export async function shot(page, name) {
  await page.screenshot({ path: `screenshots/${name}.png`, fullPage: true });
}

/** WCAG 2 A/AA problems of the page, none expected. */
export async function accessible(page) {
  const result = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa']).analyze();
  const summary = result.violations.map((v) => `${v.id}: ${v.help} (${v.nodes.length}) ${v.nodes.slice(0, 2).map((n) => n.target.join(' ')).join(' | ')}`);
  expect(summary, summary.join('\n')).toEqual([]);
}

const WECHAT = ['wechat', 'demo-secret-wechat-pay-000'];

/** The sample resident `yibao demo` prints: name and ID number. */
export function sampleResident() {
  const log = readFileSync(`${process.env.YIBAO_DEMO_DIR}/demo.log`, 'utf8');
  const m = log.match(/sample resident: (\S+) (\d{17}[\dX])/);
  if (!m) throw new Error('demo.log names no sample resident');
  return { name: m[1], id: m[2] };
}

/** The 海口 resident `yibao demo` prints whose cover lapsed in 2025 and 2026 (the 2025 rules). */
export function lapsedResident() {
  const log = readFileSync(`${process.env.YIBAO_DEMO_DIR}/demo.log`, 'utf8');
  const m = log.match(/lapsed resident: (\S+) (\d{17}[\dX])/);
  if (!m) throw new Error('demo.log names no lapsed resident');
  return { name: m[1], id: m[2] };
}

/** The 海口 resident `yibao demo` prints who is insured since 2019 with two years without
 * reimbursement: the critical-illness reward. */
export function rewardedResident() {
  const log = readFileSync(`${process.env.YIBAO_DEMO_DIR}/demo.log`, 'utf8');
  const m = log.match(/rewarded resident: (\S+) (\d{17}[\dX])/);
  if (!m) throw new Error('demo.log names no rewarded resident');
  return { name: m[1], id: m[2] };
}

/** The 三亚 resident `yibao demo` prints with a subsidy (资助), whom 三亚's channel rules send to
 * the service station. */
export function subsidisedResident() {
  const log = readFileSync(`${process.env.YIBAO_DEMO_DIR}/demo.log`, 'utf8');
  const m = log.match(/subsidised resident: (\S+) (\d{17}[\dX])/);
  if (!m) throw new Error('demo.log names no subsidised resident');
  return { name: m[1], id: m[2] };
}

/** The demo's family account: the employee and the first relative bound to their account. */
export function familyAccount() {
  const log = readFileSync(`${process.env.YIBAO_DEMO_DIR}/demo.log`, 'utf8');
  const m = log.match(/职工 (\d{17}[\dX]) 可为 (\S+) (\S+) (\d{17}[\dX])/);
  if (!m) throw new Error('demo.log names no family account');
  return { employee: m[1], relationship: m[2], name: m[3], id: m[4] };
}

/** A signed channel request (docs/integrator-guide.md): HMAC-SHA256 over five lines. */
export async function channelCall(request, method, path, body, as = WECHAT) {
  const [channel, secret] = as;
  const text = JSON.stringify(body);
  const timestamp = Math.floor(Date.now() / 1000).toString();
  const nonce = randomBytes(16).toString('hex');
  const bodyHash = createHash('sha256').update(text).digest('hex');
  const signature = createHmac('sha256', secret)
    .update(`${method}\n${path}\n${timestamp}\n${nonce}\n${bodyHash}\n`).digest('hex');
  const response = await request.fetch(path, {
    method,
    data: text,
    headers: {
      'Content-Type': 'application/json', 'Yibao-Channel': channel, 'Yibao-Timestamp': timestamp,
      'Yibao-Nonce': nonce, 'Yibao-Signature': signature,
    },
  });
  return { status: response.status(), body: await response.json() };
}

/** Signs `person` in on `page` with the code read from the demo mailbox in a second tab. */
export async function signInWithCode(page, context, person) {
  await page.goto('/signin');
  await page.getByLabel('身份证号码').fill(person.id);
  await page.getByLabel('姓名').fill(person.name);
  await page.getByRole('button', { name: '获取验证码' }).click();
  await expect(page.getByRole('heading', { name: '输入验证码' })).toBeVisible();
  const mailbox = await context.newPage();
  await mailbox.goto('/demo/mailbox');
  await mailbox.getByRole('button', { name: '立即投递并刷新' }).click();
  const code = (await mailbox.locator('.sms').first().innerText()).match(/验证码是(\d{6})/)[1];
  await mailbox.close();
  await page.getByLabel('短信验证码').fill(code);
  await page.getByRole('button', { name: '登录' }).click();
  await expect(page.getByRole('heading', { name: /您好/ })).toBeVisible();
}
