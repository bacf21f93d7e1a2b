#!/usr/bin/env node
// The `tide` command. TypeScript sources run through tsx, so user handler modules
// (`--handlers ./jobs.ts`) load the same way as ours.
import { register } from 'tsx/esm/api';

register();
// `tide ps | head`: a reader that goes away ends the output, not the command with a stack trace
process.stdout.on('error', (err) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
