#include "models/translator.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <numeric>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/config/spec_loader.h"
#include "core/data/batch.h"
#include "core/ops/attention.h"
#include "core/ops/elementwise.h"
#include "core/ops/embedding.h"
#include "core/ops/layer_norm.h"
#include "core/ops/linear.h"
#include "core/status_macros.h"
#include "models/ffn_block.h"
#include "models/norm_constants.h"
#include "models/residual_join.h"

namespace pipetrain {
namespace {

// Copies every parameter of `to` from the one of the same name in `from`.
absl::Status CopyByName(const ParameterStore& from, ParameterStore& to) {
  std::map<std::string, ParamId> by_name;
  for (ParamId id = 0; id < static_cast<ParamId>(from.infos().size()); ++id) {
    by_name[from.infos()[id].name] = id;
  }
  for (ParamId id = 0; id < static_cast<ParamId>(to.infos().size()); ++id) {
    const ParameterInfo& info = to.infos()[id];
    auto it = by_name.find(info.name);
    if (it == by_name.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("translator: parameter '", info.name,
                       "' of the model spec is missing from the trained parameters; were they "
                       "trained with this spec?"));
    }
    const Tensor source = from.param(it->second);
    if (source.shape() != info.shape) {
      return absl::InvalidArgumentError(
          absl::StrCat("translator: parameter '", info.name, "' is ", ShapeString(source.shape()),
                       " in the trained parameters but ", ShapeString(info.shape),
                       " in the model of the spec; were they trained with this spec?"));
    }
    const Tensor values = source.dtype() == to.dtype() ? source : source.To(to.dtype());
    std::memcpy(to.param(id).raw_data(), values.raw_data(), values.nbytes());
  }
  return absl::OkStatus();
}

// Every decoder parameter of `trained` (the whole model's) must be one the
// cached decoder computes with; CopyByName checks the other direction.
absl::Status UsesEveryDecoderParameter(const ParameterStore& trained,
                                       const ParameterStore& cached) {
  std::set<std::string> used;
  for (const ParameterInfo& info : cached.infos()) used.insert(info.name);
  for (const ParameterInfo& info : trained.infos()) {
    const bool decoder = info.name.rfind("decoder.", 0) == 0 || info.name == "output.weight";
    if (decoder && used.count(info.name) == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "translator: the trained parameters hold '", info.name,
          "', which the decoder of this spec does not use; were they trained with this spec? "
          "(If so, models/translator.cc no longer follows the layer code.)"));
    }
  }
  return absl::OkStatus();
}

// Sinusoidal position encodings (the formula of ops::AddSinusoidalPositions)
// of positions [0, positions).
std::vector<double> PositionTable(int64_t positions, int64_t d) {
  std::vector<double> table(static_cast<size_t>(positions * d));
  std::vector<double> inv_freq(static_cast<size_t>((d + 1) / 2));
  for (int64_t i = 0; 2 * i < d; ++i) {
    inv_freq[i] = std::pow(10000.0, -static_cast<double>(2 * i) / static_cast<double>(d));
  }
  for (int64_t t = 0; t < positions; ++t) {
    for (int64_t j = 0; j < d; ++j) {
      const double angle = static_cast<double>(t) * inv_freq[j / 2];
      table[t * d + j] = (j % 2 == 0) ? std::sin(angle) : std::cos(angle);
    }
  }
  return table;
}

// x[r, t, :] += table[first[r] + t, :] for x [R, T, d].
template <typename T>
void AddPositionsTyped(const std::vector<double>& table, const std::vector<int>& first, T* x,
                       int64_t rows, int64_t len, int64_t d) {
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t t = 0; t < len; ++t) {
      const double* p = table.data() + (first[r] + t) * d;
      T* dst = x + (r * len + t) * d;
      for (int64_t j = 0; j < d; ++j) dst[j] = static_cast<T>(dst[j] + p[j]);
    }
  }
}

void AddPositions(const std::vector<double>& table, const std::vector<int>& first, Tensor& x) {
  if (x.dtype() == DType::kF64) {
    AddPositionsTyped(table, first, x.data<double>(), x.dim(0), x.dim(1), x.dim(2));
  } else {
    AddPositionsTyped(table, first, x.data<float>(), x.dim(0), x.dim(1), x.dim(2));
  }
}

// Row r of `to` ([R', slots, d]) = the first `used` slots of row parents[r] of `from`.
void GatherRows(const Tensor& from, absl::Span<const int> parents, int64_t used, Tensor& to) {
  const size_t slot_bytes = static_cast<size_t>(from.dim(2)) * DTypeSize(from.dtype());
  const size_t row_bytes = slot_bytes * static_cast<size_t>(from.dim(1));
  const char* src = static_cast<const char*>(from.raw_data());
  char* dst = static_cast<char*>(to.raw_data());
  for (size_t r = 0; r < parents.size(); ++r) {
    std::memcpy(dst + r * row_bytes, src + parents[r] * row_bytes, used * slot_bytes);
  }
}

