// The citizen site (居民自助, issue 11) on a phone (375x667): a resident looks up the demo's
// sample resident without signing in, sees errors beside the fields, gets the same answer for an
// unknown person and a wrong name, pays on the site through the simulated cashier, sees 已缴费
// with the day and the kind of channel, and opens the receipt's QR URL (found through the demo's
// WeChat channel, signed here as a channel would), which leads to the verification page.
// Written for scripts/browser-test.
import { test, expect } from '@playwright/test';
import { watch, shot, accessible, signIn, DEMO, sampleResident, subsidisedResident, channelCall, signInWithCode } from './helpers.mjs';

test.use({ viewport: { width: 375, height: 667 }, isMobile: true, hasTouch: true });

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

/**
 * Each test is a resident of its own (scripts/browser-test runs the demo behind "a proxy" that
 * names the client in X-Forwarded-For): the site's limit of 20 look-ups a minute per address
 * holds for each test, not for the suite.
 */
let residentAddress = 0;
test.beforeEach(async ({ context }) => {
  residentAddress += 1;
  await context.setExtraHTTPHeaders({ 'X-Forwarded-For': `198.51.100.${residentAddress}` });
});

/**
 * Seventeen digits, as a user who dropped a digit types them: the ID's first seventeen, the last
 * changed if they would complete to a final X (seventeen digits are accepted when the check
 * character is X, from a keypad that cannot type it). The demo's residents are born on dates
 * counted back from today, so on some days the sample resident's ID ends in X.
 */
