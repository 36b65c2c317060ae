// The staff console's foundation in a real browser: the dashboard's charts
// for each role, finding a person, revealing a masked entry, recording an exemption; on an office
// screen (1366x768) and a phone (390 px).
import { test, expect } from '@playwright/test';
import { DEMO, watch, signIn, shot, accessible } from './helpers.mjs';

test('the administrator sees the charts drawn, with their numbers beside them', async ({ page }) => {
  const w = watch(page);
  await signIn(page, DEMO.admin);
  await expect(page.getByRole('heading', { name: '征缴进度' })).toBeVisible();
  await expect(page.locator('#rate-chart canvas')).toBeVisible();
  await expect(page.locator('#daily-chart canvas')).toBeVisible();
  await expect(page.locator('#rate-chart')).toHaveAttribute('data-chart-drawn', 'true');
  await expect(page.getByRole('table', { name: '各服务站征缴进度' })).toContainText('ST-01');
  await shot(page, '10-dashboard-admin');
  await accessible(page);
  w.assertClean();
});

test('each role sees its own scope on the first page', async ({ page }) => {
  for (const [role, account] of [['station', DEMO.station], ['tax', DEMO.tax]]) {
    const w = watch(page);
    await signIn(page, account);
    await expect(page.getByRole('heading', { name: '征缴进度' })).toBeVisible();
    await shot(page, `11-dashboard-${role}`);
    if (role === 'station') {
      await expect(page.getByRole('table', { name: '各服务站征缴进度' })).not.toContainText('ST-02');
    }
    w.assertClean();
    await page.getByRole('button', { name: '退出' }).click();
    await expect(page).toHaveURL(/\/console\/login/);
  }
});

test('a station operator finds a person, reveals the entry and records an exemption', async ({ page }) => {
  const w = watch(page);
  await signIn(page, DEMO.station);
  await page.getByRole('link', { name: '参保人员' }).click();
  await shot(page, '20-persons-empty');
  await accessible(page);
  await page.getByLabel('身份证号码、参保编号或姓名').fill('张');
  await page.getByRole('button', { name: '查找' }).click();
  const rows = page.getByRole('table').locator('tbody tr');
  await expect(rows.first()).toContainText('ST-01');
  const masked = await rows.first().locator('td').first().textContent();
  expect(masked).toContain('*');
  await shot(page, '21-persons-found');
  await rows.first().getByRole('button', { name: '显示完整信息' }).click();
  await expect(rows.first().locator('td.revealed')).toBeVisible();
  await expect(rows.first().locator('td.revealed')).not.toContainText('*');
  await shot(page, '22-persons-revealed');
  await rows.first().getByRole('link', { name: '查看档案' }).click();
  await expect(page.getByRole('heading', { name: '登记信息' })).toBeVisible();
  // The record shows the insured number (参保编号), and the search finds the person by it.
  const insured = (await page.locator('#insured-number').textContent()).trim();
  expect(insured).toMatch(/^320600[0-9]{9}[0-9X]$/);
  await shot(page, '23-person-record');
  await accessible(page);
  const record = page.url();
  await page.getByRole('link', { name: '参保人员' }).click();
  await page.getByLabel('身份证号码、参保编号或姓名').fill(insured);
  await page.getByRole('button', { name: '查找' }).click();
  await expect(page.getByRole('table').locator('tbody tr')).toHaveCount(1);
  await shot(page, '23b-persons-by-insured-number');
  await page.goto(record);
  // A bad date is shown beside its field; then the exemption is saved.
  await page.getByLabel('减免类别').selectOption('低保');
  await page.getByLabel('证件名称').fill('最低生活保障证');
  await page.getByLabel('证件号码').fill('NT-DB-0001');
  await page.getByLabel('有效期至').fill('明年年底');
  await page.getByRole('button', { name: '保存减免信息' }).click();
  await expect(page.locator('#certificate_valid_until-error')).toBeVisible();
  await shot(page, '24-person-exemption-error');
  await page.getByLabel('有效期至').fill('2027-12-31');
  await page.getByRole('button', { name: '保存减免信息' }).click();
  await expect(page.locator('.alert.ok')).toContainText('减免信息已保存');
  await expect(page.getByLabel('减免类别')).toHaveValue('低保');
  await shot(page, '25-person-exemption-saved');
  w.assertClean();
});

