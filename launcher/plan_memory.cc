#include "launcher/plan_memory.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "core/config/spec_loader.h"
#include "core/status_macros.h"

namespace pipetrain {
namespace {

bool IsPreNormKind(ResidualNorm norm) {
  return norm == PRE_LN || norm == NORMFORMER || norm == SUBLN;
}
// NormFormer and SubLN carry extra LNs inside the attention and FFN blocks.
bool HasInnerLn(ResidualNorm norm) { return norm == NORMFORMER || norm == SUBLN; }
bool TiedEmbeddings(const ModelSpec& m) { return !m.has_tied_embeddings() || m.tied_embeddings(); }

absl::Status CheckRange(const ModelSpec& m, int first, int last) {
  const int total = m.encoder_layers() + m.decoder_layers();
  PT_CHECK_ARG(first >= 0 && first < last && last <= total, "stage layers [", first, ", ", last,
               ") are empty or outside the model's ", total, " layers");
  return absl::OkStatus();
}

struct LayerInfo {
  ResidualNorm norm = POST_LN;
  bool decoder = false;
  bool cross = false;
};

absl::StatusOr<LayerInfo> InfoOf(const ModelSpec& m, int g) {
  LayerInfo info;
  const int n_enc = m.encoder_layers();
  info.decoder = g >= n_enc;
  info.cross = info.decoder && n_enc > 0;
  PT_ASSIGN_OR_RETURN(
      info.norm, NormForLayer(m, info.decoder ? DECODER : ENCODER, info.decoder ? g - n_enc : g));
  return info;
}

// Parameters of one layer: ResidualJoin (one LN of 2d per sub-layer),
// AttentionBlock (4 d×d weights + 4 biases, NormFormer's head scale and
// post-attention LN, SubLN's LN), FfnBlock (fc1 f×d + f, fc2 d×f + d, the inner
// LN of NormFormer/SubLN).
int64_t LayerParameters(const ModelSpec& m, const LayerInfo& l) {
  const int64_t d = m.d_model(), f = m.ffn_dim(), h = m.heads();
  int64_t attention = 4 * d * d + 4 * d;
  if (l.norm == NORMFORMER) attention += h + 2 * d;
  if (l.norm == SUBLN) attention += 2 * d;
  int64_t ffn = 2 * d * f + f + d;
  if (HasInnerLn(l.norm)) ffn += 2 * f;
  const int sublayers = l.cross ? 3 : 2;
  return sublayers * 2 * d + (l.cross ? 2 : 1) * attention + ffn;
}

// Elements of one layer, per sequence, split by storage type.
struct Elements {
  int64_t act = 0;    // activation dtype
  int64_t stats = 0;  // fp32 (LN / PowerNorm mean and rstd)

