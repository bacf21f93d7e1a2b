/** Whether a host names this machine only: `localhost`, 127.0.0.0/8, ::1, or 127.x as an IPv4-mapped IPv6 address; brackets allowed. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  const v4 = h.startsWith('::ffff:') ? h.slice('::ffff:'.length) : h;
  return /^127(\.\d{1,3}){3}$/.test(v4);
}
