# pkgr controller image, for machines that can pull rust:1-alpine and distroless. Offline (and in
# CI), `scripts/image REF` builds the image with buildah from the local release binary instead.
#
# Static binary via musl (rust:alpine builds for x86_64/aarch64-unknown-linux-musl natively, with
# crt-static on by default): no libc in the final image, so it runs FROM scratch-like distroless
# static, and musl's small allocator keeps the idle RSS low. A static-pie glibc build would also
# work but needs glibc's static archives and gives NSS warnings for DNS; musl avoids both.
FROM rust:1-alpine AS build
RUN apk add --no-cache musl-dev gcc g++ make cmake perl
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY crds ./crds
# benches/tests are not needed for the binary; an empty dir keeps cargo's manifest checks happy.
RUN mkdir -p tests && cargo build --release --locked --bin pkgr \
    && cp target/release/pkgr /pkgr \
    && (ldd /pkgr 2>&1 | grep -q "not a dynamic executable\|statically linked" || (echo "pkgr is not static" && ldd /pkgr && exit 1))

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /pkgr /usr/local/bin/pkgr
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/pkgr"]
CMD ["controller", "--log-format", "json"]
