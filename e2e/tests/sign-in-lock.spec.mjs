// Sign-in and its lock: five wrong passwords lock the auditor's demo account for 15 minutes, so
// this file runs last (the `lock` project depends on `pages` in playwright.config.mjs).
import { test, expect } from '@playwright/test';
import { DEMO, watch, shot, accessible } from './helpers.mjs';

test('the sign-in page, and five wrong passwords lock an account', async ({ page }) => {
  const w = watch(page);
  await page.goto('/console/');
  await expect(page).toHaveURL(/\/console\/login/);
  await expect(page.locator('html')).toHaveAttribute('lang', 'zh-CN');
  await shot(page, '01-login');
  await accessible(page);
  await page.getByRole('button', { name: '登录' }).click();
  await expect(page.locator('#username-error')).toHaveText('请输入用户名');
  await shot(page, '02-login-empty');
  for (let i = 0; i < 5; i += 1) {
    await page.getByLabel('用户名').fill('auditor');
    await page.getByLabel('密码').fill('not-the-password');
    await page.getByRole('button', { name: '登录' }).click();
    await expect(page.getByRole('alert')).toContainText('用户名或密码不正确');
  }
  await page.getByLabel('用户名').fill('auditor');
  await page.getByLabel('密码').fill(DEMO.auditor[1]);
  await page.getByRole('button', { name: '登录' }).click();
  await expect(page.getByRole('alert')).toContainText('15分钟内登录失败已达5次');
  await shot(page, '03-login-locked');
  // The refusals above are 401 and 429 on purpose; nothing else may go wrong.
  w.assertClean();
});
