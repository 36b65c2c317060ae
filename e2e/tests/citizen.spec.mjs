// The citizen site (居民自助, issue 11) on a phone (375x667): a resident looks up the demo's
// sample resident without signing in, sees errors beside the fields, gets the same answer for an
// unknown person and a wrong name, pays on the site through the simulated cashier, sees 已缴费
// with the day and the kind of channel, and opens the receipt's QR URL (found through the demo's
// WeChat channel, signed here as a channel would), which leads to the verification page.
// Written for scripts/browser-test.
import { test, expect } from '@playwright/test';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { watch, shot, accessible } from './helpers.mjs';

test.use({ viewport: { width: 375, height: 667 }, isMobile: true, hasTouch: true });

const WECHAT = ['wechat', 'demo-secret-wechat-pay-000'];

/** The sample resident `yibao demo` prints: name and ID number. */
function sampleResident() {
  const log = readFileSync(`${process.env.YIBAO_DEMO_DIR}/demo.log`, 'utf8');
  const m = log.match(/sample resident: (\S+) (\d{17}[\dX])/);
  if (!m) throw new Error('demo.log names no sample resident');
  return { name: m[1], id: m[2] };
}

/** A signed channel request (docs/integrator-guide.md): HMAC-SHA256 over five lines. */
async function channelCall(request, method, path, body) {
  const [channel, secret] = WECHAT;
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

/** A phone page must not scroll sideways (a long order number once pushed the cashier wider). */
async function fitsThePhone(page) {
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  expect(width, 'the page scrolls sideways on a 375 px screen').toBeLessThanOrEqual(375);
}

async function lookUp(page, id, name) {
  await page.goto('/');
  await page.getByLabel('身份证号码').fill(id);
  await page.getByLabel('姓名').fill(name);
  await page.getByRole('button', { name: '查询' }).click();
}

test('a resident looks up, pays on the site, sees it paid and verifies the receipt', async ({ page, request }) => {
  const w = watch(page);
  const resident = sampleResident();

  await page.goto('/');
  await expect(page.getByRole('heading', { name: '缴费查询' })).toBeVisible();
  await shot(page, '80-citizen-home');
  await fitsThePhone(page);
  await accessible(page);

  // Nothing typed: each field says what it needs (422 on purpose).
  await page.getByRole('button', { name: '查询' }).click();
  await expect(page.locator('#id_number-error')).toHaveText('请输入身份证号码');
  await expect(page.locator('#name-error')).toHaveText('请输入姓名');
  await expect(page.getByLabel('身份证号码')).toHaveAttribute('aria-invalid', 'true');
  await page.getByLabel('身份证号码').fill(resident.id.slice(0, 17));
  await page.getByLabel('姓名').fill(resident.name);
  await page.getByRole('button', { name: '查询' }).click();
  await expect(page.locator('#id_number-error')).toContainText('17位');
  await shot(page, '81-citizen-field-errors');
  await fitsThePhone(page);
  await accessible(page);

  // A wrong name and an unknown person: the same words.
  await lookUp(page, resident.id, '王某某');
  const wrongName = await page.locator('#result').innerText();
  await lookUp(page, '11010519491231002X', resident.name);
  const unknown = await page.locator('#result').innerText();
  expect(unknown).toBe(wrongName);
  expect(unknown).toContain('未查到与该身份证号码和姓名相符的缴费信息');
  await shot(page, '82-citizen-not-found');
  await fitsThePhone(page);
  await accessible(page);

  // The resident as the site shows them now.
  await lookUp(page, resident.id, resident.name);
  await expect(page.locator('#result')).toContainText('年度 城乡居民基本医疗保险');
  await expect(page.locator('#result')).not.toContainText(resident.id);
  await shot(page, '83-citizen-found');
  await fitsThePhone(page);
  await accessible(page);

  // Whatever is unpaid the resident pays on the site, through the simulated cashier (the demo's
  // simulation may have paid it already through a channel).
  const search = await channelCall(request, 'POST', '/channel/v1/payables/search', { id_number: resident.id, name: resident.name });
  expect(search.status).toBe(200);
  if (search.body.payables.some((p) => p.status === 'unpaid')) {
    await expect(page.locator('#result')).toContainText('未缴费');
    await expect(page.locator('#result')).toContainText('可以通过');
    await page.getByRole('button', { name: /在线缴费/ }).first().click();
    await expect(page.getByRole('heading', { name: '模拟收银台' })).toBeVisible();
    await shot(page, '88-citizen-cashier');
    await fitsThePhone(page);
    await accessible(page);
    await page.getByRole('button', { name: /确认支付/ }).click();
    await expect(page.getByRole('heading', { name: '缴费成功' })).toBeVisible();
    await expect(page.locator('#result a.mono').first()).toBeVisible();
    await shot(page, '89-citizen-pay-result');
    await fitsThePhone(page);
    await accessible(page);
  }
  await lookUp(page, resident.id, resident.name);
  await expect(page.locator('#result .badge.paid').first()).toHaveText('已缴费');
  await expect(page.locator('#result')).toContainText('缴费日期');
  await expect(page.locator('#result')).toContainText('缴费方式');
  await shot(page, '84-citizen-paid');
  await fitsThePhone(page);
  await accessible(page);

  // The receipt's QR code prints /public/receipts/verify?…: a browser lands on the page.
  const receipts = await channelCall(request, 'POST', '/channel/v1/receipts/search', { id_number: resident.id, name: resident.name });
  expect(receipts.status).toBe(200);
  const receipt = receipts.body.find((r) => r.status === 'valid');
  expect(receipt, JSON.stringify(receipts.body)).toBeTruthy();
  await page.goto(`/public/receipts/verify?code=${receipt.receipt_code}&number=${receipt.receipt_number}&check_code=${receipt.check_code}`);
  await expect(page).toHaveURL(/\/receipts\/verify\?code=/);
  await expect(page.locator('#result .badge')).toHaveText('票据有效');
  await expect(page.locator('#result')).toContainText(receipt.receipt_number);
  await shot(page, '85-citizen-receipt-valid');
  await fitsThePhone(page);
  await accessible(page);

  // A wrong check code: not found, and the fields checked beside themselves.
  await page.getByLabel('校验码').fill('wrong0');
  await page.getByRole('button', { name: '查验' }).click();
  await expect(page.locator('#result')).toContainText('未找到该票据');
  await page.getByLabel('票据代码').fill('123');
  await page.getByRole('button', { name: '查验' }).click();
  await expect(page.locator('#code-error')).toContainText('8位数字');
  await shot(page, '86-citizen-receipt-errors');
  await fitsThePhone(page);
  await accessible(page);

  // The office screen shows the same pages in a centred column.
  await page.setViewportSize({ width: 1366, height: 768 });
  await lookUp(page, resident.id, resident.name);
  await shot(page, '87-citizen-paid-desktop');
  w.assertClean();
});

/** A valid 18-character ID number (GB 11643-1999, MOD 11-2) from 17 digits. */
function withCheckDigit(body) {
  const weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
  const sum = [...body].reduce((s, d, i) => s + Number(d) * weights[i], 0);
  return body + '10X98765432'[sum % 11];
}

test('a resident whose name has a character outside the BMP finds themselves and sees it', async ({ page, request }) => {
  const w = watch(page);
  // The demo's administrator registers and assesses a resident named 𪚥明华 (CJK Ext B).
  const login = await request.post('/api/v1/auth/login', { data: { username: 'admin', password: 'yibao-demo-admin' } });
  expect(login.status()).toBe(200);
  const auth = { Authorization: `Bearer ${(await login.json()).token}` };
  const id = withCheckDigit(`32060219900101${String(100 + Math.floor(Math.random() * 800)).padStart(3, '0')}`);
  const name = '𪚥明华';
  const saved = await request.put(`/api/v1/regions/320600/persons/${id}`, { headers: auth, data: { name } });
  expect(saved.status(), await saved.text()).toBe(200);
  const now = new Date();
  const feeYear = now.getMonth() >= 8 ? now.getFullYear() + 1 : now.getFullYear();
  const assessed = await request.post(`/api/v1/regions/320600/fee-years/${feeYear}/assessment`, { headers: auth });
  expect(assessed.status(), await assessed.text()).toBe(200);

  await lookUp(page, id, name);
  await expect(page.locator('#result-heading')).toContainText('𪚥*华');
  await expect(page.locator('#result')).toContainText('未缴费');
  await shot(page, '90-citizen-rare-name');
  await fitsThePhone(page);
  await accessible(page);
  w.assertClean();
});
