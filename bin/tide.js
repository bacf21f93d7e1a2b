#!/usr/bin/env node
// The `tide` command. TypeScript sources run through tsx, so user handler modules
// (`--handlers ./jobs.ts`) load the same way as ours.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
