# The change-request worker, for docker-compose.temporal.yml (or any container platform).
#   docker build -t change-request-worker .
# Configuration comes from the environment (worker/config.ts): TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE,
# TEMPORAL_TASK_QUEUE, CATALOG_PATH, DATA_DIR, ANTHROPIC_API_KEY, GITHUB_TOKEN / FORGE_TOKEN, FORGE_URL,
# WORKER_ROLES (one role per container in docker-compose.temporal.yml) and WORKER_BUILD_ID (a build arg).
FROM node:20.20.2-bookworm-slim

# git: repository checks and the forge shell out to it (isomorphic-git does the rest);
# ca-certificates: HTTPS to the model provider and to GitHub.
RUN apt-get update \
 && apt-get install -y --no-install-recommends git ca-certificates \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
ENV NODE_ENV=production \
    DATA_DIR=/data \
    NPM_CONFIG_UPDATE_NOTIFIER=false

# Dependencies first, as their own layer. tsx is a regular dependency, so --omit=dev is enough at run time.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

COPY . .

# The build id Worker Versioning pins runs to (there is no .git in the image to take it from).
ARG WORKER_BUILD_ID=
ENV WORKER_BUILD_ID=${WORKER_BUILD_ID}

# The source stays root-owned and read-only to the worker; it writes only under /data (a volume).
RUN mkdir -p /data && chown node:node /data
VOLUME /data
USER node

CMD ["npx", "tsx", "worker/main.ts"]
