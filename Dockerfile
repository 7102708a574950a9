# syntax=docker/dockerfile:1
# The pvtapi image for users with a Docker (or BuildKit) engine:
#   docker build -t pvtapi-operator:dev .
# One static binary (`pvtapi-operator run | probe`) on distroless/static, user 65532, no shell.
# It is the image the test suite builds without a daemon (tests/substrate/oci-image.py --pvtapi):
# same binary path, user and entrypoint; tests/tests/image.rs fails if the two drift apart.
FROM rust:1.95-bookworm AS build
RUN rustup target add x86_64-unknown-linux-musl \
 && apt-get update && apt-get install -y --no-install-recommends musl-tools && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked --target x86_64-unknown-linux-musl -p pvtapi-operator --bin pvtapi-operator \
 && cp target/x86_64-unknown-linux-musl/release/pvtapi-operator /pvtapi-operator

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /pvtapi-operator /pvtapi-operator
USER 65532:65532
ENTRYPOINT ["/pvtapi-operator"]
