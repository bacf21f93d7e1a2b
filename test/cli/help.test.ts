import assert from 'node:assert/strict';
import { test } from 'node:test';

import { main } from '../../src/cli/main.js';

/** Run `tide ...args` in this process; its exit code and what the handler printed. */
async function tide(...args: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const code = await main(args, (text) => (out += text));
  return { code, out };
}

test('every command answers --help, -h and tide help <command> with its usage, from one place, exit 0', async () => {
  const listing = await tide('help');
  // each command on its own line with its one-line summary
  const rows = [...listing.out.matchAll(/^ {2}(\S+) +(\S.*)$/gm)].map((m) => [m[1]!, m[2]!] as const);
  const names = rows.map(([name]) => name);
  assert.ok(names.length >= 20, listing.out);
  for (const [name, summary] of rows) assert.ok(summary.length > 10 && !summary.includes('\n'), `${name}: "${summary}"`);
  assert.match(listing.out, /^ {2}up +\S/m);
  for (const name of names) {
    const long = await tide(name, '--help');
    assert.equal(long.code, 0, name);
    assert.match(long.out, new RegExp(`^usage: tide ${name}\\b`), name);
    assert.ok(long.out.endsWith('\n') && !long.out.endsWith('\n\n'), `${name}: one newline at the end`);
    assert.deepEqual(await tide(name, '-h'), long, name);
    assert.deepEqual(await tide('help', name), long, name);
  }
  // The commands that talk to a running tide up list the client options after their own text.
  for (const name of ['ps', 'scale', 'restart', 'down', 'logs']) assert.match((await tide(name, '--help')).out, /\noptions:\n {2}-c, --config <file>/, name);
  assert.match((await tide('down', '--help')).out, /--timeout <s>/);
  // After `--`, --help is an argument like any other, not a request for help.
  assert.equal((await tide('scale', '--', '--help')).code, 2);
});
