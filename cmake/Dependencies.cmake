# Finds backprop's dependencies, all Debian packages installed by scripts/install-deps.

find_package(OpenMP REQUIRED)
find_package(ZLIB REQUIRED)
find_package(nlohmann_json 3 REQUIRED)

# OpenBLAS: prefer Debian's OpenMP build, so BLAS and backprop's kernels share one thread pool and never fight.
set(_blas_hints /usr/lib/${CMAKE_LIBRARY_ARCHITECTURE}/openblas-openmp)
find_library(BACKPROP_BLAS_LIBRARY NAMES openblas PATHS ${_blas_hints} NO_DEFAULT_PATH)
if(NOT BACKPROP_BLAS_LIBRARY)
  find_library(BACKPROP_BLAS_LIBRARY NAMES openblas REQUIRED)
endif()
find_path(BACKPROP_CBLAS_INCLUDE_DIR cblas.h
  PATHS /usr/include/${CMAKE_LIBRARY_ARCHITECTURE}/openblas-openmp /usr/include/openblas NO_DEFAULT_PATH)
if(NOT BACKPROP_CBLAS_INCLUDE_DIR)
  find_path(BACKPROP_CBLAS_INCLUDE_DIR cblas.h REQUIRED)
endif()
message(STATUS "backprop: BLAS ${BACKPROP_BLAS_LIBRARY} (cblas.h in ${BACKPROP_CBLAS_INCLUDE_DIR})")

# ONNX export (src/io/onnx.cpp): protobuf (libprotobuf-dev, protobuf-compiler) and ONNX's published schema,
# onnx.proto, from Debian's libonnx-dev. The C++ classes are generated with protoc at build time into the
# package backprop.onnx_proto with the lite runtime (the two knobs ONNX's own build offers, ONNX_NAMESPACE and
# ONNX_USE_LITE_PROTO): the bytes written are the same, and a process that also loads ONNX's own library
# (Python's onnx next to backprop's Python module) sees no second definition of onnx.ModelProto.
find_package(Protobuf REQUIRED)
find_file(BACKPROP_ONNX_PROTO onnx.proto PATHS /usr/include/onnx NO_DEFAULT_PATH)
if(NOT BACKPROP_ONNX_PROTO)
  find_file(BACKPROP_ONNX_PROTO onnx/onnx.proto REQUIRED)
endif()
message(STATUS "backprop: ONNX schema ${BACKPROP_ONNX_PROTO} (protoc ${Protobuf_VERSION})")
