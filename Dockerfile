# Gatehouse: the proxy with its rules. Mount your own rules at /app/rules.
#   docker run -p 6432:6432 -p 6480:6480 IMAGE                  serve /app/rules
#   docker run IMAGE check /app/rules                           any CLI command (ENTRYPOINT is the CLI)
FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY tsconfig.json ./
COPY bin ./bin
COPY src ./src
COPY rules ./rules
ENV NODE_ENV=production
EXPOSE 6432 6480
USER node
# The demo state (.gatehouse/: audit log) is written under the working directory.
WORKDIR /home/node
# bin/gatehouse.js loads tsx from its own node_modules (/app/node_modules), not from
# the working directory: `node --import tsx` here fails with ERR_MODULE_NOT_FOUND.
# test/integration/docker-command.test.ts runs this command line from a temporary directory.
ENTRYPOINT ["node", "/app/bin/gatehouse.js"]
CMD ["serve", "--rules", "/app/rules", "--host", "0.0.0.0"]
