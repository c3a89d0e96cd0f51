# Two images, built with BuildKit (not built on the project's machines: they have no Docker engine).
#
#   webhook/controller (default target):  docker buildx build -t kube-prepull .
#     compiled JavaScript and production dependencies on a current LTS Node, non-root, no shell.
#   helper (the static binary prepull pods run, amd64 and arm64):
#     docker buildx build --target helper --platform linux/amd64,linux/arm64 -t kube-prepull-helper .
#     `FROM scratch` holding only /prepull-helper (helper/README.md), cross-compiled on the build
#     platform (CGO off: no libc, nothing to emulate).
#
# Verified here without a Docker engine:
#   npm run test:helper (helper/test.sh -> helper/build.sh): the helper's go build, with the flags
#     used below, gives static binaries for linux/amd64 and linux/arm64.
#   npm run test:image (after npm run build):
#     tools/image/verify-webhook-layout.sh: the build stage's files alone compile to dist/src only;
#       /app laid out as below (package.json, the lockfile's production packages, nothing dev-only,
#       dist/src) runs `--help` and `serve --help` (as uid/gid 65532 when run as root), accepts
#       every flag manifests/base/deployment.yaml passes, and loads every module under dist/src.
#     tools/image/lint-dockerfile.sh: dockerfile-utils (any finding fails), then
#       test/unit/image/dockerfile.test.ts: BuildKit --check and hadolint rules it lacks, and this
#       file's targets, helper build flags and webhook layout as the checks above assume them.
# Not verified without an engine: the base images (distroless nodejs24 and its Node 24: the checks
#   run on the machine's Node), that the images build at all, their size, the multi-arch manifest,
#   and running in a container (as 65532 with a read-only root filesystem, as manifests/ runs it).

FROM --platform=$BUILDPLATFORM golang:1.24-bookworm AS helper-build
# BuildKit sets these per target platform; a default here would replace its value for every one.
ARG TARGETOS
ARG TARGETARCH
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
