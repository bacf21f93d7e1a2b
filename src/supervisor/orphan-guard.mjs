// Loaded with `node --import` into replicas the supervisor starts with node itself.
// Plain JavaScript (not TypeScript) because it loads before any TypeScript loader.
//
// Why: Linux gives a child no signal when its parent dies (Node cannot set PDEATHSIG), so a
// `tide up` killed with SIGKILL would leave its replicas running, holding ports and jobs.
// When this process is re-parented (its parent died), it sends itself SIGTERM: an API replica
// finishes its requests and a worker drains, the same as a scale-in. The check is a one-second
// unref'd timer, so it never keeps a process alive.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) process.kill(process.pid, 'SIGTERM');
}, 1000).unref();
