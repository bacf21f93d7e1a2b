/**
 * The image recipe `tide init --docker` writes: a Dockerfile that installs the project's
 * dependencies (tidescale among them) and copies its handlers, routes and tide.yaml, with
 * `tide` as the entrypoint, the way the Kubernetes and Compose exports run it (`args: [worker,
 * ...]`). The exports' default image is the name this recipe tells you to build.
 */

/** The image name the recipe builds and the exports reference by default: `<project>:latest`. */
export function defaultImage(project: string): string {
  const name = project.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[^a-z0-9]+/, '').slice(0, 63);
  return `${name || 'tidescale'}:latest`;
}

/** The Dockerfile's text for a project. */
export function starterDockerfile(project: string): string {
  const image = defaultImage(project);
  return `# The image of ${project}'s services: your handlers, routes and tide.yaml, with tide as the
# entrypoint (written by \`tide init --docker\`; docs/platforms/ in the tidescale package).
#   docker build -t ${image} .
# \`tide export kubernetes\` and \`tide export compose\` reference ${image} by default; after
# pushing it to a registry, pass --image registry.example/${image} to the export instead.
FROM node:22-slim
WORKDIR /app
# TIDE_METRICS_PORT: a worker's /health and /metrics (tide health asks it; an API its own port)
ENV NODE_ENV=production TIDE_METRICS_PORT=9091
# dependencies first, so a change to your handlers does not reinstall them (.npmrc, when
# there is one, for a private registry)
COPY package*.json .npmrc* ./
RUN if [ -f package-lock.json ]; then npm ci --omit=dev --no-audit --no-fund; \\
    else npm install --omit=dev --no-audit --no-fund; fi
COPY . .
USER node
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \\
  CMD ["node", "node_modules/tidescale/bin/tide.js", "health"]
# the compiled tide itself: no npx, no TypeScript tooling at start-up (TypeScript handlers
# load through tsx, which tidescale depends on); it drains on SIGTERM (docker stop, a scale-in)
# within its --grace: give the container a stop timeout above it
ENTRYPOINT ["node", "node_modules/tidescale/bin/tide.js"]
CMD ["worker"]
`;
}

/** The .dockerignore beside it: nothing of this machine's installs or state in the image. */
export function starterDockerignore(): string {
  return ['node_modules', '.tide', '.git', '*.log', 'Dockerfile', '.dockerignore', ''].join('\n');
}