  Elements& operator+=(const Elements& o) {
    act += o.act;
    stats += o.stats;
    return *this;
  }
  int64_t Bytes(const ActivationShape& s) const {
    return s.sequences * (act * s.activation_bytes + stats * kFp32Bytes);
  }
};

// What one layer's LayerSaved keeps after its forward, per sequence of t
// tokens (s: encoder-output tokens for cross-attention). The tensors are
// counted once where several fields share storage (a post-norm join's x is the
// attention block's h; the context is the output projection's input unless an
// inner LN or head scale sits between; dropout masks are never stored).
Elements LayerSavedElements(const ModelSpec& m, const LayerInfo& l, int64_t t, int64_t s) {
  const int64_t d = m.d_model(), f = m.ffn_dim(), h = m.heads();
  Elements e;
  // Each join: its residual input x and either the post-LN input α·x + f
  // (post-norm kinds) or the pre-LN output h (pre-norm kinds), plus the LN's
  // two statistics per row.
  const int joins = l.cross ? 3 : 2;
  e.act += joins * 2 * t * d;
  e.stats += joins * 2 * t;
  if (l.norm == BRANCHNORM && m.branch_norm().shape() == NORMALIZED_POWER) {
    // Before max_norm_step the branch and its PowerNorm statistics are kept.
    e.act += joins * t * d;
    e.stats += joins * 2 * t;
  }
  auto attention_extras = [&] {
    if (l.norm == NORMFORMER) {  // head-scaled context and the post-attention LN input
      e.act += 2 * t * d;
      e.stats += 2 * t;
    } else if (l.norm == SUBLN) {  // the LN'd context
      e.act += t * d;
      e.stats += 2 * t;
    }
  };
  // Self-attention: q, k, v, context, and the probabilities [H, t, t].
  e.act += 4 * t * d + h * t * t;
  attention_extras();
  if (l.cross) {
    // Cross-attention: q and context on t, k and v on the s memory rows, probabilities [H, t, s].
    e.act += 2 * t * d + 2 * s * d + h * t * s;
    attention_extras();
  }
  // FFN: fc1 output and fc2 input (the activation, or its dropout/LN output);
  // with an inner LN also the activation itself and the LN statistics.
  e.act += 2 * t * f;
  if (HasInnerLn(l.norm)) {
    e.act += t * f;
    e.stats += 2 * t;
  }
  return e;
}

// What one layer's BackwardInput records for BackwardWeight: the output
// gradient of every GEMM (dq, dk, dv, d_o_out, d_fc2_out, d_pre_act) and of
// every LN with a gain (each join's, and the inner LNs').
Elements LayerRecordedElements(const ModelSpec& m, const LayerInfo& l, int64_t t, int64_t s) {
  const int64_t d = m.d_model(), f = m.ffn_dim();
  Elements e;
  const int joins = l.cross ? 3 : 2;
  e.act += joins * t * d;
  auto attention_extras = [&] {
    if (l.norm == NORMFORMER) e.act += 2 * t * d;  // d_post_ln_out, d_scaled
    if (l.norm == SUBLN) e.act += t * d;           // d_sub_ln_out
  };
  e.act += 4 * t * d;
  attention_extras();
  if (l.cross) {
    e.act += 2 * t * d + 2 * s * d;
    attention_extras();
  }
  e.act += t * d + t * f;
  if (HasInnerLn(l.norm)) e.act += t * f;  // d_inner_ln_out
  return e;
}

}  // namespace

absl::StatusOr<StageParameterCount> CountStageParameters(const ModelSpec& m, int first, int last) {
  PT_RETURN_IF_ERROR(CheckRange(m, first, last));
  const int n_enc = m.encoder_layers(), total = n_enc + m.decoder_layers();
  const int64_t d = m.d_model(), vocab = m.vocab_size();
  const bool src = n_enc > 0 && first == 0;
  const bool tgt = m.decoder_layers() > 0 && first <= n_enc && n_enc < last;
  const bool head = last == total;
  const bool tied = TiedEmbeddings(m);
  StageParameterCount count;
  for (int g = first; g < last; ++g) {
    PT_ASSIGN_OR_RETURN(const LayerInfo l, InfoOf(m, g));
    count.total += LayerParameters(m, l);
    // A pre-norm stack's final LN sits with its last layer.
    if ((g == n_enc - 1 || g == total - 1) && IsPreNormKind(l.norm)) count.total += 2 * d;
  }
  count.embedding_uses = (src ? 1 : 0) + (tgt ? 1 : 0) + (head && tied ? 1 : 0);
  if (count.embedding_uses > 0) count.embedding = vocab * d;
  count.total += count.embedding;
  if (head && !tied) count.total += vocab * d;  // the untied output projection
  return count;
}

absl::StatusOr<StageActivationBytes> CountStageActivations(const ModelSpec& m, int first, int last,
                                                           const std::vector<bool>& recompute,
                                                           const ActivationShape& shape) {
  PT_RETURN_IF_ERROR(CheckRange(m, first, last));
  PT_CHECK_ARG(recompute.empty() || static_cast<int>(recompute.size()) == last - first,
               recompute.size(), " recompute flags for the ", last - first, " layers [", first,
               ", ", last, ")");
  PT_CHECK_ARG(shape.sequences >= 1 && shape.source_length >= 0 && shape.target_length >= 0 &&
                   shape.activation_bytes >= 1,
               "activation shape: sequences = ", shape.sequences, ", lengths ", shape.source_length,
               "/", shape.target_length, ", bytes ", shape.activation_bytes,
               "; expected >= 1 sequence and byte");
  const int n_enc = m.encoder_layers(), n_dec = m.decoder_layers(), total = n_enc + n_dec;
  const int64_t d = m.d_model(), vocab = m.vocab_size();
  const int64_t src_len = shape.source_length, tgt_len = shape.target_length;
  Elements saved, backward;
  for (int g = first; g < last; ++g) {
    PT_ASSIGN_OR_RETURN(const LayerInfo l, InfoOf(m, g));
    const int64_t t = l.decoder ? tgt_len : src_len;
    const Elements full = LayerSavedElements(m, l, t, src_len);
    if (!recompute.empty() && recompute[g - first]) {
      // The kept input; in B the rest of the layer is rebuilt around it and
      // kept until W.
      saved.act += t * d;
      backward += full;
      backward.act -= t * d;
    } else {
      saved += full;
    }
    backward += LayerRecordedElements(m, l, t, src_len);
    if ((g == n_enc - 1 || g == total - 1) && IsPreNormKind(l.norm)) {
      // The final LN's input and statistics, and its recorded output gradient.
      saved.act += t * d;
      saved.stats += 2 * t;
      backward.act += t * d;
    }
  }
  // The encoder output, read by every decoder layer (one tensor per stage).
  if (n_enc > 0 && last > n_enc) saved.act += src_len * d;
  // Embedding outputs' gradients, kept from B for the embedding's W.
  if (n_enc > 0 && first == 0) backward.act += src_len * d;
  if (n_dec > 0 && first <= n_enc && n_enc < last) backward.act += tgt_len * d;
  StageActivationBytes bytes;
  if (last == total) {
    // The head: its input rows (the top layer's or the final LN's output,
    // which no layer keeps), logits, log-sum-exp and labels in fp32 / i32,
    // and d_logits from B to W.
    const int64_t rows = n_dec > 0 ? tgt_len : src_len;
    saved.act += rows * d;
    saved.stats += rows * vocab + 2 * rows;
    backward.stats += rows * vocab;
  }
  bytes.saved = saved.Bytes(shape);
  bytes.backward = backward.Bytes(shape);
  return bytes;
}

int64_t PeakActivationBytes(const std::vector<Action>& actions,
                            const std::vector<StageActivationBytes>& per_chunk) {
  int64_t live = 0, peak = 0;
  for (const Action& a : actions) {
    if (a.chunk < 0 || a.chunk >= static_cast<int>(per_chunk.size())) continue;
    const StageActivationBytes& c = per_chunk[a.chunk];
    if (a.type == ActionType::kForward) {
      live += c.saved;
    } else if (a.type == ActionType::kBackward) {
      live += c.backward;
    } else if (a.type == ActionType::kWeight) {
      live -= c.saved + c.backward;
    }
    peak = std::max(peak, live);
  }
  return peak;
}

}  // namespace pipetrain
