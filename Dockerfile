# syntax=docker/dockerfile:1
#
# The MCP gateway image: gateway and demo binaries on distroless, running as
# nonroot, with a default config that mounts the demo server over stdio so
#
#   docker build -t mcp-gateway .
#   docker run --rm -p 8080:8080 mcp-gateway
#
# serves http://localhost:8080/mcp (and /sse) out of the box, without
# authentication (deploy/docker/gateway.yaml: a demo, publish it on loopback
# only). Mount your own config over /etc/gateway/gateway.yaml (or pass
# --config) for real upstreams; Kubernetes does, from a ConfigMap. See
# deploy/README.md. deploy/deploy_test.go runs this file's build command and
# the binaries it makes with this config.

# The builder's Go must be at least go.mod's `go` line: golang images set
# GOTOOLCHAIN=local, so an older one fails instead of downloading a newer
# toolchain. deploy/deploy_test.go checks this.
ARG GO_VERSION=1.26.8

# ---- build ----------------------------------------------------------------
# Runs on the build host's platform and cross-compiles (CGO_ENABLED=0), so
# `docker buildx build --platform linux/amd64,linux/arm64` needs no emulation.
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
ENV CGO_ENABLED=0

# Modules first, as their own layer: it is rebuilt only when go.mod or go.sum
# change, not on every source edit.
COPY go.mod go.sum ./
RUN go mod download && go mod verify

COPY . .
ARG VERSION=dev
ARG TARGETOS
ARG TARGETARCH
# The README's `go build ./cmd/gateway` and `go build ./cmd/demo`, static
# (CGO_ENABLED=0, for distroless/static), without local paths (-trimpath) or
# symbols (-s -w). -X main.version sets what `gateway version` prints (and
# the serverInfo version); the demo keeps its own constant version.
RUN --mount=type=cache,target=/root/.cache/go-build \
    GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
        -o /out/ ./cmd/gateway ./cmd/demo

# ---- runtime --------------------------------------------------------------
# static-debian12: CA certificates, tzdata, /etc/passwd with nonroot
# (65532); no shell, no package manager. Hence no HEALTHCHECK here: use the
# gateway's own endpoints as probes (GET /healthz liveness, GET /readyz
# readiness; see deploy/kubernetes/base/deployment.yaml). Pin the base images
# by digest (image:tag@sha256:...) where builds must be reproducible.
FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
LABEL org.opencontainers.image.title="mcp-gateway" \
      org.opencontainers.image.description="One MCP entry point for many upstream MCP servers" \
      org.opencontainers.image.version="${VERSION}"

COPY --from=build /out/gateway /gateway
COPY --from=build /out/demo /demo
COPY deploy/docker/gateway.yaml /etc/gateway/gateway.yaml

# Numeric, so Kubernetes can verify runAsNonRoot without a passwd lookup.
USER 65532:65532
EXPOSE 8080
# SIGTERM (docker stop, Kubernetes) shuts down gracefully: streams end,
# requests in flight get up to 20s, stdio children are stopped, then the
# process exits (`docker stop -t 30`).
ENTRYPOINT ["/gateway"]
CMD ["--config", "/etc/gateway/gateway.yaml"]
