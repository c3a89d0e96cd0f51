# Two images, built with BuildKit (not built on the project's machines: they have no Docker engine).
#
#   webhook/controller (default target):  docker buildx build -t kube-prepull .
#     compiled JavaScript and production dependencies on a current LTS Node, non-root, no shell.
#   helper (the static binary prepull pods run, amd64 and arm64):
#     docker buildx build --target helper --platform linux/amd64,linux/arm64 -t kube-prepull-helper .
#     `FROM scratch` holding only /prepull-helper (helper/README.md), cross-compiled on the build
#     platform (CGO off: no libc, nothing to emulate).

FROM --platform=$BUILDPLATFORM golang:1.24-bookworm AS helper-build
ARG TARGETOS=linux
ARG TARGETARCH=amd64
ARG HELPER_VERSION=v0.1.0
WORKDIR /helper
COPY helper/go.mod helper/main.go ./
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -buildvcs=false -ldflags "-s -w -X main.version=$HELPER_VERSION" -o /out/prepull-helper .

FROM scratch AS helper
COPY --from=helper-build /out/prepull-helper /prepull-helper
USER 65532:65532
ENTRYPOINT ["/prepull-helper"]
CMD ["pause"]

FROM node:24-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npx tsc -p tsconfig.build.json && npm prune --omit=dev

FROM gcr.io/distroless/nodejs24-debian12:nonroot AS webhook
WORKDIR /app
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist/src ./dist/src
USER 65532:65532
ENTRYPOINT ["/nodejs/bin/node", "dist/src/cli/main.js"]
CMD ["serve"]