Tensor IntTensor(const std::vector<int32_t>& values) {
  return Tensor::FromInts(values, {static_cast<int64_t>(values.size())});
}

// An attention block's parameters, registered under AttentionBlock's names,
// and its forward split around the attention itself so the keys and values
// can come from a cache.
class CachedAttention {
 public:
  CachedAttention(ParameterStore& store, const std::string& prefix, ResidualNorm norm, int64_t d,
                  int heads, double eps)
      : store_(store), heads_(heads), eps_(eps) {
    // AttentionBlock's registration order.
    const InitRule unused;  // values are copied in
    auto add = [&](const std::string& name, Shape shape) {
      return store.Add(prefix + "." + name, std::move(shape), unused);
    };
    wq_ = add("q.weight", {d, d});
    bq_ = add("q.bias", {d});
    wk_ = add("k.weight", {d, d});
    bk_ = add("k.bias", {d});
    wv_ = add("v.weight", {d, d});
    bv_ = add("v.bias", {d});
    if (norm == NORMFORMER) head_scale_ = add("head_scale", {heads});
    if (norm == SUBLN) {
      sub_gamma_ = add("sub_ln.gamma", {d});
      sub_beta_ = add("sub_ln.beta", {d});
    }
    wo_ = add("o.weight", {d, d});
    bo_ = add("o.bias", {d});
    if (norm == NORMFORMER) {
      post_gamma_ = add("post_attn_ln.gamma", {d});
      post_beta_ = add("post_attn_ln.beta", {d});
    }
  }

  absl::StatusOr<Tensor> Query(const Tensor& h) const { return Project(h, wq_, bq_); }
  absl::StatusOr<Tensor> Key(const Tensor& h) const { return Project(h, wk_, bk_); }
  absl::StatusOr<Tensor> Value(const Tensor& h) const { return Project(h, wv_, bv_); }

  // Attention of q over k and v, then the block's output side.
  absl::StatusOr<Tensor> Attend(const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                                const Tensor& key_lengths) const {
    ops::AttentionOptions options;
    options.heads = heads_;
    options.causal = causal;
    options.key_lengths = key_lengths;
    ops::AttentionSaved attention;
    PT_ASSIGN_OR_RETURN(Tensor o_in, ops::AttentionForward(q, k, v, options, &attention));
    ops::LayerNormSaved unused;
    if (head_scale_ >= 0) {
      PT_ASSIGN_OR_RETURN(o_in, ops::HeadScaleForward(o_in, store_.param(head_scale_)));
    }
    if (sub_gamma_ >= 0) {
      PT_ASSIGN_OR_RETURN(o_in, ops::LayerNormForward(o_in, store_.param(sub_gamma_),
                                                      store_.param(sub_beta_), eps_, &unused));
    }
    const Tensor bo = store_.param(bo_);
    PT_ASSIGN_OR_RETURN(Tensor out, ops::LinearForward(o_in, store_.param(wo_), &bo));
    if (post_gamma_ < 0) return out;
    return ops::LayerNormForward(out, store_.param(post_gamma_), store_.param(post_beta_), eps_,
                                 &unused);
  }

 private:
  absl::StatusOr<Tensor> Project(const Tensor& h, ParamId w, ParamId b) const {
    const Tensor bias = store_.param(b);
    return ops::LinearForward(h, store_.param(w), &bias);
  }

  const ParameterStore& store_;
  int heads_;
  double eps_;
  ParamId wq_, bq_, wk_, bk_, wv_, bv_, wo_, bo_;
  ParamId head_scale_ = -1, sub_gamma_ = -1, sub_beta_ = -1, post_gamma_ = -1, post_beta_ = -1;
};

// What one decoder step of a layer reads besides its input.
struct LayerStep {
  // Prefill: the input holds positions [0, T) of every row; self-attention
  // is causal over the input itself, whose keys and values fill cache slots
  // [0, T). Otherwise the input is one position per row, at cache slot
  // slots[r]; it attends to the slots [0, slots[r]].
  bool prefill = false;
  const std::vector<int>* slots = nullptr;
  Tensor key_lengths;  // i32 [R]: slots + 1
  // Cross-attention: rows come in groups of `beam`, one per sentence; the
  // sentence's encoder keys/values are [groups, S, d] with `memory_lengths`.
  int beam = 1;
  Tensor memory_lengths;
};

