#include "core/data/collate.h"

#include <algorithm>
#include <tuple>

#include "absl/strings/str_cat.h"

namespace pipetrain {

int64_t PairTokens(ModelKind kind, const SentencePair& pair) {
  const int64_t s = static_cast<int64_t>(pair.src.size());
  const int64_t t = static_cast<int64_t>(pair.tgt.size());
  switch (kind) {
    case ENCODER_ONLY:
      return s + t;  // source positions plus their labels
    case DECODER_ONLY:
      return s + t + 2;  // source <s> target </s>
    default:
      return s + 2 * (t + 1);  // source; <s> target (input); target </s> (labels)
  }
}

absl::StatusOr<Batch> Collate(ModelKind kind, absl::Span<const SentencePair> pairs) {
  if (pairs.empty()) return absl::InvalidArgumentError("cannot collate an empty batch");
  const int64_t b = static_cast<int64_t>(pairs.size());
  int64_t max_src = 0, max_tgt = 0;
  for (const SentencePair& p : pairs) {
    max_src = std::max<int64_t>(max_src, p.src.size());
    max_tgt = std::max<int64_t>(max_tgt, p.tgt.size());
  }
  Batch batch;
  auto fill_lengths = [&](Tensor& lengths, auto length_of) {
    lengths = Tensor::Empty({b}, DType::kI32);
    for (int64_t i = 0; i < b; ++i) lengths.data<int32_t>()[i] = length_of(pairs[i]);
  };
  if (kind == ENCODER_ONLY) {
    batch.src_ids = Tensor::Zeros({b, max_src}, DType::kI32);
    batch.labels = Tensor::Zeros({b, max_src}, DType::kI32);
    for (int64_t i = 0; i < b; ++i) {
      const SentencePair& p = pairs[i];
      if (p.src.size() != p.tgt.size()) {
        return absl::InvalidArgumentError(
            absl::StrCat("encoder-only models label every source position: pair ", i, " has ",
                         p.src.size(), " source and ", p.tgt.size(), " target tokens"));
      }
      std::copy(p.src.begin(), p.src.end(), batch.src_ids.data<int32_t>() + i * max_src);
      std::copy(p.tgt.begin(), p.tgt.end(), batch.labels.data<int32_t>() + i * max_src);
    }
    fill_lengths(batch.src_lengths, [](const SentencePair& p) { return p.src.size(); });
    return batch;
  }
  if (kind == DECODER_ONLY) {
    int64_t t = 0;
    for (const SentencePair& p : pairs) {
      t = std::max<int64_t>(t, static_cast<int64_t>(p.src.size() + p.tgt.size()) + 1);
    }
    batch.tgt_in = Tensor::Zeros({b, t}, DType::kI32);
    batch.labels = Tensor::Zeros({b, t}, DType::kI32);
    for (int64_t i = 0; i < b; ++i) {
      const SentencePair& p = pairs[i];
      int32_t* in = batch.tgt_in.data<int32_t>() + i * t;
      int32_t* out = batch.labels.data<int32_t>() + i * t;
      const int64_t s = p.src.size();
      std::copy(p.src.begin(), p.src.end(), in);
      in[s] = kBosId;
      std::copy(p.tgt.begin(), p.tgt.end(), in + s + 1);
      // Only the target is predicted: from <s> onwards, the next token.
      std::copy(p.tgt.begin(), p.tgt.end(), out + s);
      out[s + p.tgt.size()] = kEosId;
    }
    fill_lengths(batch.tgt_lengths,
                 [](const SentencePair& p) { return p.src.size() + p.tgt.size() + 1; });
    return batch;
  }
  const int64_t t = max_tgt + 1;
  batch.src_ids = Tensor::Zeros({b, max_src}, DType::kI32);
  batch.tgt_in = Tensor::Zeros({b, t}, DType::kI32);
  batch.labels = Tensor::Zeros({b, t}, DType::kI32);
  for (int64_t i = 0; i < b; ++i) {
    const SentencePair& p = pairs[i];
    std::copy(p.src.begin(), p.src.end(), batch.src_ids.data<int32_t>() + i * max_src);
    int32_t* in = batch.tgt_in.data<int32_t>() + i * t;
    int32_t* out = batch.labels.data<int32_t>() + i * t;
    in[0] = kBosId;
    std::copy(p.tgt.begin(), p.tgt.end(), in + 1);
    std::copy(p.tgt.begin(), p.tgt.end(), out);
    out[p.tgt.size()] = kEosId;
  }
  fill_lengths(batch.src_lengths, [](const SentencePair& p) { return p.src.size(); });
  fill_lengths(batch.tgt_lengths, [](const SentencePair& p) { return p.tgt.size() + 1; });
  return batch;
}

absl::StatusOr<std::vector<Batch>> CollateMicrobatches(ModelKind kind,
                                                       absl::Span<const SentencePair> pairs,
                                                       int microbatches) {
  const int64_t n = static_cast<int64_t>(pairs.size());
  if (microbatches < 1 || n < microbatches) {
    return absl::InvalidArgumentError(
        absl::StrCat("a batch of ", n, " sentences cannot be split into ", microbatches,
                     " micro-batches; raise train.tokens_per_batch or lower train.microbatches"));
  }
  std::vector<Batch> out;
  int64_t begin = 0;
  for (int m = 0; m < microbatches; ++m) {
    const int64_t size = n / microbatches + (m < n % microbatches ? 1 : 0);
    auto batch = Collate(kind, pairs.subspan(begin, size));
    if (!batch.ok()) return batch.status();
    out.push_back(*std::move(batch));
    begin += size;
  }
  return out;
}

absl::Status CheckBatchIds(const Batch& batch, int64_t vocab) {
  struct Named {
    const char* name;
    const Tensor* ids;
  };
  // Lengths count the valid positions of their sequences: [1, T].
  for (const auto& [lengths, ids, name] :
       {std::tuple{&batch.src_lengths, &batch.src_ids, "source"},
        std::tuple{&batch.tgt_lengths, &batch.tgt_in, "target"}}) {
    if (!lengths->defined()) continue;
    const int64_t t = ids->defined() ? ids->dim(1) : 0;
    const int32_t* p = lengths->data<int32_t>();
    for (int64_t i = 0; i < lengths->numel(); ++i) {
      if (p[i] < 1 || p[i] > t) {
        return absl::InvalidArgumentError(absl::StrCat(
            "batch ", name, " length ", p[i], " of sentence ", i, " is outside [1, ", t, "]"));
      }
    }
  }
  for (const Named& n : {Named{"source ids", &batch.src_ids}, Named{"target input", &batch.tgt_in},
                         Named{"labels", &batch.labels}}) {
    if (!n.ids->defined()) continue;
    const int32_t* p = n.ids->data<int32_t>();
    for (int64_t i = 0; i < n.ids->numel(); ++i) {
      if (p[i] < 0 || p[i] >= vocab) {
        return absl::InvalidArgumentError(absl::StrCat(
            "batch ", n.name, " ", ShapeString(n.ids->shape()), ": id ", p[i], " at element ", i,
            " is outside the model's vocabulary [0, ", vocab,
            "); the data's vocabulary is larger than model.vocab_size: raise vocab_size or "
            "rebuild the shards with this model's vocabulary"));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace pipetrain
