# cuBLASLt, cuDNN and NCCL ship no CMake package config: find them by hand next
# to the toolkit (or under CUDNN_ROOT / NCCL_ROOT). The CUDA runtime comes from
# CUDAToolkit; the driver library (libcuda) is never linked: the runtime loads it.
find_package(CUDAToolkit REQUIRED)

set(_cuda_hints ${CUDAToolkit_LIBRARY_DIR} ${CUDAToolkit_LIBRARY_ROOT}/lib64
    $ENV{CUDNN_ROOT}/lib $ENV{CUDNN_ROOT}/lib64 $ENV{NCCL_ROOT}/lib /usr/lib/x86_64-linux-gnu)
set(_cuda_inc_hints ${CUDAToolkit_INCLUDE_DIRS} $ENV{CUDNN_ROOT}/include $ENV{NCCL_ROOT}/include
    /usr/include)

find_library(PIPETRAIN_CUDNN_LIBRARY cudnn HINTS ${_cuda_hints} REQUIRED)
find_path(PIPETRAIN_CUDNN_INCLUDE cudnn.h HINTS ${_cuda_inc_hints} REQUIRED)
find_library(PIPETRAIN_NCCL_LIBRARY nccl HINTS ${_cuda_hints} REQUIRED)
find_path(PIPETRAIN_NCCL_INCLUDE nccl.h HINTS ${_cuda_inc_hints} REQUIRED)
message(STATUS "pipetrain CUDA: cuDNN ${PIPETRAIN_CUDNN_LIBRARY}, NCCL ${PIPETRAIN_NCCL_LIBRARY}")

add_library(pipetrain_cuda_libs INTERFACE)
target_include_directories(pipetrain_cuda_libs INTERFACE ${PIPETRAIN_CUDNN_INCLUDE}
                           ${PIPETRAIN_NCCL_INCLUDE})
target_link_libraries(pipetrain_cuda_libs INTERFACE CUDA::cudart CUDA::cublas CUDA::cublasLt
                      ${PIPETRAIN_CUDNN_LIBRARY} ${PIPETRAIN_NCCL_LIBRARY})