// The keys and values one layer keeps.
struct LayerCache {
  Tensor keys, values;      // [max rows, slots, d]; the first rows are the live ones
  Tensor cross_k, cross_v;  // [groups, S, d]
};

// One decoder layer for incremental decoding: TransformerLayer's forward
// (self-attention, cross-attention, FFN, each joined by a ResidualJoin) with
// cached keys and values.
class CachedDecoderLayer {
 public:
  CachedDecoderLayer(ParameterStore& store, const std::string& prefix, const JoinConfig& join,
                     const FfnConfig& ffn, int heads, bool cross, int index)
      : index_(index),
        self_join_(store, prefix + ".self_attn", join),
        self_attn_(store, prefix + ".self_attn", join.norm, join.d_model, heads, join.eps),
        cross_join_(cross ? std::make_unique<ResidualJoin>(store, prefix + ".cross_attn", join)
                          : nullptr),
        cross_attn_(cross ? std::make_unique<CachedAttention>(store, prefix + ".cross_attn",
                                                              join.norm, join.d_model, heads,
                                                              join.eps)
                          : nullptr),
        ffn_join_(store, prefix + ".ffn", join),
        ffn_(store, prefix + ".ffn", ffn) {}

  // The encoder output's keys and values for this layer's cross-attention.
  absl::Status CacheMemory(const Tensor& memory, LayerCache* cache) const {
    PT_ASSIGN_OR_RETURN(cache->cross_k, cross_attn_->Key(memory));
    PT_ASSIGN_OR_RETURN(cache->cross_v, cross_attn_->Value(memory));
    return absl::OkStatus();
  }

  // x: [R, T, d]; `keys`/`values`: this layer's live cache rows [R, slots, d].
  absl::StatusOr<Tensor> Forward(const StepContext& ctx, const Tensor& x, const LayerStep& step,
                                 Tensor& keys, Tensor& values, const LayerCache& cache) const {
    const int64_t rows = x.dim(0), len = x.dim(1), d = x.dim(2);
    JoinSaved join;
    PT_ASSIGN_OR_RETURN(Tensor h, self_join_.Enter(ctx, x, &join));
    PT_ASSIGN_OR_RETURN(Tensor q, self_attn_.Query(h));
    PT_ASSIGN_OR_RETURN(Tensor k, self_attn_.Key(h));
    PT_ASSIGN_OR_RETURN(Tensor v, self_attn_.Value(h));
    const size_t elem = DTypeSize(x.dtype());
    const size_t slot_bytes = static_cast<size_t>(d) * elem;
    const int64_t slots = keys.dim(1);
    auto write = [&](const Tensor& from, Tensor& to) {
      const char* src = static_cast<const char*>(from.raw_data());
      char* dst = static_cast<char*>(to.raw_data());
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t slot = step.prefill ? 0 : (*step.slots)[r];
        std::memcpy(dst + (r * slots + slot) * slot_bytes, src + r * len * slot_bytes,
                    len * slot_bytes);
      }
    };
    write(k, keys);
    write(v, values);
    Tensor f;
    if (step.prefill) {
      PT_ASSIGN_OR_RETURN(f, self_attn_.Attend(q, k, v, /*causal=*/true, Tensor()));
    } else {
      PT_ASSIGN_OR_RETURN(f, self_attn_.Attend(q, keys, values, false, step.key_lengths));
    }
    PT_ASSIGN_OR_RETURN(Tensor y, self_join_.Exit(ctx, index_, kSiteSelfAttnOut, f, &join));
    if (cross_attn_) {
      if (step.prefill) {
        return absl::InternalError("translator: an encoder-decoder has no decoder prefill");
      }
      PT_ASSIGN_OR_RETURN(h, cross_join_->Enter(ctx, y, &join));
      PT_ASSIGN_OR_RETURN(q, cross_attn_->Query(h));
      // The beams of a sentence are queries of one sequence over its memory.
      const int64_t groups = rows / step.beam;
      PT_ASSIGN_OR_RETURN(f, cross_attn_->Attend(q.Reshape({groups, step.beam, d}), cache.cross_k,
                                                 cache.cross_v, false, step.memory_lengths));
      PT_ASSIGN_OR_RETURN(
          y, cross_join_->Exit(ctx, index_, kSiteCrossAttnOut, f.Reshape({rows, 1, d}), &join));
    }
    PT_ASSIGN_OR_RETURN(h, ffn_join_.Enter(ctx, y, &join));
    FfnSaved ffn_saved;
    PT_ASSIGN_OR_RETURN(f, ffn_.Forward(ctx, index_, h, &ffn_saved));
    return ffn_join_.Exit(ctx, index_, kSiteFfnOut, f, &join);
  }

 private:
  int index_;
  ResidualJoin self_join_;
  CachedAttention self_attn_;
  std::unique_ptr<ResidualJoin> cross_join_;
  std::unique_ptr<CachedAttention> cross_attn_;
  ResidualJoin ffn_join_;
  FfnBlock ffn_;
};

}  // namespace

