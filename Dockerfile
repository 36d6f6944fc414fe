# syntax=docker/dockerfile:1
# rpa-access: the `rpa-access` command (operator by default; also `serve`, `apply`, ...).
#   docker build -t ghcr.io/rpa-access/rpa-access:0.1.0 .

# ---- build: compile TypeScript, build better-sqlite3, keep production dependencies only ----
# The full image has python3, make and g++, which node-gyp needs when better-sqlite3 finds no
# prebuilt binary for this platform.
FROM node:24-bookworm AS build
WORKDIR /app
ENV npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` (the build) needs the sources, copied later for layer caching; the
# only production dependency with an install script, better-sqlite3, is built explicitly.
RUN npm ci --ignore-scripts && npm rebuild better-sqlite3
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev --ignore-scripts

# ---- runtime: slim image, non-root, read-only friendly ----
FROM node:24-bookworm-slim
ENV NODE_ENV=production
# Two malloc arenas, not glibc's eight per core: memory freed by V8's and libuv's threads stays
# in their arenas, and at 10,000 objects the extra arenas held 0.4 KiB per object for good
# (bench/operator-scale.ts starts its operator process with these ENV lines).
ENV MALLOC_ARENA_MAX=2
WORKDIR /app
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY crds ./crds
# The image's `node` user (uid/gid 1000), numeric so that `runAsNonRoot` can verify it. Files
# stay root-owned: the process cannot change its own code (and the root filesystem can be
# mounted read-only; the operator writes only to /tmp).
USER 1000:1000
EXPOSE 8080 8081 9443
ENTRYPOINT ["node", "dist/src/cli/main.js"]
CMD ["operator"]
