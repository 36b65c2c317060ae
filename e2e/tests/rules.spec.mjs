// The 2025 rules (issue 19): the demo's 海口 resident whose cover lapsed in 2025 and 2026. The
// administrator sees the cover history, the wait if paid today, the years worth buying back and the
// critical-illness reward on the person's record; the resident sees on the citizen site, on a
// phone, when cover would start before paying (unless the demo's simulation paid already).
// Written for scripts/browser-test.
import { test, expect } from '@playwright/test';
import { watch, shot, accessible, signIn, DEMO, lapsedResident } from './helpers.mjs';

test('a lapsed resident: history, wait and back-payment in the console', async ({ page }) => {
  const w = watch(page);
  const resident = lapsedResident();
  await signIn(page, DEMO.admin);
  await page.getByRole('link', { name: '参保人员' }).click();
  await page.getByLabel('统筹区', { exact: true }).selectOption('460100');
  await page.getByLabel('身份证号码或姓名').fill(resident.id);
  await page.getByRole('button', { name: '查找' }).click();
  await page.getByRole('table').locator('tbody tr').first().getByRole('link', { name: '查看档案' }).click();
  const cover = page.getByRole('region', { name: /参保历史与待遇/ });
  await expect(cover).toBeVisible();
  await expect(cover.getByRole('table')).toContainText('2024');
  await expect(cover.getByRole('table')).toContainText('未参保');
  await expect(cover).toContainText('补缴修复');
  await expect(cover).toContainText('断保2年（2025、2026）');
  await expect(cover).toContainText('大病保险最高支付限额提高');
  await cover.scrollIntoViewIfNeeded();
  await shot(page, '95-rules-person-cover');
  await accessible(page);
  w.assertClean();
});

test('a lapsed resident sees on a phone when cover would start before paying', async ({ browser }) => {
  const context = await browser.newContext({ viewport: { width: 375, height: 667 }, isMobile: true, hasTouch: true, locale: 'zh-CN' });
  await context.setExtraHTTPHeaders({ 'X-Forwarded-For': '198.51.100.90' });
  const page = await context.newPage();
  const w = watch(page);
  const resident = lapsedResident();
  await page.goto('/');
  await page.getByLabel('身份证号码').fill(resident.id);
  await page.getByLabel('姓名').fill(resident.name);
  await page.getByRole('button', { name: '查询' }).click();
  const result = page.locator('#result');
  await expect(result).toContainText('年度 城乡居民基本医疗保险');
  if ((await result.getByText('已缴费').count()) === 0) {
    await expect(result).toContainText('待遇：今天缴费');
    await expect(result).toContainText('等待期');
    await expect(result).toContainText('补缴的年度本身不享受医保待遇');
  }
  await shot(page, '96-rules-citizen-cover');
  await accessible(page);
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  expect(width).toBeLessThanOrEqual(375);
  w.assertClean();
  await context.close();
});
