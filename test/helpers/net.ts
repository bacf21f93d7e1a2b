/** Network helpers for tests: a loopback port nothing listens on, loopback servers started and stopped. */
import type http from 'node:http';
import net from 'node:net';

export { freePort } from '../../src/net/ports.js';

/** Starts `server` on a kernel-picked loopback port; resolves with its http:// base URL. */
export async function listenOnLoopback(server: net.Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}

/** Ends every connection of an HTTP server (keep-alive ones too), then closes it; rejects if it was not listening. */
export async function closeHttpServer(server: http.Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
}
