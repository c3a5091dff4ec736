# Gatehouse: the proxy with its rules. Mount your own rules at /app/rules.
#   docker run -p 6432:6432 -p 6480:6480 IMAGE                  serve /app/rules
#   docker run IMAGE check /app/rules                           any CLI command (ENTRYPOINT is the CLI)
FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY bin ./bin
COPY src ./src
# Compiled JavaScript in production (bin/gatehouse.js runs dist/ when it is newer than src/),
# then only the runtime dependencies are kept.
RUN npm run build && npm prune --omit=dev
COPY rules ./rules
ENV NODE_ENV=production
EXPOSE 6432 6480
USER node
# The demo state (.gatehouse/: audit log) is written under the working directory.
WORKDIR /home/node
# bin/gatehouse.js runs /app/dist (or, without it, loads tsx from /app/node_modules, not from
# the working directory: `node --import tsx` here fails with ERR_MODULE_NOT_FOUND).
# test/integration/docker-command.test.ts runs this command line from a temporary directory.
ENTRYPOINT ["node", "/app/bin/gatehouse.js"]
CMD ["serve", "--rules", "/app/rules", "--host", "0.0.0.0"]
