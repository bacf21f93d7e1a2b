/**
 * The HTTP client the HTTP-speaking sources share (prometheus, http-json, rabbitmq's
 * management API): one undici Agent per source, so close() can destroy exactly its sockets
 * (the global fetch pool would keep them open past close), credentials in a URL turned into
 * a Basic header (undici refuses them inline), and the body read as text then JSON.
 */
import { Agent, request } from 'undici';

import { type SourceLabel, sourceError } from './guard.js';
import type { SourceContext } from './types.js';

export interface HttpAnswer {
  status: number;
  text: string;
  /** The parsed body, when it is JSON. */
  json: unknown;
  isJson: boolean;
}

export interface HttpClient {
  get(url: string, init: { headers?: Record<string, string>; signal: AbortSignal }): Promise<HttpAnswer>;
  /** Destroys the agent and its sockets. Idempotent. */
  close(): Promise<void>;
}

/** A URL without its user:password, and the Basic header they make (if there were any). */
export function splitCredentials(raw: string): { url: string; authorization?: string } {
  const url = new URL(raw);
  if (!url.username && !url.password) return { url: url.toString() };
  const user = decodeURIComponent(url.username);
  const pass = decodeURIComponent(url.password);
  url.username = '';
  url.password = '';
  return { url: url.toString(), authorization: `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}` };
}

export function httpClient(timeoutMs: number): HttpClient {
  let agent: Agent | undefined;
  return {
    async get(raw, init) {
      agent ??= new Agent({ connect: { timeout: timeoutMs }, keepAliveTimeout: 10_000 });
      const { url, authorization } = splitCredentials(raw);
      const headers: Record<string, string> = { accept: 'application/json', ...(authorization ? { authorization } : {}), ...init.headers };
      const res = await request(url, { method: 'GET', dispatcher: agent, headers, signal: init.signal, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
      const text = await res.body.text();
      try {
        return { status: res.statusCode, text, json: JSON.parse(text) as unknown, isJson: true };
      } catch {
        return { status: res.statusCode, text, json: undefined, isJson: false };
      }
    },
    async close() {
      const a = agent;
      agent = undefined;
      if (a) await a.destroy();
    },
  };
}

/** Bearer header from the environment, or a TIDE_SOURCE_CONFIG naming the variable. */
export function bearerHeader(label: SourceLabel, envName: string | undefined, ctx: SourceContext): Record<string, string> {
  if (!envName) return {};
  const token = (ctx.env ?? process.env)[envName];
  if (!token) throw sourceError(label, 'TIDE_SOURCE_CONFIG', `bearer_token_env names ${envName}, which is not set`);
  return { authorization: `Bearer ${token}` };
}
