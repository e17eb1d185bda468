# One image for every service of MCP Gateway. The default command is standalone mode
# (`npm start`'s entry); docker-compose.yml picks edge, auth or analytics per service.
ARG NODE_IMAGE=node:20-bookworm-slim

# ---- build: full dependency tree, compile, then drop dev dependencies ----
FROM ${NODE_IMAGE} AS build
WORKDIR /app
ENV npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false

COPY package.json package-lock.json ./
# `npm ci`: exactly the lockfile, which lists every platform's optional native packages
# (the DuckDB bindings for linux x64/arm64, glibc and musl among them).
RUN npm ci

COPY tsconfig.json tsconfig.build.json nest-cli.json ./
COPY libs ./libs
COPY apps ./apps
RUN npm run build

# Prove this platform's native DuckDB binding loads, so a broken image fails here and not at
# the analytics service's first query.
RUN npm prune --omit=dev \
 && node -e "require('@duckdb/node-bindings')"

# ---- runtime: compiled code + production dependencies, non-root ----
FROM ${NODE_IMAGE} AS runtime
# Every interface: in a container, the port is published or reached over the pod's network
# (outside one, standalone mode listens on loopback unless HOST says otherwise).
ENV NODE_ENV=production HOST=0.0.0.0
WORKDIR /app

# Code and dependencies stay root-owned (read-only for the service user); only data/ is
# writable, and a named volume mounted there inherits that ownership.
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# The [l] glob makes the example config optional in the build context: compose mounts its
# own (deploy/config/), and `docker run` of the default command uses this one.
COPY package.json gateway.yam[l] ./
COPY deploy/healthcheck.mjs ./deploy/healthcheck.mjs
COPY deploy/banner.mjs ./deploy/banner.mjs
RUN mkdir -p /app/data && chown node:node /app/data

USER node
EXPOSE 8080 8081
# slim images have no curl/wget: deploy/healthcheck.mjs probes with Node. This default fits
# the default (standalone) command and the edge; compose sets each service's own check.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "deploy/healthcheck.mjs", "edge", "healthz"]
CMD ["node", "--max-semi-space-size=64", "dist/apps/standalone/src/main.js"]