// The decoder stack (embedding, layers, final LN, output projection) with
// its own copy of the parameters, for one position at a time.
class CachedDecoder {
 public:
  static absl::StatusOr<std::unique_ptr<CachedDecoder>> Create(const ModelSpec& spec, DType dtype) {
    std::unique_ptr<CachedDecoder> decoder(new CachedDecoder(spec, dtype));
    PT_RETURN_IF_ERROR(decoder->Build());
    decoder->store_.Finalize();
    return decoder;
  }

  ParameterStore& store() { return store_; }
  const std::vector<std::unique_ptr<CachedDecoderLayer>>& layers() const { return layers_; }
  int64_t d_model() const { return spec_.d_model(); }
  DType dtype() const { return store_.dtype(); }

  // Scaled embedding of ids [R, T] plus the positions first[r] + t.
  absl::StatusOr<Tensor> Embed(const Tensor& ids, const std::vector<int>& first,
                               const std::vector<double>& positions) const {
    PT_ASSIGN_OR_RETURN(Tensor x,
                        ops::EmbeddingForward(ids, store_.param(embedding_), embed_scale_));
    AddPositions(positions, first, x);
    return x;
  }

  // Logits [R, V] of the top-layer output x [R, 1, d].
  absl::StatusOr<Tensor> Logits(const Tensor& x) const {
    Tensor rows = x.Reshape({x.dim(0), x.dim(2)});
    if (final_gamma_ >= 0) {
      ops::LayerNormSaved unused;
      PT_ASSIGN_OR_RETURN(rows, ops::LayerNormForward(rows, store_.param(final_gamma_),
                                                      store_.param(final_beta_), eps_, &unused));
    }
    return ops::LinearForward(rows, store_.param(output_), nullptr);
  }

 private:
  CachedDecoder(const ModelSpec& spec, DType dtype) : spec_(spec), store_(dtype) {}

  // ModelStage::Build's choices for the decoder layers, in its order.
  absl::Status Build() {
    const int64_t d = spec_.d_model();
    const int n_enc = spec_.encoder_layers();
    const int n_dec = spec_.decoder_layers();
    const bool tied = !spec_.has_tied_embeddings() || spec_.tied_embeddings();
    embed_scale_ = std::sqrt(static_cast<double>(d));
    eps_ = spec_.layer_norm_eps() > 0 ? spec_.layer_norm_eps() : 1e-5;
    const InitRule unused;
    embedding_ = store_.Add("embed.weight", {spec_.vocab_size(), d}, unused);
    for (int i = 0; i < n_dec; ++i) {
      PT_ASSIGN_OR_RETURN(ResidualNorm norm, NormForLayer(spec_, DECODER, i));
      const StackConstants c = ResolveNormConstants(spec_, norm).decoder;
      const JoinConfig join{.d_model = d,
                            .norm = norm,
                            .alpha = c.alpha,
                            .eps = eps_,
                            .dropout = 0.0,
                            .branch = spec_.branch_norm()};
      const FfnConfig ffn{.d_model = d,
                          .ffn_dim = spec_.ffn_dim(),
                          .activation = spec_.activation() == RELU ? ops::ActivationKind::kRelu
                                                                   : ops::ActivationKind::kGelu,
                          .norm = norm,
                          .gain = c.beta,
                          .dropout = 0.0,
                          .eps = eps_};
      // Global layer g = n_enc + i has index 1 + g (ModelStage's numbering).
      layers_.push_back(std::make_unique<CachedDecoderLayer>(
          store_, absl::StrCat("decoder.", i), join, ffn, spec_.heads(), n_enc > 0, 1 + n_enc + i));
      if (i == n_dec - 1 && IsPreNorm(norm)) {
        final_gamma_ = store_.Add("decoder.final_ln.gamma", {d}, unused);
        final_beta_ = store_.Add("decoder.final_ln.beta", {d}, unused);
      }
    }
    output_ = tied ? embedding_ : store_.Add("output.weight", {spec_.vocab_size(), d}, unused);
    return absl::OkStatus();
  }

  ModelSpec spec_;
  ParameterStore store_;
  std::vector<std::unique_ptr<CachedDecoderLayer>> layers_;
  ParamId embedding_ = -1, output_ = -1, final_gamma_ = -1, final_beta_ = -1;
  double embed_scale_ = 1.0;
  double eps_ = 1e-5;
};

