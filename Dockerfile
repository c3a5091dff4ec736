# Gatehouse: the proxy with its rules. Mount your own rules at /app/rules.
FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY rules ./rules
ENV NODE_ENV=production
EXPOSE 6432 6480
USER node
# The demo state (.gatehouse/: audit log) is written under the working directory.
WORKDIR /home/node
CMD ["node", "--import", "tsx", "/app/src/cli.ts", "serve", "--rules", "/app/rules", "--host", "0.0.0.0"]
