#include "launcher/trainer/preemption.h"

#include <csignal>
#include <initializer_list>

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

}  // namespace pipetrain
