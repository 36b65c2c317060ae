// The browser suite's configuration: Debian's Chromium (no download), one worker on 2 cores,
// the demo server started by scripts/browser-test at BASE_URL.
import { defineConfig } from '@playwright/test';

export default defineConfig({
  testDir: './tests',
  workers: 1,
  fullyParallel: false,
  reporter: 'list',
  timeout: 60_000,
  expect: { timeout: 10_000 },
  outputDir: './test-results',
  // The lock test locks a demo account for 15 minutes: it runs after every other page test.
  projects: [
    { name: 'pages', testIgnore: /sign-in-lock\.spec\.mjs/ },
    { name: 'lock', testMatch: /sign-in-lock\.spec\.mjs/, dependencies: ['pages'] },
  ],
  use: {
    baseURL: process.env.BASE_URL,
    locale: 'zh-CN',
    viewport: { width: 1366, height: 768 },
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH || '/usr/lib/chromium/chromium',
      args: ['--disable-background-networking', '--disable-component-update', '--disable-sync',
             '--no-first-run', '--disable-quic', '--disable-gpu'],
    },
  },
});
