# inferd container image.
#
#   docker build -t inferd:dev .
#   docker run --rm --gpus all -p 50051:50051 -p 9464:9464 inferd:dev
#
# Why a Debian 12 builder and runtime instead of the nvidia/cuda Ubuntu images
# end to end: inferd is built and tested (scripts/setup.sh, CI) against
# Debian 12's abseil 20220623, gRPC 1.51, protobuf 3.21, yaml-cpp 0.7 and
# prometheus-cpp 1.0 with GCC 12. Ubuntu 24.04 ships yaml-cpp 0.8, GCC 13 and
# t64-renamed runtime packages: a toolchain CI never runs. NVIDIA publishes
# no Debian cuda image, so the CUDA toolkit (nvcc, headers, NCCL) comes from
# the pinned nvidia/cuda devel image, and the runtime stage copies only the
# CUDA libraries the daemon loads. CUDA ships its libraries built for old
# glibc releases, so they run on Debian 12's glibc 2.36. The NVIDIA container
# toolkit injects the driver (libcuda, nvidia-smi) at `docker run --gpus`.
#
# Apt packages are pinned to the Debian 12 (bookworm) versions; when a point
# release replaces one, refresh it with `apt-cache policy <package>`.

# --- CUDA toolkit source ------------------------------------------------------
FROM nvidia/cuda:13.0.1-devel-ubuntu24.04 AS cuda

# --- build --------------------------------------------------------------------
FROM debian:12 AS build
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential=12.9 \
      cmake=3.25.1-1 \
      ninja-build=1.11.1-2~deb12u1 \
      pkg-config=1.8.1-1 \
      libgrpc++-dev=1.51.1-3+b1 \
      protobuf-compiler-grpc=1.51.1-3+b1 \
      libprotobuf-dev=3.21.12-3+deb12u1 \
      protobuf-compiler=3.21.12-3+deb12u1 \
      grpc-proto=0.0~git20230110.6956c0e-1 \
      libabsl-dev=20220623.1-1+deb12u2 \
      libyaml-cpp-dev=0.7.0+dfsg-8+b1 \
      prometheus-cpp-dev=1.0.1-1 \
      libcivetweb-dev=1.15+dfsg-4 \
      zlib1g-dev=1:1.2.13.dfsg-1 \
      libjemalloc-dev=5.3.0-1 \
      python3=3.11.2-1+b1 \
 && rm -rf /var/lib/apt/lists/*

COPY --from=cuda /usr/local/cuda-13.0 /usr/local/cuda-13.0
COPY --from=cuda /usr/include/nccl*.h /usr/include/
COPY --from=cuda /usr/lib/x86_64-linux-gnu/libnccl.so* /usr/lib/x86_64-linux-gnu/
RUN ln -s /usr/local/cuda-13.0 /usr/local/cuda

# sm_90 (H100/H200) machine code plus compute_90 PTX; override for other parts,
# e.g. --build-arg CUDA_ARCHITECTURES="80;90".
ARG CUDA_ARCHITECTURES=90
WORKDIR /src
COPY . .
# The daemon finds backend libraries (libinferd_mlp_cuda.so, and
# libinferd_torch.so when libtorch was found) in <its bin>/../lib: they go to
# /usr/local/lib beside /usr/local/bin/inferd. /models holds the demo mlp as
# the image-baked model repository (a PVC may be mounted over it).
RUN cmake -S . -B build -G Ninja \
      -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_CUDA_COMPILER=/usr/local/cuda/bin/nvcc \
      -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCHITECTURES}" \
      -DINFERD_WITH_CUDA=ON \
      -DINFERD_BUILD_TESTS=OFF \
      -DINFERD_BUILD_BENCH=OFF \
 && cmake --build build -j"$(nproc)" \
 && mkdir -p /out/usr/local/bin /out/usr/local/lib /out/models \
 && cp build/bin/inferd build/bin/inferctl /out/usr/local/bin/ \
 && find build -name 'libinferd_*.so' -exec cp {} /out/usr/local/lib/ \; \
 && cp -r build/model_repository/demo_mlp /out/models/

# --- runtime ------------------------------------------------------------------
FROM debian:12-slim AS runtime
SHELL ["/bin/bash", "-o", "pipefail", "-c"]

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates=20250419~deb12u2 \
      libgrpc++1.51=1.51.1-3+b1 \
      libprotobuf32=3.21.12-3+deb12u1 \
      libabsl20220623=20220623.1-1+deb12u2 \
      libyaml-cpp0.7=0.7.0+dfsg-8+b1 \
      libprometheus-cpp-core1.0=1.0.1-1 \
      libjemalloc2=5.3.0-1 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 inferd \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin inferd

# Only the CUDA user-space libraries inferd loads: the runtime, cuBLAS/cuBLASLt
# (dlopen'ed by the mlp backend) and NCCL.
COPY --from=cuda /usr/local/cuda-13.0/targets/x86_64-linux/lib/libcudart.so.13* \
                 /usr/local/cuda-13.0/targets/x86_64-linux/lib/libcublas.so.13* \
                 /usr/local/cuda-13.0/targets/x86_64-linux/lib/libcublasLt.so.13* \
                 /usr/local/cuda/lib64/
COPY --from=cuda /usr/lib/x86_64-linux-gnu/libnccl.so.2* /usr/local/cuda/lib64/
RUN echo /usr/local/cuda/lib64 > /etc/ld.so.conf.d/cuda.conf && ldconfig

COPY --from=build /out/ /
COPY deploy/docker/inferd.yaml /etc/inferd/inferd.yaml

# Read by the NVIDIA container toolkit: which GPUs and driver parts to inject,
# and the oldest driver that runs CUDA 13.
ENV NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    NVIDIA_REQUIRE_CUDA="cuda>=13.0"

USER 10001:10001
EXPOSE 50051 9464

HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/inferd", "healthcheck", "--grpc-target=127.0.0.1:50051", "--service=inferd", "--tls"]

ENTRYPOINT ["/usr/local/bin/inferd"]
CMD ["--config=/etc/inferd/inferd.yaml"]
