import { readFileSync } from 'node:fs';

import type { Command } from '../main.js';

/** The package version, read once from package.json. */
export const version: string = (
  JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

export const command: Command = {
  summary: 'print the version',
  help: 'usage: tide version (or tide --version)\n\nPrints the version of tidescale.',
  async run() {
    process.stdout.write(`tidescale ${version}\n`);
  },
};