namespace {

// The incremental search state of one batch of sentences.
class CachedScorer : public NextTokenScorer {
 public:
  // `slots`: the decoder positions the longest hypothesis needs.
  CachedScorer(const CachedDecoder& decoder, const StepContext& ctx, int beam, int sentences,
               int64_t slots)
      : decoder_(decoder),
        ctx_(ctx),
        beam_(beam),
        rows_(sentences),
        groups_(sentences),
        slots_(slots) {
    const int64_t d = decoder.d_model();
    const Shape shape{static_cast<int64_t>(sentences) * beam, slots, d};
    caches_.resize(decoder.layers().size());
    for (LayerCache& cache : caches_) {
      cache.keys = Tensor::Empty(shape, decoder.dtype());
      cache.values = Tensor::Empty(shape, decoder.dtype());
    }
    // Rows are reordered through one spare buffer, which then changes places
    // with the layer's.
    spare_ = Tensor::Empty(shape, decoder.dtype());
    positions_ = PositionTable(slots, d);
    next_slot_.assign(sentences, 0);
  }

  // Encoder-decoder: the sentences' encoder output [B, S, d] and lengths.
  absl::Status SetMemory(const Tensor& memory, const std::vector<int32_t>& lengths) {
    memory_lengths_ = lengths;
    for (size_t l = 0; l < caches_.size(); ++l) {
      PT_RETURN_IF_ERROR(decoder_.layers()[l]->CacheMemory(memory, &caches_[l]));
    }
    return absl::OkStatus();
  }

  // Decoder-only: runs the sources through the decoder, filling the caches;
  // each sentence's <s> then goes right after its source.
  absl::Status Prefill(const std::vector<const std::vector<int32_t>*>& sources) {
    int64_t longest = 0;
    for (const auto* s : sources) longest = std::max<int64_t>(longest, s->size());
    const int64_t b = static_cast<int64_t>(sources.size());
    Tensor ids = Tensor::Zeros({b, longest}, DType::kI32);
    for (int64_t i = 0; i < b; ++i) {
      std::copy(sources[i]->begin(), sources[i]->end(), ids.data<int32_t>() + i * longest);
      next_slot_[i] = static_cast<int>(sources[i]->size());
    }
    PT_ASSIGN_OR_RETURN(Tensor x, decoder_.Embed(ids, std::vector<int>(b, 0), positions_));
    LayerStep step;
    step.prefill = true;
    for (size_t l = 0; l < caches_.size(); ++l) {
      Tensor keys = LiveRows(caches_[l].keys, b);
      Tensor values = LiveRows(caches_[l].values, b);
      PT_ASSIGN_OR_RETURN(x,
                          decoder_.layers()[l]->Forward(ctx_, x, step, keys, values, caches_[l]));
    }
    used_slots_ = longest;
    return absl::OkStatus();
  }

  absl::StatusOr<Tensor> Step(absl::Span<const int> parents,
                              absl::Span<const int32_t> tokens) override {
    const int64_t rows = static_cast<int64_t>(parents.size());
    const int64_t groups = rows / beam_;
    // Sentences that finished leave: keep the cross-attention memory of the others.
    std::vector<int> old_groups(groups);
    bool same_groups = groups == groups_;
    for (int64_t g = 0; g < groups; ++g) {
      old_groups[g] = parents[g * beam_] / rows_per_group_;
      same_groups = same_groups && old_groups[g] == g;
    }
    if (!same_groups) {
      std::vector<int32_t> lengths;
      for (int64_t g = 0; g < groups; ++g) {
        if (!memory_lengths_.empty()) lengths.push_back(memory_lengths_[old_groups[g]]);
      }
      memory_lengths_ = std::move(lengths);
      for (LayerCache& cache : caches_) {
        if (!cache.cross_k.defined()) continue;
        const Shape shape{groups, cache.cross_k.dim(1), cache.cross_k.dim(2)};
        Tensor k = Tensor::Empty(shape, cache.cross_k.dtype());
        Tensor v = Tensor::Empty(shape, cache.cross_v.dtype());
        GatherRows(cache.cross_k, old_groups, shape[1], k);
        GatherRows(cache.cross_v, old_groups, shape[1], v);
        cache.cross_k = k;
        cache.cross_v = v;
      }
    }
    // Each row continues its parent's keys and values.
    bool same_rows = rows == rows_;
    for (int64_t r = 0; r < rows && same_rows; ++r) same_rows = parents[r] == r;
    if (!same_rows) {
      for (LayerCache& cache : caches_) {
        for (Tensor* buffer : {&cache.keys, &cache.values}) {
          Tensor to = LiveRows(spare_, rows);
          GatherRows(LiveRows(*buffer, rows_), parents, used_slots_, to);
          std::swap(*buffer, spare_);
        }
      }
    }
    std::vector<int> slots(rows);
    std::vector<int32_t> key_lengths(rows);
    for (int64_t r = 0; r < rows; ++r) {
      slots[r] = next_slot_[parents[r]];
      if (slots[r] >= slots_) {
        return absl::InternalError(
            absl::StrCat("translator: row ", r, " needs cache slot ", slots[r], " of ", slots_));
      }
      key_lengths[r] = slots[r] + 1;
    }
    rows_ = rows;
    groups_ = groups;
    rows_per_group_ = beam_;

    Tensor ids = Tensor::FromInts(std::vector<int32_t>(tokens.begin(), tokens.end()), {rows, 1});
    PT_ASSIGN_OR_RETURN(Tensor x, decoder_.Embed(ids, slots, positions_));
    LayerStep step;
    step.slots = &slots;
    step.key_lengths = IntTensor(key_lengths);
    step.beam = beam_;
    if (!memory_lengths_.empty()) step.memory_lengths = IntTensor(memory_lengths_);
    for (size_t l = 0; l < caches_.size(); ++l) {
      Tensor keys = LiveRows(caches_[l].keys, rows);
      Tensor values = LiveRows(caches_[l].values, rows);
      PT_ASSIGN_OR_RETURN(x,
                          decoder_.layers()[l]->Forward(ctx_, x, step, keys, values, caches_[l]));
    }
    next_slot_.resize(rows);
    for (int64_t r = 0; r < rows; ++r) {
      next_slot_[r] = slots[r] + 1;
      used_slots_ = std::max<int64_t>(used_slots_, next_slot_[r]);
    }
    return decoder_.Logits(x);
  }

