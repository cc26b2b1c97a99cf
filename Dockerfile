# syntax=docker/dockerfile:1

# One image for the API, the worker and migrations; pick the process with the
# command (the default runs the API).

FROM node:20-bookworm-slim AS build
WORKDIR /app
# Scarf's install hook phones home; the project opts out of it (allowScripts).
ENV SCARF_ANALYTICS=false

# Manifests first, so editing sources reuses the npm ci layer.
COPY package.json package-lock.json ./
COPY libs/contracts/package.json libs/contracts/
COPY libs/config/package.json libs/config/
COPY libs/core/package.json libs/core/
COPY libs/db/package.json libs/db/
COPY migrations/package.json migrations/
COPY workflows/package.json workflows/
COPY activities/package.json activities/
COPY apps/api/package.json apps/api/
COPY apps/worker/package.json apps/worker/
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund

# Sources are copied one by one: there is no .dockerignore, and the host's
# node_modules, dist/ (with stale .tsbuildinfo) and .data/ must stay out.
COPY tsconfig.base.json tsconfig.json ./
# `npm run build` runs these three; openapi-client.mjs skips itself here (no test/ in the image: nothing uses the types).
COPY scripts/bundle-workflows.mjs scripts/openapi-dump.mjs scripts/openapi-client.mjs scripts/
COPY libs/contracts/tsconfig.json libs/contracts/
COPY libs/contracts/src libs/contracts/src
COPY libs/config/tsconfig.json libs/config/
COPY libs/config/src libs/config/src
COPY libs/core/tsconfig.json libs/core/
COPY libs/core/src libs/core/src
COPY libs/db/tsconfig.json libs/db/
COPY libs/db/src libs/db/src
COPY migrations/tsconfig.json migrations/
COPY migrations/src migrations/src
COPY workflows/tsconfig.json workflows/
COPY workflows/src workflows/src
COPY activities/tsconfig.json activities/
COPY activities/src activities/src
COPY apps/api/tsconfig.json apps/api/
COPY apps/api/src apps/api/src
COPY apps/worker/tsconfig.json apps/worker/
COPY apps/worker/src apps/worker/src

# typescript and the bundler are devDependencies: prune only after building.
RUN npm run build && npm prune --omit=dev --no-audit --no-fund


FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
# Shell isolation: bubblewrap (namespaces), slirp4netns + nftables (filtered egress), util-linux (prlimit, nsenter).
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      bubblewrap slirp4netns nftables util-linux iproute2 \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# The whole /app keeps the workspace layout, so node_modules/@task-scheduler/*
# symlinks resolve. Left root-owned: the app has no reason to rewrite its code;
# shell tasks get their scratch directories under /tmp.
COPY --from=build /app /app
USER node
EXPOSE 3000
CMD ["node", "apps/api/dist/main.js"]
