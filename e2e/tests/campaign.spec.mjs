// The console's campaign pages in a real browser (issue 16, group A): a station clerk uploads a
// roster and sees its rejected rows with their codes; the centre assesses a region's fee year;
// the unpaid list, masked and paged, and its Excel export. Written for scripts/browser-test.
import { test, expect } from '@playwright/test';
import { DEMO, watch, signIn, shot, accessible } from './helpers.mjs';

const HEADER = '姓名,身份证号码,参保地区,人员类别,户籍类型,居住证起始日期,学校名称,联系电话,服务站,职工医保,减免类型,减免证件名称,减免证件号码,减免证件有效期至,资助金额';

/** A roster as Excel's "CSV UTF-8" writes it: BOM, header, rows. */
function rosterFile(name, rows) {
  return { name, mimeType: 'text/csv', buffer: Buffer.from(`\ufeff${HEADER}\n${rows.join('\n')}\n`, 'utf8') };
}

test('a station clerk uploads a roster and sees every rejected row with its code', async ({ page }) => {
  const w = watch(page);
  await signIn(page, DEMO.station);
  await page.getByRole('link', { name: '名册导入' }).click();
  await expect(page.getByRole('heading', { name: '上传花名册' })).toBeVisible();
  await shot(page, '40-roster-form');
  await accessible(page);

  // No file chosen: the message is beside the field (422 on purpose).
  await page.getByRole('button', { name: '上传并导入' }).click();
  await expect(page.locator('#file-error')).toContainText('请选择要上传的花名册文件');
  await expect(page.getByLabel('花名册文件')).toHaveAttribute('aria-invalid', 'true');
  await shot(page, '41-roster-no-file');
  await accessible(page);

  // A file of another kind.
  await page.getByLabel('花名册文件').setInputFiles({ name: 'roster.txt', mimeType: 'text/plain', buffer: Buffer.from('abc') });
  await page.getByRole('button', { name: '上传并导入' }).click();
  await expect(page.locator('#file-error')).toContainText('.csv 或 .xlsx');

  // The sample roster of the tour: rows of other stations are not the clerk's, a check digit
  // is wrong, one is in employee insurance.
  await page.getByLabel('花名册文件').setInputFiles(rosterFile('roster.csv', [
    '张伟,320602198503120415,320600,居民,本地户籍,,,13805130001,ST-01,,,,,,',
    '刘洋,320602201409010337,320600,在校学生,本地户籍,,南通市实验小学,13805130003,ST-02,,,,,,',
    '陈静,320602198811110820,320600,居民,本地户籍,,,13805130006,ST-01,,,,,,',
    '赵磊,320602197906060133,320600,居民,本地户籍,,,13805130007,ST-01,是,,,,,',
  ]));
  await page.getByRole('button', { name: '上传并导入' }).click();
  await expect(page.getByRole('heading', { name: /导入结果/ })).toBeVisible();
  await expect(page.locator('#rejected-count')).toHaveText('3');
  const rejected = page.getByRole('table', { name: /未通过的行/ });
  await expect(rejected).toContainText('FORBIDDEN');
  await expect(rejected).toContainText('INVALID_ID_NUMBER');
  await expect(rejected).toContainText('EMPLOYEE_INSURED');
  await expect(rejected).toContainText('身份证号码');
  await shot(page, '42-roster-result');
  await accessible(page);

  // 下载未通过明细: the rejected rows with their own cells; the clerk corrects the check digit
  // and uploads the file as it is (行号, 错误列, 错误代码, 错误原因 are ignored).
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('link', { name: '下载未通过明细（CSV）' }).click(),
  ]);
  const chunks = [];
  for await (const chunk of await download.createReadStream()) chunks.push(chunk);
  const csv = Buffer.concat(chunks).toString('utf8');
  expect(csv.startsWith('\ufeff行号,错误列,错误代码,错误原因,姓名,身份证号码')).toBeTruthy();
  expect(csv).toContain('INVALID_ID_NUMBER');
  const corrected = csv.replace('320602198811110820', '320602198811110825');
  await page.getByLabel('花名册文件').setInputFiles({ name: 'roster.rejected.csv', mimeType: 'text/csv', buffer: Buffer.from(corrected, 'utf8') });
  await page.getByRole('button', { name: '上传并导入' }).click();
  await expect(page.getByRole('heading', { name: '导入结果：roster.rejected.csv' })).toBeVisible();
  await expect(page.getByRole('table', { name: /未通过的行/ })).not.toContainText('INVALID_ID_NUMBER');
  await shot(page, '42b-roster-corrected');
  await accessible(page);
  w.assertClean();
});

