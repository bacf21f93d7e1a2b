/**
 * The client side of the control API, for `tide scale/ps/logs/restart/down`: finds the running
 * `tide up` through `<state_dir>/control.json` (written by `tide up`, token-free), and turns
 * error bodies back into TideErrors with their codes.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';


import { type ErrorCode, ERRORS, TideError, type Where } from '../errors.js';
import type { LogLine } from '../supervisor/supervisor.js';

/** `<state_dir>/control.json`: where the running `tide up` answers. Holds no secret. */
export interface ControlState {
  url: string;
  pid: number;
  startedAt: number;
  project?: string;
  /** The load balancer's URL, when there are api services. */
  balancer?: string;
}

const STATE_FILE = 'control.json';

export async function writeControlState(stateDir: string, state: ControlState): Promise<void> {
  await mkdir(stateDir, { recursive: true });
  // no token in here, but 0600 anyway: it says where an admin API listens
  await writeFile(path.join(stateDir, STATE_FILE), `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
}

export async function readControlState(stateDir: string): Promise<ControlState | undefined> {
  try {
    return JSON.parse(await readFile(path.join(stateDir, STATE_FILE), 'utf8')) as ControlState;
  } catch {
    return undefined;
  }
}

/** Removes the state file if it is still this process's (a newer `tide up` may own it). */
export async function removeControlState(stateDir: string, pid = process.pid): Promise<void> {
  const state = await readControlState(stateDir);
  if (state?.pid === pid) await rm(path.join(stateDir, STATE_FILE), { force: true });
}

export interface ClientTarget {
  /** The control API URL; default: from control.json in the state directory. */
  url?: string | undefined;
  stateDir: string;
  /** Bearer token (needed when the control API listens beyond loopback). */
  token?: string | undefined;
}

type Undici = typeof import('undici');
let http: Promise<{ fetch: Undici['fetch']; patient: InstanceType<Undici['Agent']> }> | undefined;

/**
 * undici and its agent, loaded on the first request: a command that finds nothing running
 * (`tide ps` with no control.json) answers without paying for the import. The agent: a
 * rolling restart answers when done, which can take minutes, so no header or body timeout
 * (fetch's default would cut it at 300 s and read as "not running").
 */
function undici() {
  http ??= import('undici').then(({ Agent, fetch }) => ({ fetch, patient: new Agent({ headersTimeout: 0, bodyTimeout: 0 }) }));
  return http;
}

/** A thin JSON client of the control API. */
export class ControlClient {
  constructor(
    readonly url: string,
    private readonly token?: string,
  ) {}

  /** GET or POST an endpoint; a non-2xx answer throws the TideError it carries. */
  async request<T>(method: 'GET' | 'POST', endpoint: string, body?: unknown): Promise<T> {
    const res = await this.fetch(method, endpoint, body);
    const text = await res.text();
    const parsed = text ? (JSON.parse(text) as unknown) : null;
    if (!res.ok) throw errorFrom(res.status, parsed);
    return parsed as T;
  }

  /** Streams log lines to `onLine` until the server ends the stream or `signal` aborts. */
  async logs(query: { service?: string | undefined; tail?: number; follow?: boolean }, onLine: (line: LogLine) => void, signal?: AbortSignal): Promise<void> {
    const params = new URLSearchParams();
    if (query.service) params.set('service', query.service);
    if (query.tail !== undefined) params.set('tail', String(query.tail));
    if (query.follow) params.set('follow', '1');
    const res = await this.fetch('GET', `/v1/logs?${params}`, undefined, signal);
    if (!res.ok || !res.body) throw errorFrom(res.status, await res.json().catch(() => null));
    const decoder = new TextDecoder();
    let buffered = '';
    try {
      for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
        buffered += decoder.decode(chunk, { stream: true });
        let newline: number;
        while ((newline = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, newline);
          buffered = buffered.slice(newline + 1);
          if (line) onLine(JSON.parse(line) as LogLine);
        }
      }
    } catch (err) {
      if (signal?.aborted) return;
      // the server went away (tide down): the stream simply ends
      if ((err as { name?: string }).name === 'TypeError' || (err as { code?: string }).code === 'UND_ERR_SOCKET') return;
      throw err;
    }
  }

  private async fetch(method: string, endpoint: string, body?: unknown, signal?: AbortSignal) {
    const { fetch, patient } = await undici();
    try {
      return await fetch(`${this.url}${endpoint}`, {
        dispatcher: patient,
        method,
        headers: {
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        ...(signal ? { signal } : {}),
      });
    } catch (cause) {
      if (signal?.aborted) throw cause;
      throw new TideError('TIDE_SUPERVISOR_NOT_RUNNING', `Nothing answers at ${this.url}: is \`tide up\` running?`, { cause });
    }
  }
}

/** The client for the `tide up` of a state directory (or an explicit URL). */
export async function connectControl(target: ClientTarget): Promise<ControlClient> {
  let url = target.url;
  if (!url) {
    const state = await readControlState(target.stateDir);
    if (!state) {
      throw new TideError(
        'TIDE_SUPERVISOR_NOT_RUNNING',
        `No \`tide up\` runs for this project: ${path.join(target.stateDir, STATE_FILE)} ${existsSync(target.stateDir) ? 'does not exist' : 'is missing (no state directory)'}. Start one with \`tide up\` (or pass --url).`,
      );
    }
    url = state.url;
  }
  return new ControlClient(url.replace(/\/$/, ''), target.token ?? process.env.TIDE_CONTROL_TOKEN);
}

function errorFrom(status: number, body: unknown): TideError {
  const error = (body as { error?: { code?: string; message?: string; where?: Where } } | null)?.error;
  const code = error?.code && error.code in ERRORS ? (error.code as ErrorCode) : 'TIDE_INTERNAL';
  return new TideError(code, error?.message ?? `The control API answered ${status}.`, error?.where ? { where: error.where } : {});
}

/** The flags every client command takes. */
/** The client for the client flags (cli/client-flags.ts): state directory and token from the config when it exists. */
export async function clientFromFlags(flags: { config?: string | undefined; 'state-dir'?: string | undefined; url?: string | undefined }): Promise<ControlClient> {
  let stateDir = flags['state-dir'];
  let token: string | undefined;
  const configPath = flags.config ?? 'tide.yaml';
  if (existsSync(configPath)) {
    const { loadConfig } = await import('../config/load.js');
    const config = await loadConfig(configPath);
    stateDir ??= path.resolve(path.dirname(configPath), config.stateDir);
    token = config.control.token;
  }
  return connectControl({ stateDir: stateDir ?? '.tide', url: flags.url, token: process.env.TIDE_CONTROL_TOKEN ?? token });
}
