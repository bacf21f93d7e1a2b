#!/usr/bin/env node
// The `tide` command: the compiled code in dist/ (built by `npm run build`, which `npm install`
// of the repository runs). A user's TypeScript handlers and routes load through tsx, registered
// only when such a module is imported (src/runtime/user-module.ts).
import { existsSync } from 'node:fs';

const main = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(main)) {
  console.error('TIDE_NOT_BUILT: this copy of Tidescale has no dist/ (a clone that was not installed). Run `npm install` or `npm run build` in it.');
  process.exit(1);
}
// `tide ps | head`: a reader that goes away ends the output, not the command with a stack trace
process.stdout.on('error', (err) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});
const cli = await import(main.href);
process.exitCode = await cli.main(process.argv.slice(2));
