import { parse } from '../args.js';
import type { Command } from '../main.js';

const HELP = `usage: tide schema

Print the JSON Schema of tide.yaml, for editors (YAML language servers read it).`;

export const command: Command = {
  summary: 'print the JSON Schema of tide.yaml for editors',
  help: HELP,
  async run(argv) {
    const { values } = parse(argv, { json: { type: 'boolean', default: false } }, false);
    const { configJsonSchema } = await import('../../config/json-schema.js');
    process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
    return 0;
  },
};
