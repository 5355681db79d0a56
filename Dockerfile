# certmint and the mutual-TLS demo, built from this repository.
#
#   docker build -t certmint .
#   docker compose up          (see docker-compose.yml)
#
# Stage 1 compiles static binaries; stage 2 is a small Debian with curl
# (for health checks) and a non-root user.

FROM golang:1.26-bookworm AS build
WORKDIR /src
# Modules first, so code edits do not refetch them.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=docker
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" \
        -o /out/certmint ./cmd/certmint \
 && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/mtls-demo ./cmd/mtls-demo

FROM debian:bookworm-slim
# /data, /state and /roots are mount points owned by the service user: a
# fresh named volume takes the owner and mode of the image directory it is
# mounted on, so the non-root processes can write their volumes. /roots
# holds only public certificates (the demo's trust anchor), so others may
# read it.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin certmint \
 && mkdir -p /data /state /roots \
 && chown -R certmint:certmint /data /state /roots \
 && chmod 0700 /data /state
COPY --from=build /out/certmint /out/mtls-demo /usr/local/bin/
USER certmint
WORKDIR /data
# 8443 ACME (HTTPS), 8444 the console (HTTPS), 8880 CRLs (plain HTTP).
EXPOSE 8443 8444 8880
ENTRYPOINT ["/usr/local/bin/certmint"]
# The console listens on every address of the container, so that
#   docker run -p 8443:8443 -p 127.0.0.1:8444:8444 certmint
# reaches it at https://127.0.0.1:8444 on the host; publish it on the
# host's loopback (as above) or a management network only.
CMD ["serve", "--data", "/data", "--listen", ":8443", "--admin-listen", ":8444"]