test('a station operator sees the household (户) on a record, its members, and changes it', async ({ page }) => {
  const w = watch(page);
  await signIn(page, DEMO.station);
  await page.getByRole('link', { name: '参保人员' }).click();
  await page.getByLabel('身份证号码、参保编号或姓名').fill('王');
  await page.getByRole('button', { name: '查找' }).click();
  await page.getByRole('table').locator('tbody tr').first().getByRole('link', { name: '查看档案' }).click();
  await expect(page.getByRole('heading', { name: '家庭户', exact: true })).toBeVisible();
  const number = (await page.locator('#household-now a').textContent()).trim();
  expect(number).toMatch(/^320\d{9}$/);
  await page.locator('#household-card').scrollIntoViewIfNeeded();
  await shot(page, '26-person-household');
  const record = page.url();
  // The household's page: its members now, the head first, masked.
  await page.locator('#household-now a').click();
  await expect(page.getByRole('heading', { name: /现有成员（4人）/ })).toBeVisible();
  const members = page.locator('#members tbody tr');
  await expect(members).toHaveCount(4);
  await expect(members.first()).toContainText('户主');
  expect(await members.first().locator('td').first().textContent()).toContain('*');
  await shot(page, '27-household-members');
  await accessible(page);
  // A relation the form cannot take is shown beside its field; then it is saved.
  await page.goto(record);
  await page.getByLabel('与户主关系').fill('配偶/子');
  await page.getByRole('button', { name: '保存家庭户' }).click();
  await expect(page.locator('#relation-error')).toContainText('只能填写汉字');
  await page.locator('#household-card').scrollIntoViewIfNeeded();
  await shot(page, '28-person-household-error');
  await page.getByLabel('与户主关系').fill('兄弟姐妹');
  await page.getByRole('button', { name: '保存家庭户' }).click();
  await expect(page.locator('.alert.ok')).toContainText('家庭户信息已保存');
  await expect(page.locator('#household-now')).toContainText('与户主关系 兄弟姐妹');
  await page.locator('.household-history summary').click();
  await page.locator('#household-card').scrollIntoViewIfNeeded();
  await shot(page, '29-person-household-saved');
  await accessible(page);
  w.assertClean();
});

test('on a phone the pages still work', async ({ browser }) => {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, locale: 'zh-CN' });
  const page = await context.newPage();
  const w = watch(page);
  await signIn(page, DEMO.station);
  await shot(page, '30-phone-dashboard');
  await page.getByRole('link', { name: '参保人员' }).click();
  await page.getByLabel('身份证号码、参保编号或姓名').fill('李');
  await page.getByRole('button', { name: '查找' }).click();
  await shot(page, '31-phone-persons');
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow).toBeLessThanOrEqual(0);
  // Each person found is a card: nothing to scroll sideways, both actions in reach.
  const found = page.getByRole('table', { name: /查找结果/ });
  expect(await found.evaluate((el) => el.closest('.table-wrap').scrollWidth - el.closest('.table-wrap').clientWidth)).toBeLessThanOrEqual(0);
  await expect(found.getByRole('button', { name: '显示完整信息' }).first()).toBeInViewport();
  await found.getByRole('button', { name: '显示完整信息' }).first().click();
  await expect(found.locator('td.revealed').first()).toHaveAttribute('data-label', '姓名');
  await shot(page, '31b-phone-persons-revealed');
  await accessible(page);
  // A household's page fits the phone too.
  await page.getByRole('link', { name: '家庭户' }).click();
  await page.getByLabel('户号').fill('320602000001');
  await page.getByRole('button', { name: '查找家庭户' }).click();
  await expect(page.locator('#members tbody tr').first()).toBeVisible();
  await shot(page, '32-phone-household');
  const householdOverflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(householdOverflow).toBeLessThanOrEqual(0);
  expect(await page.locator('#members').evaluate((el) => el.closest('.table-wrap').scrollWidth - el.closest('.table-wrap').clientWidth)).toBeLessThanOrEqual(0);
  w.assertClean();
  await context.close();
});

test('a station operator prints the listing of the paid on numbered A4 sheets', async ({ page }) => {
  const w = watch(page);
  await signIn(page, DEMO.station);
  await page.getByRole('navigation', { name: '主菜单' }).getByRole('link', { name: '缴费公示' }).click();
  await page.getByLabel('缴费年度').fill('20x7');
  await page.getByRole('button', { name: '生成公示' }).click();
  await expect(page.locator('#year-error')).toContainText('四位数');
  await shot(page, '60-listing-error');
  await page.getByLabel('缴费年度').fill('2027');
  await page.getByRole('button', { name: '生成公示' }).click();
  const sheets = page.locator('.listing .sheet');
  await expect(sheets.first()).toContainText('缴费公示');
  await expect(sheets.first().locator('.sheet-foot')).toContainText('第 1 页 / 共');
  // Masked: no full 18-digit ID number anywhere on the page.
  expect(await page.locator('main').textContent()).not.toMatch(/\d{17}[\dX]/);
  await shot(page, '61-listing');
  await accessible(page);
  // As printed: the console around the sheets is gone.
  await page.emulateMedia({ media: 'print' });
  await expect(page.getByRole('navigation', { name: '主菜单' })).toBeHidden();
  await expect(page.getByRole('button', { name: '打印' })).toBeHidden();
  await shot(page, '62-listing-print');
  await page.emulateMedia({ media: 'screen' });
  w.assertClean();
});
