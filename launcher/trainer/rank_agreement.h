// Ranks agree before they start. Every rank of a job must train the same
// resolved spec with the same build: a rank started with another --steps
// would wait forever in a collective the others never reach, one with
// another ffn_dim would write layers that no checkpoint can hold together.
// Checked once at start, before anything is allocated or written.
#ifndef PIPETRAIN_LAUNCHER_TRAINER_RANK_AGREEMENT_H_
#define PIPETRAIN_LAUNCHER_TRAINER_RANK_AGREEMENT_H_

#include <string>

#include "absl/status/status.h"
#include "parallel/communicator.h"
#include "proto/run_spec.pb.h"

namespace pipetrain {

// A fingerprint of the running executable's bytes (16 hex digits): equal on
// every node that runs the same build.
std::string BuildFingerprint();

// Collective over `world`: compares every rank's resolved `spec` and build
// fingerprint with rank 0's. On any difference every rank returns the same
// FailedPrecondition error, naming each rank that differs and the fields
// (with both values) or the build; the caller returns it without aborting
// (all ranks stop together). `build` is BuildFingerprint() outside tests.
absl::Status CheckRanksAgree(Communicator& world, const RunSpec& spec, const std::string& build);

}  // namespace pipetrain

#endif  // PIPETRAIN_LAUNCHER_TRAINER_RANK_AGREEMENT_H_
