import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';

import { TideError } from '../../errors.js';
import { parse } from '../args.js';
import type { Command } from '../main.js';

const HELP = `usage: tide init [--file tide.yaml] [--project NAME] [--docker] [--force]

Write a commented starter tide.yaml. Refuses to replace an existing file unless --force.
With --docker, write instead a Dockerfile and a .dockerignore beside tide.yaml: the image of
the project's services (your handlers, routes and tide.yaml, with tide as the entrypoint),
named <project>:latest, the image \`tide export kubernetes\` and \`compose\` reference by default.`;

export const command: Command = {
  summary: 'write a commented starter tide.yaml',
  help: HELP,
  async run(argv) {
    const { values } = parse(argv, {
      file: { type: 'string', default: 'tide.yaml' },
      project: { type: 'string' },
      force: { type: 'boolean', default: false },
      docker: { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    }, false);
    const file = values.file;
    if (values.docker) return initDocker(file, values.project, values.force, values.json);
    const project = values.project ?? projectName(path.basename(path.resolve(path.dirname(file))));
    const { starterConfig } = await import('../../config/starter.js');
    await writeNew(file, starterConfig(project), values.force);
    process.stdout.write(values.json ? `${JSON.stringify({ file, project })}\n` : `wrote ${file} (project ${project})\n`);
    return 0;
  },
};

/** Writes `text` to `file`; TIDE_CONFIG_EXISTS when it exists, unless `force`. */
async function writeNew(file: string, text: string, force: boolean): Promise<void> {
  try {
    // 'wx' makes the existence check and the write one step: no race with another writer.
    await writeFile(file, text, { flag: force ? 'w' : 'wx' });
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new TideError('TIDE_CONFIG_EXISTS', `${file} already exists; pass --force to replace it.`, { where: { file }, cause });
    }
    throw cause;
  }
}

/** `tide init --docker`: the Dockerfile and .dockerignore beside `configFile`, named for its project. */
async function initDocker(configFile: string, projectFlag: string | undefined, force: boolean, json: boolean): Promise<number> {
  const dir = path.dirname(configFile);
  let project = projectFlag;
  if (!project && existsSync(configFile)) project = (await (await import('../../config/load.js')).loadConfig(configFile)).project;
  project ??= projectName(path.basename(path.resolve(dir)));
  const { defaultImage, starterDockerfile, starterDockerignore } = await import('../../config/dockerfile.js');
  const dockerfile = path.join(dir, 'Dockerfile');
  const ignore = path.join(dir, '.dockerignore');
  await writeNew(dockerfile, starterDockerfile(project), force);
  await writeNew(ignore, starterDockerignore(), force);
  const image = defaultImage(project);
  process.stdout.write(
    json
      ? `${JSON.stringify({ files: [dockerfile, ignore], image })}\n`
      : `wrote ${dockerfile} and ${ignore}; build the image with: docker build -t ${image} ${dir}\n`,
  );
  return 0;
}

/** A directory name made into a valid project name. */
function projectName(dir: string): string {
  const name = dir.replace(/[^A-Za-z0-9_.-]+/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 63);
  return name || 'tidescale-project';
}
