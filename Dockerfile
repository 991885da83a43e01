# sni-mux container image: compiled with the dev tools in one stage, shipped with production
# dependencies only, run as the image's non-root "node" user. docs/operations.md has the details.
#
#   docker build -t sni-mux .
#   docker run -d --name sni-mux --restart unless-stopped --stop-timeout 35 \
#     -p 443:443 -v /etc/sni-mux:/etc/sni-mux:ro sni-mux
#
# Port 443 without root: Docker (20.10 and later) sets net.ipv4.ip_unprivileged_port_start=0 in a
# container's own network namespace. With --network host it does not: listen on a port from 1024 up
# there, or run with --sysctl net.ipv4.ip_unprivileged_port_start=443 on a host that allows it.

FROM node:24-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: "prepare" would compile before the sources are here; the build is the next step.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY lib ./lib
COPY bin ./bin
RUN npm run build && npm prune --omit=dev --ignore-scripts --no-audit --no-fund

FROM node:24-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY examples ./examples
COPY docs ./docs
# The config is mounted at /etc/sni-mux/mux.toml; it needs no secrets, only to be readable by uid 1000.
USER node
EXPOSE 443
# SIGTERM drains for timeouts.drain (30 s by default): give `docker stop` longer (--stop-timeout 35).
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/app/dist/bin/sni-mux.js"]
CMD ["--config", "/etc/sni-mux/mux.toml"]