 private:
  // The first `rows` rows of a cache buffer.
  Tensor LiveRows(const Tensor& buffer, int64_t rows) const {
    return buffer.View(0, {rows, buffer.dim(1), buffer.dim(2)});
  }

  const CachedDecoder& decoder_;
  StepContext ctx_;
  int beam_;
  int64_t rows_;            // rows of the last step (sentences before the first)
  int64_t groups_ = 0;      // sentences still searched at the last step
  int rows_per_group_ = 1;  // 1 before the first step, then beam_
  int64_t slots_;
  int64_t used_slots_ = 0;  // cache slots written so far (the most of any row)
  std::vector<LayerCache> caches_;
  Tensor spare_;
  std::vector<double> positions_;
  std::vector<int> next_slot_;           // per row
  std::vector<int32_t> memory_lengths_;  // per group (encoder-decoder)
};

// The reference path: every step runs the model's decoder stage over each
// row's whole prefix and reads the logits of its last position.
class RecomputeScorer : public NextTokenScorer {
 public:
  RecomputeScorer(const ModelStage& decoder, const StepContext& ctx,
                  const std::vector<const std::vector<int32_t>*>& sources, const Tensor& memory)
      : decoder_(decoder), ctx_(ctx), memory_(memory) {
    const bool decoder_only = !memory.defined();
    for (const auto* s : sources) {
      prefixes_.push_back(decoder_only ? *s : std::vector<int32_t>());
      source_lengths_.push_back(static_cast<int32_t>(s->size()));
      sentence_of_row_.push_back(static_cast<int>(prefixes_.size()) - 1);
    }
  }

  absl::StatusOr<Tensor> Step(absl::Span<const int> parents,
                              absl::Span<const int32_t> tokens) override {
    const int64_t rows = static_cast<int64_t>(parents.size());
    std::vector<std::vector<int32_t>> prefixes(rows);
    std::vector<int> sentence(rows);
    int64_t longest = 0;
    for (int64_t r = 0; r < rows; ++r) {
      prefixes[r] = prefixes_[parents[r]];
      prefixes[r].push_back(tokens[r]);
      sentence[r] = sentence_of_row_[parents[r]];
      longest = std::max<int64_t>(longest, prefixes[r].size());
    }
    prefixes_ = std::move(prefixes);
    sentence_of_row_ = std::move(sentence);

    Batch batch;
    batch.tgt_in = Tensor::Zeros({rows, longest}, DType::kI32);
    batch.labels = Tensor::Zeros({rows, longest}, DType::kI32);  // all ignored
    std::vector<int32_t> lengths, source_lengths;
    for (int64_t r = 0; r < rows; ++r) {
      std::copy(prefixes_[r].begin(), prefixes_[r].end(),
                batch.tgt_in.data<int32_t>() + r * longest);
      lengths.push_back(static_cast<int32_t>(prefixes_[r].size()));
      source_lengths.push_back(source_lengths_[sentence_of_row_[r]]);
    }
    batch.tgt_lengths = IntTensor(lengths);
    StageBoundary input;
    if (memory_.defined()) {
      batch.src_lengths = IntTensor(source_lengths);
      input.memory = Tensor::Empty({rows, memory_.dim(1), memory_.dim(2)}, memory_.dtype());
      GatherRows(memory_, sentence_of_row_, memory_.dim(1), input.memory);
    }
    StageSaved saved;
    PT_RETURN_IF_ERROR(decoder_.Forward(ctx_, batch, input, &saved).status());
    const int64_t vocab = saved.logits.dim(1);
    Tensor logits = Tensor::Empty({rows, vocab}, saved.logits.dtype());
    const size_t row_bytes = static_cast<size_t>(vocab) * DTypeSize(logits.dtype());
    for (int64_t r = 0; r < rows; ++r) {
      std::memcpy(static_cast<char*>(logits.raw_data()) + r * row_bytes,
                  static_cast<const char*>(saved.logits.raw_data()) +
                      (r * longest + lengths[r] - 1) * row_bytes,
                  row_bytes);
    }
    return logits;
  }

