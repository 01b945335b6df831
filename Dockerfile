# seos-gateway: runs the TypeScript sources directly with tsx (no build step).
#   docker build -t seos-gateway .
#   docker run -p 8080:8080 -p 8443:8443 -v seos-data:/data -e SEOS_GATEWAY_CONFIG=/data/gateway.json seos-gateway
# The configuration (self, signing, seos.endpoint.host "0.0.0.0", registry, ...) lives in the volume; without it
# the container serves only /health and says what is missing.

# ── build: production dependencies; better-sqlite3 compiles from source, which needs a toolchain ──
FROM node:20-bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
# The image ships Node's headers in /usr/local/include/node: compile against them instead of downloading them.
# tsx is a runtime dependency, so --omit=dev keeps it.
RUN npm_config_nodedir=/usr/local npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# ── runtime: no compiler ──
FROM node:20-bookworm-slim
# xmllint validates outgoing SEOS messages against the XSD (src/seos/schema-validation.ts).
RUN apt-get update \
 && apt-get install -y --no-install-recommends libxml2-utils \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY . .
COPY --from=build /app/node_modules ./node_modules
RUN mkdir -p /data && chown node:node /data
# Inside a container the server must bind all interfaces for -p to reach it; what is exposed is decided by -p.
ENV NODE_ENV=production HOST=0.0.0.0 ALLOW_REMOTE=true PORT=8080 DATA_DIR=/data
USER node
EXPOSE 8080 8443
VOLUME ["/data"]
# tsx directly, not `npx tsx`: npx does not pass SIGTERM on, so `docker stop` would kill the server without a
# clean shutdown. tsx relays SIGTERM to the gateway, which closes and exits 0.
CMD ["./node_modules/.bin/tsx", "src/cli/main.ts", "serve"]
