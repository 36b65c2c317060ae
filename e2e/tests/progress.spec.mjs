// Long work in a real browser: a roster of 60 000 rows and the assessment that follows run on the
// server in the background; the page shows how far they have come (htmx asks every second) and
// then their result. Runs after the other page tests: it adds 60 000 people to 滁州市, a region
// no other test counts. Written for scripts/browser-test.
import { test, expect } from '@playwright/test';
import { DEMO, watch, signIn, shot, accessible } from './helpers.mjs';

const HEADER = '姓名,身份证号码,参保地区,人员类别,户籍类型,居住证起始日期,学校名称,联系电话,服务站,职工医保,减免类型,减免证件名称,减免证件号码,减免证件有效期至,资助金额';
const WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK = '10X98765432';
const ROWS = 60000;

/** A valid ID number of 琅琊区 (341102) born `days` days after 1970-01-01, with sequence `seq`. */
function idNumber(days, seq) {
  const birth = new Date(Date.UTC(1970, 0, 1) + days * 86400000).toISOString().slice(0, 10).replaceAll('-', '');
  const body = `341102${birth}${String(seq).padStart(3, '0')}`;
  const sum = [...body].reduce((s, d, i) => s + Number(d) * WEIGHTS[i], 0);
  return body + CHECK[sum % 11];
}

function bigRoster() {
  const given = ['伟', '芳', '娜', '敏', '静', '强', '磊', '洋', '艳', '勇'];
  const lines = [HEADER];
  for (let i = 0; i < ROWS; i += 1) {
    // Sequence numbers 900-999: the demo's own residents use 000-799.
    const id = idNumber(1000 + Math.floor(i / 100), 900 + (i % 100));
    // (600 birth days from 1972-09-27: all adults.)
    lines.push(`王${given[i % 10]}${given[Math.floor(i / 10) % 10]},${id},341100,居民,本地户籍,,,,,,,,,,`);
  }
  return { name: 'chuzhou.csv', mimeType: 'text/csv', buffer: Buffer.from(`\ufeff${lines.join('\n')}\n`, 'utf8') };
}

test('a large roster and its assessment show their progress, then their result', async ({ page }) => {
  test.setTimeout(240_000);
  const w = watch(page);
  await signIn(page, DEMO.admin);
  await page.getByRole('link', { name: '名册导入' }).click();
  await page.getByLabel('花名册文件').setInputFiles(bigRoster());
  await page.getByRole('button', { name: '上传并导入' }).click();
  // The import outlasts the page's wait: its own page shows how far it has come.
  await expect(page).toHaveURL(/\/console\/roster\/jobs\/[0-9a-f]{32}$/);
  await expect(page.getByRole('heading', { name: '导入进度' })).toBeVisible();
  await expect(page.locator('#job-progress')).toContainText(`/ ${ROWS} 行`);
  await shot(page, '46-roster-progress');
  await accessible(page);
  // htmx reloads the page when the import is done.
  await expect(page.getByRole('heading', { name: '导入结果：chuzhou.csv' })).toBeVisible({ timeout: 180_000 });
  await expect(page.locator('#accepted-count')).toHaveText(String(ROWS));
  await expect(page.locator('#rejected-count')).toHaveText('0');
  await shot(page, '47-roster-progress-done');

  await page.getByRole('link', { name: '年度核定' }).click();
  await page.getByLabel('统筹区', { exact: true }).selectOption('341100');
  await page.getByRole('button', { name: '开始核定' }).click();
  // On a fast machine the assessment may be done within the page's 2 s wait: then its result
  // shows at once, and there is no progress page to look at.
  await expect(page.getByRole('heading', { name: /核定进度|核定完成/ })).toBeVisible({ timeout: 30_000 });
  if (/\/console\/assessment\/jobs\//.test(page.url())) {
    await expect(page.getByRole('heading', { name: '核定进度' })).toBeVisible();
    await shot(page, '48-assessment-progress');
    await accessible(page);
  }
  await expect(page.getByRole('heading', { name: /核定完成/ })).toBeVisible({ timeout: 180_000 });
  await expect(page.locator('#created-count')).toHaveText(String(ROWS));
  await shot(page, '49-assessment-progress-done');
  w.assertClean();
});
