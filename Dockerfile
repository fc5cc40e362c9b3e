# syntax=docker/dockerfile:1
# One image for api, worker and codec; docker-compose.yml picks the command.
# Install scripts stay off (--ignore-scripts), as package.json "allowScripts" says: every native
# dependency we use (argon2, @temporalio/core-bridge, esbuild, @swc/core) ships prebuilt binaries.

# ---- build: compile TypeScript to dist/ and bundle the workflows ----
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY . .
RUN npx tsc -p tsconfig.build.json \
 && node dist/scripts/build-workflow-bundle.js \
 && test -s dist/workflow-bundle.js

# ---- runtime: production dependencies and dist/ only, non-root ----
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force
COPY --from=build /app/dist ./dist
# DATA_DIR (default .data) is the only place the process may write.
RUN mkdir -p /app/.data && chown node:node /app/.data
USER node
EXPOSE 3000 8234
CMD ["node", "dist/api/server.js"]
