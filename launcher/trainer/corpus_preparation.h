// Makes a spec's train.corpus ready to train on: builds the corpus from the
// gettext tree when its directory is empty, trains the SentencePiece
// vocabulary when there is none, and writes the token shards when they are
// missing — each step what `pipetrain data build|vocab|shard` does, skipped
// when its output is already there. So the first run of configs/demo.pbtxt
// prepares its own data and later runs start at once.
#ifndef PIPETRAIN_LAUNCHER_TRAINER_CORPUS_PREPARATION_H_
#define PIPETRAIN_LAUNCHER_TRAINER_CORPUS_PREPARATION_H_

#include <string>

#include "absl/status/status.h"
#include "proto/run_spec.pb.h"

namespace pipetrain {

// The files of a prepared corpus directory.
std::string CorpusVocabPath(const RunSpec& spec);  // DIR/spm.model
// DIR/shards, or DIR/shards-<languages> when train.corpus.languages is set;
// "-v<size>" follows unless model.vocab_size is 8,000 (the demo's).
std::string CorpusShardDir(const RunSpec& spec);

// Also checks, every time, that the shard manifest is intact (its CRC-32C),
// that the vocabulary is byte for byte the one the shards were built with,
// and that every language's tag id in the manifest is its <2xx> piece.
absl::Status PrepareCorpus(const RunSpec& spec);

// Where a run keeps a copy of its vocabulary, so that its checkpoints
// translate without the corpus: OUTPUT_DIR/spm.model.
std::string RunVocabPath(const std::string& output_dir);
// Copies the corpus's vocabulary there (atomically) unless it is there
// already, with its CRC-32C beside it (OUTPUT_DIR/spm.model.crc32c,
// core/data/vocab_checksum.h) for translate and eval to check. A run that
// resumes (`resuming`) must find the very vocabulary it was trained with: a
// different or damaged one there is an error, never replaced. Call after
// PrepareCorpus, which checks the corpus's vocabulary this copies.
absl::Status KeepVocabularyWithRun(const RunSpec& spec, bool resuming);

}  // namespace pipetrain

#endif  // PIPETRAIN_LAUNCHER_TRAINER_CORPUS_PREPARATION_H_