function seventeenDigitsNotEndingInX(id) {
  const weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
  const check = (digits) =>
    '10X98765432'[[...digits].reduce((sum, c, i) => sum + Number(c) * weights[i], 0) % 11];
  let digits = id.slice(0, 17);
  for (let d = 0; check(digits) === 'X'; d += 1) digits = digits.slice(0, 16) + String(d);
  return digits;
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
  await page.getByLabel('身份证号码').fill(seventeenDigitsNotEndingInX(resident.id));
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
  // The public look-up does not show the insured number (参保编号); 我的 does.
  await expect(page.locator('.insured-number')).toHaveCount(0);
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

test('a subsidised resident of 三亚 is sent to the service station, as the region\'s channel rules say', async ({ page }) => {
  const w = watch(page);
  const resident = subsidisedResident();
  await lookUp(page, resident.id, resident.name);
  const unpaid = page.locator('article.payable').filter({ has: page.locator('.badge.unpaid') });
  // 三亚 lets only the bank counter collect subsidised contributions, and it has none: no channel
  // is offered, not the site's own 在线缴费 either, and the card says where to go.
  await expect(unpaid.first()).toBeVisible();
  await expect(unpaid.first().locator('.not-here')).toContainText('享受资助人员的缴费不能通过');
  await expect(unpaid.first().locator('.not-here')).toContainText('请到乡镇/社区服务站缴费');
  await expect(unpaid.first().getByRole('button', { name: /在线缴费/ })).toHaveCount(0);
  await shot(page, '84-citizen-not-here');
  await fitsThePhone(page);
  await accessible(page);
  w.assertClean();
});

/** Registers residents with a phone through the staff API and assesses them: [{ id, name }]. */
async function newResidents(request, names) {
  const login = await request.post('/api/v1/auth/login', { data: { username: 'admin', password: 'yibao-demo-admin' } });
  expect(login.status()).toBe(200);
  const auth = { Authorization: `Bearer ${(await login.json()).token}` };
  const people = [];
  for (const name of names) {
    const id = withCheckDigit(`32060219850101${String(100 + Math.floor(Math.random() * 800)).padStart(3, '0')}`);
    const phone = `139${String(Math.floor(Math.random() * 1e8)).padStart(8, '0')}`;
    const saved = await request.put(`/api/v1/regions/320600/persons/${id}`, { headers: auth, data: { name, phone } });
    expect(saved.status(), await saved.text()).toBe(200);
    people.push({ id, name });
  }
  const now = new Date();
  const feeYear = now.getMonth() >= 8 ? now.getFullYear() + 1 : now.getFullYear();
  const assessed = await request.post(`/api/v1/regions/320600/fee-years/${feeYear}/assessment`, { headers: auth });
  expect(assessed.status(), await assessed.text()).toBe(200);
  return people;
}

test('a resident signs in with the code from the demo mailbox, adds two family members, pays for both and downloads the receipt', async ({ page, context }) => {
  const w = watch(page);
  const [me, first, second] = await newResidents(page.request, ['周建国', '周小明', '李秀英']);

  await page.goto('/');
  await page.getByRole('link', { name: '我的', exact: true }).click();
  await expect(page.getByRole('heading', { name: '登录' })).toBeVisible();
  // A wrong name reads exactly like an unknown person; no code goes out.
  await page.getByLabel('身份证号码').fill(me.id);
  await page.getByLabel('姓名').fill('周某某');
  await page.getByRole('button', { name: '获取验证码' }).click();
  const wrongName = await page.locator('#result').innerText();
  await page.getByLabel('身份证号码').fill('11010519491231002X');
  await page.getByLabel('姓名').fill(me.name);
  await page.getByRole('button', { name: '获取验证码' }).click();
  expect(await page.locator('#result').innerText()).toBe(wrongName);

  await page.getByLabel('身份证号码').fill(me.id);
  await page.getByLabel('姓名').fill(me.name);
  await page.getByRole('button', { name: '获取验证码' }).click();
  await expect(page.getByRole('heading', { name: '输入验证码' })).toBeVisible();
  await shot(page, '91-citizen-signin-code');
  await fitsThePhone(page);
  await accessible(page);

  // The demo sends no SMS: the message is in the demo mailbox.
  const mailbox = await context.newPage();
  const wm = watch(mailbox);
  await mailbox.goto('/demo/mailbox');
  await mailbox.getByRole('button', { name: '立即投递并刷新' }).click();
  const sms = await mailbox.locator('.sms').first().innerText();
  const code = sms.match(/验证码是(\d{6})/)[1];
  await shot(mailbox, '92-citizen-demo-mailbox');
  await fitsThePhone(mailbox);
  await accessible(mailbox);
  wm.assertClean();
  await mailbox.close();

  // A wrong code first: said beside the field, with the tries left.
  await page.getByLabel('短信验证码').fill(code === '000000' ? '111111' : '000000');
  await page.getByRole('button', { name: '登录' }).click();
  await expect(page.locator('#code-error')).toContainText('还可以再试4次');
  await page.getByLabel('短信验证码').fill(code);
  await page.getByRole('button', { name: '登录' }).click();
  await expect(page.getByRole('heading', { name: /您好/ })).toBeVisible();
  await expect(page.locator('main')).not.toContainText(me.id);
  // Each card names the resident's insured number (参保编号) in its region.
  await expect(page.locator('.insured-number').first()).toHaveText(/^[0-9]{15}[0-9X]$/);
  await shot(page, '93-citizen-account');
  await fitsThePhone(page);
  await accessible(page);

  // 我的家庭: a name that does not match the record is refused beside the field.
  await page.getByLabel('家庭成员身份证号码').fill(first.id);
  await page.getByLabel('姓名').fill('周某某');
  await page.getByRole('button', { name: '添加家庭成员' }).click();
  await expect(page.locator('#member_id-error')).toContainText('未查到');
  for (const member of [first, second]) {
    await page.getByLabel('家庭成员身份证号码').fill(member.id);
    await page.getByLabel('姓名').fill(member.name);
    await page.getByRole('button', { name: '添加家庭成员' }).click();
    await expect(page.getByRole('status')).toContainText('已添加家庭成员');
  }
  await expect(page.locator('input[name=item]')).toHaveCount(3);
  await shot(page, '94-citizen-family');
  await fitsThePhone(page);
  await accessible(page);

  // Pay for both members at once (not for me): one order, one payment at the cashier.
  await page.locator('input[name=item]').first().uncheck();
  await page.getByRole('button', { name: '缴纳选中的费用' }).click();
  await expect(page.getByRole('heading', { name: '模拟收银台' })).toBeVisible();
  await page.getByRole('button', { name: /确认支付/ }).click();
  await expect(page.getByRole('heading', { name: '缴费成功' })).toBeVisible();
  await expect(page.locator('#result a.mono')).toHaveCount(2);
  const receiptNumbers = await page.locator('#result a.mono').allInnerTexts();
  await shot(page, '95-citizen-family-paid');
  await fitsThePhone(page);
  await accessible(page);
  // The provider sends the same notification again: nothing new, the same two receipts.
  await page.getByRole('button', { name: '重发支付通知' }).click();
  await expect(page.getByRole('status')).toContainText('没有重复入账');
  expect(await page.locator('#result a.mono').allInnerTexts()).toEqual(receiptNumbers);

  // 我的 lists both receipts; the payer's copy downloads as a PDF.
  await page.getByRole('link', { name: '我的票据' }).click();
  await expect(page.getByRole('link', { name: '下载票据（PDF）' })).toHaveCount(2);
  await expect(page.locator('input[name=item]')).toHaveCount(1);
  await shot(page, '96-citizen-account-receipts');
  await fitsThePhone(page);
  await accessible(page);
  // The link opens the PDF (inline); fetched here with the page's session, as the browser does.
  const pdfHref = await page.getByRole('link', { name: '下载票据（PDF）' }).first().getAttribute('href');
  const pdf = await page.request.get(pdfHref);
  expect(pdf.status()).toBe(200);
  expect(pdf.headers()['content-type']).toBe('application/pdf');
  expect((await pdf.body()).subarray(0, 5).toString()).toBe('%PDF-');

  // The receipt's QR URL (the protocol's /public/receipts/verify) leads to 票据有效.
  const verifyHref = await page.locator('ul.receipts').getByRole('link', { name: '查验', exact: true }).first().getAttribute('href');
  await page.goto(verifyHref.replace('/receipts/verify', '/public/receipts/verify'));
  await expect(page).toHaveURL(/\/receipts\/verify\?code=/);
  await expect(page.locator('#result .badge')).toHaveText('票据有效');
  await shot(page, '97-citizen-family-receipt-verified');

  // Reminders off, then sign out: 我的 asks to sign in again.
  await page.goto('/account');
  await page.getByRole('button', { name: '关闭缴费提醒' }).click();
  await expect(page.getByRole('status')).toContainText('已关闭缴费提醒');
  await expect(page.getByRole('button', { name: '开启缴费提醒' })).toBeVisible();
  await page.getByRole('button', { name: '退出登录' }).click();
  await page.goto('/account');
  await expect(page.getByRole('heading', { name: '登录' })).toBeVisible();
  w.assertClean();
});

test('a registration submitted online is approved in the console and the resident sees it', async ({ page, context, browser }) => {
  const w = watch(page);
  const [me] = await newResidents(page.request, ['郑海燕']);
  await signInWithCode(page, context, me);
  await page.getByRole('link', { name: '申请参保登记' }).click();
  await expect(page.getByRole('heading', { name: '网上参保登记' })).toBeVisible();

  // Nothing chosen: each field says what it needs, beside itself.
  await page.getByLabel('参保人身份证号码').fill('');
  await page.getByRole('button', { name: '提交申请' }).click();
  await expect(page.locator('#place-error')).toContainText('请选择参保地');
  await expect(page.locator('#id_number-error')).toBeVisible();
  await expect(page.locator('#declared-error')).toBeVisible();
  await shot(page, '98-citizen-enrol-errors');
  await fitsThePhone(page);
  await accessible(page);

  const applicant = { id: withCheckDigit(`32060219920715${String(100 + Math.floor(Math.random() * 800)).padStart(3, '0')}`), name: '郑小军' };
  await page.getByLabel('参保地和服务站').selectOption('320600|ST-01');
  await page.getByLabel('首次参保').check();
  await page.getByLabel('参保人身份证号码').fill(applicant.id);
  await page.getByLabel('参保人姓名').fill(applicant.name);
  await page.getByLabel('本地户籍').check();
  await page.getByLabel(/参保人未参加职工基本医疗保险/).check();
  await page.getByRole('button', { name: '提交申请' }).click();
  await expect(page.getByRole('status')).toContainText('参保登记申请已提交');
  await expect(page.locator('#enrol-heading + ul')).toContainText('待审核');
  await shot(page, '99-citizen-enrol-submitted');
  await fitsThePhone(page);
  await accessible(page);

  // The station's queue in the console, on an office screen.
  const office = await browser.newContext({ baseURL: process.env.BASE_URL, viewport: { width: 1366, height: 768 } });
  const staff = await office.newPage();
  const ws = watch(staff);
  await signIn(staff, DEMO.station);
  await staff.getByRole('link', { name: '网上参保登记' }).click();
  await expect(staff.locator('table')).toContainText('郑*军');
  await shot(staff, '99a-console-applications');
  await accessible(staff);
  await staff.locator('tr', { hasText: '郑*军' }).getByRole('link').first().click();
  await expect(staff.locator('main')).toContainText(applicant.id);
  await shot(staff, '99b-console-application');
  await accessible(staff);
  await staff.getByRole('button', { name: '通过并登记参保' }).click();
  await expect(staff.locator('.alert.ok')).toContainText('已通过');
  ws.assertClean();
  await office.close();

  await page.goto('/account');
  await expect(page.locator('#enrol-heading + ul')).toContainText('已通过');
  await shot(page, '99c-citizen-enrol-approved');
  w.assertClean();
});
