# The thread-safety pass over the CUDA layer. The clang-tsa preset builds
# without CUDA (no nvcc), so core/device/cuda/ is not part of its build;
# this compiles that layer's host sources (and the mlp module's) with clang
# and -Wthread-safety -Werror=thread-safety against the CUDA toolkit's
# headers, into an object library nothing links. Where no toolkit headers
# are found (a machine without CUDA) the check is skipped with a message.
# Included from core/device/CMakeLists.txt when INFERD_WITH_CUDA is off.
if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  return()
endif()
find_path(INFERD_TSA_CUDA_INCLUDE_DIR cuda_runtime.h
  HINTS ENV CUDA_HOME ENV CUDA_PATH /usr/local/cuda
  PATH_SUFFIXES include)
if(NOT INFERD_TSA_CUDA_INCLUDE_DIR)
  message(STATUS "Thread-safety check of core/device/cuda: skipped (no CUDA headers; "
                 "set CUDA_HOME to check it)")
  return()
endif()
message(STATUS "Thread-safety check of core/device/cuda: on (${INFERD_TSA_CUDA_INCLUDE_DIR})")
set(_cuda_dir ${PROJECT_SOURCE_DIR}/core/device/cuda)
set(_tsa_srcs
  ${_cuda_dir}/async_allocator.cc
  ${_cuda_dir}/callback_runner.cc
  ${_cuda_dir}/cuda_device.cc
  ${_cuda_dir}/cuda_discovery.cc
  ${_cuda_dir}/cuda_kernels.cc
  ${_cuda_dir}/cuda_memcpy_baseline.cc
  ${_cuda_dir}/cuda_status.cc
  ${_cuda_dir}/cuda_stream.cc
  ${_cuda_dir}/nvml.cc
  ${_cuda_dir}/mlp/mlp_cuda.cc)
find_path(INFERD_TSA_NCCL_INCLUDE_DIR nccl.h HINTS ${INFERD_TSA_CUDA_INCLUDE_DIR} /usr/include)
if(INFERD_TSA_NCCL_INCLUDE_DIR)
  list(APPEND _tsa_srcs ${_cuda_dir}/nccl_communicator.cc)
endif()
add_library(core_device_cuda_tsa_check OBJECT ${_tsa_srcs})
target_include_directories(core_device_cuda_tsa_check PRIVATE
  ${PROJECT_SOURCE_DIR} ${PROJECT_BINARY_DIR})
target_include_directories(core_device_cuda_tsa_check SYSTEM PRIVATE
  ${INFERD_TSA_CUDA_INCLUDE_DIR})
if(INFERD_TSA_NCCL_INCLUDE_DIR)
  target_include_directories(core_device_cuda_tsa_check SYSTEM PRIVATE
    ${INFERD_TSA_NCCL_INCLUDE_DIR})
endif()
target_compile_options(core_device_cuda_tsa_check PRIVATE ${INFERD_WARNINGS})
