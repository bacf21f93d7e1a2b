import { writeFile } from 'node:fs/promises';
import path from 'node:path';

import { TideError } from '../../errors.js';
import { parse } from '../args.js';
import type { Command } from '../main.js';

const HELP = `usage: tide init [--file tide.yaml] [--project NAME] [--force]

Write a commented starter tide.yaml. Refuses to replace an existing file unless --force.`;

export const command: Command = {
  summary: 'write a commented starter tide.yaml',
  help: HELP,
  async run(argv) {
    const { values } = parse(argv, {
      file: { type: 'string', default: 'tide.yaml' },
      project: { type: 'string' },
      force: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    }, false);
    const file = values.file;
    const project = values.project ?? projectName(path.basename(path.resolve(path.dirname(file))));
    const { starterConfig } = await import('../../config/starter.js');
    try {
      // 'wx' makes the existence check and the write one step: no race with another writer.
      await writeFile(file, starterConfig(project), { flag: values.force ? 'w' : 'wx' });
    } catch (cause) {
      if ((cause as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new TideError('TIDE_CONFIG_EXISTS', `${file} already exists; pass --force to replace it.`, { where: { file }, cause });
      }
      throw cause;
    }
    process.stdout.write(values.json ? `${JSON.stringify({ file, project })}\n` : `wrote ${file} (project ${project})\n`);
    return 0;
  },
};

/** A directory name made into a valid project name. */
function projectName(dir: string): string {
  const name = dir.replace(/[^A-Za-z0-9_.-]+/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 63);
  return name || 'tidescale-project';
}