 private:
  const ModelStage& decoder_;
  StepContext ctx_;
  Tensor memory_;                               // [sentences, S, d]; undefined for decoder-only
  std::vector<std::vector<int32_t>> prefixes_;  // decoder input so far, per row
  std::vector<int> sentence_of_row_;
  std::vector<int32_t> source_lengths_;  // per sentence
};

}  // namespace

Translator::Translator(const ModelSpec& spec, DType dtype) : spec_(spec), dtype_(dtype) {
  max_positions_ = spec.max_positions() > 0 ? spec.max_positions() : 1024;
}

Translator::~Translator() = default;

absl::StatusOr<std::unique_ptr<Translator>> Translator::Create(const ModelSpec& spec,
                                                               const ParameterStore& trained) {
  if (spec.kind() == ENCODER_ONLY) {
    return absl::UnimplementedError(
        "translator: encoder-only models label source positions and do not generate text; "
        "translate with an ENCODER_DECODER or DECODER_ONLY model");
  }
  if (spec.kind() != ENCODER_DECODER && spec.kind() != DECODER_ONLY) {
    return absl::InvalidArgumentError("translator: model.kind is not set");
  }
  if (!trained.finalized()) {
    return absl::InvalidArgumentError("translator: the trained parameter store is not allocated");
  }
  const DType dtype = trained.dtype();
  std::unique_ptr<Translator> t(new Translator(spec, dtype));
  const int n_enc = spec.encoder_layers();
  if (n_enc > 0) {
    PT_ASSIGN_OR_RETURN(t->encoder_, ModelStage::Create(spec, dtype, 0, 0, n_enc));
    // Decoding never runs the encoder backward: its forward keeps nothing
    // (a 500-layer encoder over 32 sentences would otherwise hold every
    // layer's ~15 activations, gigabytes, until its output is ready).
    t->encoder_->SetForwardOnly();
  }
  PT_ASSIGN_OR_RETURN(t->decoder_, CachedDecoder::Create(spec, dtype));
  PT_RETURN_IF_ERROR(t->SetParameters(trained));
  return t;
}

absl::Status Translator::SetParameters(const ParameterStore& trained) {
  if (trained.dtype() != dtype_) {
    return absl::InvalidArgumentError(absl::StrCat("translator: built for ", DTypeName(dtype_),
                                                   " parameters, given ",
                                                   DTypeName(trained.dtype())));
  }
  if (encoder_) PT_RETURN_IF_ERROR(CopyByName(trained, encoder_->params()));
  PT_RETURN_IF_ERROR(UsesEveryDecoderParameter(trained, decoder_->store()));
  return CopyByName(trained, decoder_->store());
}

absl::StatusOr<int> Translator::MaxTargetTokens(int source_tokens,
                                                const DecodeOptions& options) const {
  const int64_t wanted =
      static_cast<int64_t>(options.max_len_a) * source_tokens + options.max_len_b;
  // Room the positions leave: the decoder input is <s> + target (encoder-
  // decoder) or source + <s> + target (decoder-only).
  int64_t room = max_positions_ - 1;
  if (spec_.kind() == DECODER_ONLY) {
    room -= source_tokens;
  } else if (source_tokens > max_positions_) {
    room = -1;
  }
  if (room < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "translator: a source of ", source_tokens,
        " tokens does not fit model.max_positions = ", max_positions_, "; shorten it"));
  }
  return static_cast<int>(std::max<int64_t>(0, std::min(wanted, room)));
}