test('the administrator assesses a fee year; a year without a policy is shown beside its field', async ({ page }) => {
  const w = watch(page);
  await signIn(page, DEMO.admin);
  await page.getByRole('link', { name: '年度核定' }).click();
  await expect(page.getByRole('heading', { name: '核定一个统筹区的缴费年度' })).toBeVisible();
  await shot(page, '43-assessment-form');
  await accessible(page);
  await page.getByLabel('统筹区', { exact: true }).selectOption('320600');
  await page.getByLabel('缴费年度', { exact: true }).fill('2031');
  await page.getByRole('button', { name: '开始核定' }).click();
  await expect(page.locator('#fee_year-error')).toContainText('2031');
  await shot(page, '44-assessment-no-policy');
  await accessible(page);
  await page.getByLabel('缴费年度', { exact: true }).fill('2027');
  await page.getByRole('button', { name: '开始核定' }).click();
  await expect(page.getByRole('heading', { name: /核定完成/ })).toBeVisible();
  await expect(page.locator('#created-count')).toBeVisible();
  await shot(page, '45-assessment-done');
  await accessible(page);
  w.assertClean();
});

test('a station operator has no assessment page', async ({ page }) => {
  await signIn(page, DEMO.station);
  await expect(page.getByRole('link', { name: '年度核定' })).toHaveCount(0);
  const response = await page.goto('/console/assessment');
  expect(response.status()).toBe(403);
  await expect(page.getByRole('heading', { name: '无权查看或办理' })).toBeVisible();
});

test('a station operator reads the unpaid list, masked and paged, and exports it', async ({ page }) => {
  const w = watch(page);
  await signIn(page, DEMO.station);
  await page.getByRole('link', { name: '未缴名单' }).click();
  const table = page.getByRole('table', { name: /未缴名单/ });
  await expect(table).toBeVisible();
  const rows = table.locator('tbody tr');
  await expect(rows.first()).toContainText('ST-01');
  expect(await rows.first().locator('td').first().textContent()).toContain('*');
  expect(await rows.first().locator('td').nth(1).textContent()).toContain('**********');
  await expect(table).not.toContainText('ST-02');
  await shot(page, '46-unpaid-list');
  await accessible(page);
  await page.getByRole('link', { name: '下一页' }).first().click();
  await expect(table).toContainText('第 2 /');
  await shot(page, '47-unpaid-page-2');
  const download = page.waitForEvent('download');
  await page.getByRole('link', { name: /导出 Excel/ }).click();
  expect((await download).suggestedFilename()).toMatch(/\.xlsx$/);
  await rows.first().getByRole('link', { name: '查看档案' }).click();
  await expect(page.getByRole('heading', { name: '登记信息' })).toBeVisible();
  w.assertClean();
});

test('a station records that an unpaid resident was told, and the reason shows on the list', async ({ page }) => {
  const w = watch(page);
  await signIn(page, DEMO.station);
  await page.getByRole('link', { name: '未缴名单' }).click();
  const table = page.getByRole('table', { name: /未缴名单/ });
  const first = table.locator('tbody tr').first();
  // The phone is masked like the other personal data.
  await expect(first).toContainText('****');
  await first.getByRole('link', { name: '记录告知' }).click();
  await expect(page.getByRole('heading', { name: '记录告知情况' })).toBeVisible();
  await shot(page, '49-follow-up-form');
  await accessible(page);

  // Nothing chosen: the messages beside the fields (422 on purpose).
  await page.getByLabel('告知日期').fill('');
  await page.getByRole('button', { name: '保存告知记录' }).click();
  await expect(page.locator('#told_on-error')).toBeVisible();
  await expect(page.locator('#told_how-error')).toContainText('请选择告知方式');
  await expect(page.locator('#reason-error')).toContainText('请从列表中选择');
  await accessible(page);

  await page.getByLabel('告知日期').fill('2026-11-01');
  await page.getByLabel('告知方式').selectOption({ label: '电话' });
  await page.getByLabel(/已签字确认/).check();
  await page.getByLabel('未缴费原因').selectOption('外出务工');
  await page.getByRole('button', { name: '保存告知记录' }).click();
  await expect(page.getByText('告知记录已保存。')).toBeVisible();
  await expect(page.getByRole('table', { name: /告知记录/ })).toContainText('外出务工');
  await shot(page, '50-follow-up-saved');
  await page.getByRole('link', { name: '返回未缴名单' }).click();
  await expect(page.getByRole('table', { name: /未缴名单/ })).toContainText('外出务工');
  w.assertClean();
});

