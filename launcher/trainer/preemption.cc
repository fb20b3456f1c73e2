#include "launcher/trainer/preemption.h"

#include <csignal>
#include <cstdlib>
#include <initializer_list>

#include "absl/strings/str_cat.h"
#include "core/io/atomic_file.h"
#include "core/util/log.h"

namespace pipetrain {
namespace {

volatile std::sig_atomic_t g_signal = 0;
bool g_stopped = false;

// Only records the signal: the step loop polls it between steps, where a
// checkpoint is consistent. The handler is reset when it runs, so a second
// signal (Ctrl-C pressed twice) ends the process at once.
extern "C" void RecordSignal(int signal) { g_signal = signal; }

}  // namespace

void InstallPreemptionHandlers() {
  struct sigaction action = {};
  action.sa_handler = RecordSignal;
  action.sa_flags = SA_RESETHAND;
  sigemptyset(&action.sa_mask);
  for (int signal : {SIGTERM, SIGINT, SIGUSR1}) sigaction(signal, &action, nullptr);
}

int PreemptionSignal() { return g_signal; }

void MarkStoppedForPreemption() { g_stopped = true; }

bool StoppedForPreemption() { return g_stopped; }

void WriteStopMarker(int64_t step, const std::string& checkpoint_dir) {
  const char* path = std::getenv(kStopMarkerVariable);
  if (path == nullptr || *path == '\0') return;
  const absl::Status written = WriteFileAtomically(
      path, absl::StrCat("preempted step=", step, " checkpoint=", checkpoint_dir, "\n"));
  if (!written.ok()) {
    LogWarning("train", "cannot write the stop marker %s=%s (a batch script may not requeue): %s",
               kStopMarkerVariable, path, written.message());
  }
}

}  // namespace pipetrain