absl::StatusOr<std::vector<Hypothesis>> Translator::Translate(
    const std::vector<std::vector<int32_t>>& sources, const DecodeOptions& options) const {
  PT_CHECK_ARG(options.beam_size >= 1, "translator: beam_size = ", options.beam_size,
               " must be at least 1");
  PT_CHECK_ARG(options.batch_sentences >= 1,
               "translator: batch_sentences = ", options.batch_sentences, " must be at least 1");
  PT_CHECK_ARG(options.max_len_a >= 0 && options.max_len_b >= 0,
               "translator: max_len_a = ", options.max_len_a,
               " and max_len_b = ", options.max_len_b, " must not be negative");
  PT_CHECK_ARG(std::isfinite(options.length_penalty),
               "translator: length_penalty = ", options.length_penalty, " is not a number");
  for (size_t s = 0; s < sources.size(); ++s) {
    PT_CHECK_ARG(!sources[s].empty(), "translator: source ", s,
                 " is empty; it needs at least its language tag");
    for (size_t i = 0; i < sources[s].size(); ++i) {
      const int32_t id = sources[s][i];
      PT_CHECK_ARG(id >= kUnkId && id < spec_.vocab_size(), "translator: source ", s, " token ", i,
                   " is id ", id, "; sources hold content ids in [", kUnkId, ", ",
                   spec_.vocab_size(), ") without <s> or </s>");
    }
  }
  // Similar lengths together: less padding in the encoder and the caches.
  std::vector<size_t> order(sources.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return sources[a].size() < sources[b].size(); });
  std::vector<Hypothesis> out(sources.size());
  for (size_t begin = 0; begin < order.size(); begin += options.batch_sentences) {
    const size_t end = std::min(order.size(), begin + options.batch_sentences);
    std::vector<const std::vector<int32_t>*> chunk;
    for (size_t i = begin; i < end; ++i) chunk.push_back(&sources[order[i]]);
    PT_ASSIGN_OR_RETURN(std::vector<Hypothesis> best, TranslateChunk(chunk, options));
    for (size_t i = begin; i < end; ++i) out[order[i]] = std::move(best[i - begin]);
  }
  return out;
}

absl::StatusOr<std::vector<Hypothesis>> Translator::TranslateChunk(
    const std::vector<const std::vector<int32_t>*>& sources, const DecodeOptions& options) const {
  // Dropout off; BranchNorm at the step the parameters come from (or its end).
  StepContext ctx;
  ctx.training = false;
  ctx.step = options.training_step >= 0 ? options.training_step : (int64_t{1} << 40);
  const int b = static_cast<int>(sources.size());
  std::vector<int> max_content(b);
  int64_t slots = 1;
  int64_t longest = 0;
  std::vector<int32_t> source_lengths;
  for (int i = 0; i < b; ++i) {
    const int n = static_cast<int>(sources[i]->size());
    PT_ASSIGN_OR_RETURN(max_content[i], MaxTargetTokens(n, options));
    // Slots: the decoder input positions, <s> and every content token but
    // the last (after which only </s> is predicted, never fed).
    const int64_t start = spec_.kind() == DECODER_ONLY ? n : 0;
    slots = std::max<int64_t>(slots, start + max_content[i] + 1);
    longest = std::max<int64_t>(longest, n);
    source_lengths.push_back(n);
  }
  Tensor memory;
  if (encoder_) {
    Batch batch;
    batch.src_ids = Tensor::Zeros({b, longest}, DType::kI32);
    for (int i = 0; i < b; ++i) {
      std::copy(sources[i]->begin(), sources[i]->end(),
                batch.src_ids.data<int32_t>() + i * longest);
    }
    batch.src_lengths = IntTensor(source_lengths);
    StageSaved saved;
    PT_ASSIGN_OR_RETURN(StageBoundary out, encoder_->Forward(ctx, batch, StageBoundary(), &saved));
    memory = out.memory;
  }
  if (!options.incremental) {
    // The model's own decoder stage, with the same parameters.
    const int n_enc = spec_.encoder_layers();
    PT_ASSIGN_OR_RETURN(
        std::unique_ptr<ModelStage> full_decoder,
        ModelStage::Create(spec_, dtype_, 0, n_enc, n_enc + spec_.decoder_layers()));
    PT_RETURN_IF_ERROR(CopyByName(decoder_->store(), full_decoder->params()));
    RecomputeScorer scorer(*full_decoder, ctx, sources, memory);
    return BeamSearch(scorer, max_content, options.beam_size, options.length_penalty);
  }
  CachedScorer scorer(*decoder_, ctx, options.beam_size, b, std::max(slots, longest));
  if (memory.defined()) {
    PT_RETURN_IF_ERROR(scorer.SetMemory(memory, source_lengths));
  } else {
    PT_RETURN_IF_ERROR(scorer.Prefill(sources));
  }
  return BeamSearch(scorer, max_content, options.beam_size, options.length_penalty);
}

}  // namespace pipetrain