test('a station submits its list of the uninsured with reasons; the centre sees who has', async ({ page }) => {
  const w = watch(page);
  await signIn(page, DEMO.station);
  await page.getByRole('link', { name: '未参保名单上报' }).click();
  await expect(page.locator('#due')).toContainText('12-31');
  await shot(page, '51-uninsured-station');
  await accessible(page);
  await page.getByRole('button', { name: '提交未参保名单及原因' }).click();
  await expect(page.getByText('未参保名单及原因已提交中心。')).toBeVisible();
  await expect(page.locator('#own-status')).toContainText('每个年度只能提交一次');
  await expect(page.getByRole('button', { name: '提交未参保名单及原因' })).toHaveCount(0);
  await shot(page, '52-uninsured-submitted');
  w.assertClean();
});

test('the centre sees which stations have submitted their uninsured lists', async ({ page }) => {
  const w = watch(page);
  await signIn(page, DEMO.admin);
  await page.getByRole('link', { name: '未参保名单上报' }).click();
  await page.getByLabel('统筹区').selectOption('320600');
  await page.getByRole('button', { name: '查询' }).click();
  const table = page.getByRole('table', { name: /各服务站上报情况/ });
  await expect(table).toContainText('ST-01');
  await expect(table).toContainText(/已提交|未提交/);
  await shot(page, '53-uninsured-centre');
  await accessible(page);
  // ST-01 submitted in the test before: the centre opens its list, masked, with its reasons.
  await table.getByRole('link', { name: 'ST-01' }).click();
  await expect(page.getByRole('heading', { name: /服务站 ST-01 \d{4} 年度未参保名单及原因/ })).toBeVisible();
  await expect(page.getByRole('table', { name: /提交时的名单/ })).toContainText('*');
  await expect(page.getByRole('link', { name: '下载完整名单（Excel）' })).toBeVisible();
  await shot(page, '54-uninsured-submitted-list');
  await accessible(page);
  w.assertClean();
});

test('the unpaid list on a phone', async ({ browser }) => {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, locale: 'zh-CN' });
  const page = await context.newPage();
  const w = watch(page);
  await signIn(page, DEMO.admin);
  await page.goto('/console/unpaid?region=320600&station=ST-02');
  await expect(page.getByRole('table', { name: /未缴名单/ })).toContainText('ST-02');
  await shot(page, '48-phone-unpaid');
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow).toBeLessThanOrEqual(0);
  // Each person is a card of labelled lines, read without scrolling the table sideways.
  const sideways = await page.locator('.table-wrap').first().evaluate((el) => el.scrollWidth - el.clientWidth);
  expect(sideways).toBeLessThanOrEqual(0);
  const first = page.getByRole('row').filter({ hasText: 'ST-02' }).first();
  await expect(first.getByRole('cell').first()).toHaveAttribute('data-label', '姓名');
  await expect(first.getByRole('link', { name: '记录告知' })).toBeVisible();
  await accessible(page);
  // The same on the office screen is still a table: one row, side by side.
  await page.setViewportSize({ width: 1366, height: 768 });
  const cells = await first.getByRole('cell').evaluateAll((tds) => new Set(tds.map((td) => Math.round(td.getBoundingClientRect().top))).size);
  expect(cells).toBe(1);
  // A village agent's hand-ins on the phone: cards too.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto('/console/village-agents?region=210700');
  await expect(page.locator('#agents')).toContainText('王代办');
  const agents = await page.locator('#agents').evaluate((el) => el.closest('.table-wrap').scrollWidth - el.closest('.table-wrap').clientWidth);
  expect(agents).toBeLessThanOrEqual(0);
  await shot(page, '48b-phone-village-agents');
  w.assertClean();
  await context.close();
});
