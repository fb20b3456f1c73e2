// ParameterStore: every parameter of a model (or, later, of one pipeline
// stage) in one flat buffer, with a gradient buffer of the same layout
// (DESIGN.md decision 3). Layers register their parameters by name while
// they are constructed, then hold views into the flat buffers.
//
// Initialisation is a pure function of (seed, parameter name): a parameter
// gets the same values whichever stage builds it and in whatever order.
#ifndef PIPETRAIN_MODELS_PARAMETER_STORE_H_
#define PIPETRAIN_MODELS_PARAMETER_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "core/tensor.h"

namespace pipetrain {

enum class InitKind {
  kZeros,
  kOnes,
  kNormal,        // N(0, scale²)
  kXavierNormal,  // N(0, (scale · sqrt(2 / (fan_in + fan_out)))²), scale is the gain
};

struct InitRule {
  InitKind kind = InitKind::kZeros;
  double scale = 1.0;
};

struct ParameterInfo {
  std::string name;  // e.g. "encoder.3.self_attn.v.weight"
  Shape shape;
  int64_t offset = 0;  // in elements, into the flat buffers
  InitRule init;
};

using ParamId = int;

class ParameterStore {
 public:
  // Parameters (the master weights) and gradients live on `device` in `dtype`.
  // A `compute_dtype` other than `dtype` (bf16 on the GPU) adds a copy of the
  // parameters in that dtype: param() returns views of it, and
  // RefreshComputeCopy() rounds the masters into it after every update.
  explicit ParameterStore(DType dtype, Device device = Device::kCpu)
      : ParameterStore(dtype, device, dtype) {}
  ParameterStore(DType dtype, Device device, DType compute_dtype)
      : dtype_(dtype), compute_dtype_(compute_dtype), device_(device) {}
  ParameterStore(const ParameterStore&) = delete;
  ParameterStore& operator=(const ParameterStore&) = delete;

  // Registration; only before Finalize(). Names must be unique. Constant
  // time per parameter (a name index, not a scan of the names so far), so a
  // model of L layers registers in O(L): a scan made 2000 + 2000 layers
  // take 17 s and 65,536 layers minutes.
  ParamId Add(std::string name, Shape shape, InitRule init);
  // Allocates the flat parameter and gradient buffers (gradients zeroed).
  void Finalize();
  bool finalized() const { return params_.defined(); }

  // Fills every parameter by its init rule, keyed by (seed, name).
  void Initialize(uint64_t seed);

  // A view of parameter `id` as the layers compute with it (the compute copy
  // when there is one, else the master weights).
  Tensor param(ParamId id) const;
  Tensor grad(ParamId id) const;
  Tensor& flat_params() { return params_; }
  Tensor& flat_grads() { return grads_; }
  const Tensor& flat_params() const { return params_; }
  void ZeroGrads() { grads_.Zero(); }

  DType dtype() const { return dtype_; }
  DType compute_dtype() const { return compute_dtype_; }
  // The master weights on the host in the CPU layout (parameters back to back,
  // no alignment gaps): flat_params() itself for a CPU store.
  Tensor PackedHostParams() const;
  // Copies the master weights into the compute copy (no-op without one).
  void RefreshComputeCopy();
  // Overwrites the parameters of a CPU store with `flat`: a whole model's
  // parameters in the CPU layout (as PackedHostParams or a trainer's
  // GatherParameters give them) of any device and dtype, converted to this
  // store's dtype. An error when the element counts differ.
  absl::Status LoadPackedParams(const Tensor& flat);
  Device device() const { return device_; }
  int64_t total_elements() const { return total_; }
  const std::vector<ParameterInfo>& infos() const { return infos_; }
  // How many times registration compared two parameter names for equality,
  // all Add() calls together. A test watches it to keep registration linear
  // in the number of parameters (about one comparison per Add, where a scan
  // of the names so far makes n²/2) without timing anything.
  int64_t name_comparisons() const { return *name_comparisons_; }

 private:
  // Name equality that counts its calls into name_comparisons().
  struct CountingEqual {
    int64_t* count;
    bool operator()(const std::string& a, const std::string& b) const {
      ++*count;
      return a == b;
    }
  };

  DType dtype_;
  DType compute_dtype_;
  Device device_;
  std::vector<ParameterInfo> infos_;
  // Heap-held so the index's comparator keeps pointing at it.
  std::unique_ptr<int64_t> name_comparisons_ = std::make_unique<int64_t>(0);
  std::unordered_map<std::string, ParamId, std::hash<std::string>, CountingEqual> index_{
      0, std::hash<std::string>(), CountingEqual{name_comparisons_.get()}};
  int64_t total_ = 0;
  Tensor params_;
  Tensor grads_;
  Tensor compute_;  // params_ in compute_dtype_, when it differs from dtype_
};

// Stable 64-bit hash (FNV-1a) of a byte range; used for parameter init keys
// and for the params digest printed at the end of training.
uint64_t Fnv1a64(const void* data, size_t bytes, uint64_t state = 0xcbf29ce484222325ull);

// Hex digest of every parameter's bytes in layer (registration) order.
std::string ParamsDigest(const ParameterStore& store);

}  // namespace pipetrain

#endif  // PIPETRAIN_MODELS_PARAMETER_STORE_H_
