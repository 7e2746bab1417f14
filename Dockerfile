# syntax=docker/dockerfile:1
# The wikiflow binary in a small image; compose/docker-compose.yml runs one container
# per pipeline stage from it (`wikiflow ingest`, `wikiflow bridge`, ...).
#
#   docker build -t wikiflow:local .

FROM golang:1.26 AS build
WORKDIR /src
# The image builds the main module alone; go.work only adds the task-runner tools.
ENV GOWORK=off CGO_ENABLED=0 GOFLAGS=-trimpath
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    go build -ldflags='-s -w' -o /out/wikiflow ./cmd/wikiflow

# debian-slim rather than distroless: its bash lets the compose health checks probe
# /healthz over /dev/tcp without wget or curl.
FROM debian:bookworm-slim
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/wikiflow /usr/local/bin/wikiflow
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/wikiflow"]
CMD ["--help"]
