import { version } from '../../version.js';
import type { Command } from '../main.js';

export const command: Command = {
  summary: 'print the version',
  help: 'usage: tide version (or tide --version)\n\nPrints the version of tidescale.',
  async run() {
    process.stdout.write(`tidescale ${version}\n`);
  },
};
