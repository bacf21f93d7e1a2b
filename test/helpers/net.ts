/** Network helpers for tests: a loopback port nothing listens on. */
import net from 'node:net';

/** A loopback port that was free a moment ago (the kernel picked it; nothing listens now). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
