// Which checkpoint a run continues from. A run never restarts silently over
// checkpoints it finds: it resumes from the newest whole one, saying which
// and why when that is not the one `latest` names, or refuses.
#ifndef PIPETRAIN_LAUNCHER_TRAINER_RESUME_POINT_H_
#define PIPETRAIN_LAUNCHER_TRAINER_RESUME_POINT_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "models/checkpoint.h"

namespace pipetrain {

struct ResumePoint {
  std::optional<CheckpointReader> reader;  // none: nothing to resume, start at step 0
  // Set when the choice is not simply what `latest` names: which step
  // directory was taken, and why the newer ones or `latest` were passed over.
  std::string note;
};

// The checkpoint of `run_dir` to resume from:
//  * no `latest` and no step_<N> directory: none (a fresh run);
//  * `latest` names the newest step directory and its manifest opens: that
//    one (its data are checked as they load);
//  * otherwise (`latest` missing, damaged, naming a missing or an older
//    directory, or its manifest damaged): the newest step directory that
//    passes `ckpt verify` in full, with a note;
//  * step directories but none whole: an error listing why, so nothing is
//    overwritten.
absl::StatusOr<ResumePoint> FindResumePoint(const std::string& run_dir);

}  // namespace pipetrain

#endif  // PIPETRAIN_LAUNCHER_TRAINER_RESUME_POINT_H_
