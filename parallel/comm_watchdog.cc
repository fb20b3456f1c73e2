#include "parallel/comm_watchdog.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <thread>

#include "absl/strings/str_format.h"

namespace pipetrain {
namespace {

// What the (one) communicating thread waits on. Communication is funnelled
// through one thread (MPI_THREAD_FUNNELED), so one slot is enough.
struct WatchdogState {
  std::mutex mu;
  std::string what;                    // guarded by mu
  std::string who;                     // guarded by mu
  std::atomic<long long> start_ns{0};  // 0: not waiting
  std::atomic<double> timeout_s{0};
  std::atomic<int> paused{0};
  std::once_flag thread_started;
};

WatchdogState& State() {
  static WatchdogState* state = new WatchdogState;  // never destroyed: the thread outlives main
  return *state;
}

long long NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// `frozen`: this process itself did not run for a while (it was stopped
// with SIGSTOP, or its machine was suspended) and wakes up past the timeout:
// it is the stalled rank, not a victim of one, and says so.
[[noreturn]] void GiveUp(double waited, double timeout, bool frozen) {
  WatchdogState& s = State();
  std::string what, who;
  {
    std::lock_guard<std::mutex> lock(s.mu);
    what = s.what;
    who = s.who;
  }
  const std::string line =
      frozen ? absl::StrFormat(
                   "error: [watchdog] %s was itself stopped or frozen while in %s, and resumed "
                   "after %.0f s (train.comm_timeout_s=%g): its peers have given up on it. Ending "
                   "this rank with exit status %d\n",
                   who, what, waited, timeout, kExitCommStalled)
             : absl::StrFormat(
                   "error: [watchdog] %s has waited %.0f s for %s (train.comm_timeout_s=%g): the "
                   "peer did not answer; it has stopped, hung or died. Ending this rank with exit "
                   "status %d so the launcher takes the job down; look at that peer's node, then "
                   "rerun (it resumes from the latest checkpoint)\n",
                   who, waited, what, timeout, kExitCommStalled);
  // write(2), not stdio: the main thread may hold stdout's lock.
  const ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
  ::_exit(kExitCommStalled);
}

void WatchLoop() {
  WatchdogState& s = State();
  constexpr auto kTick = std::chrono::milliseconds(200);
  long long last_tick = NowNs();
  for (;;) {
    std::this_thread::sleep_for(kTick);
    const long long now = NowNs();
    // A tick that took seconds instead of 0.2 s: the whole process was
    // frozen (a starved thread on a loaded machine is late by far less).
    const bool frozen = (now - last_tick) * 1e-9 > 5.0;
    last_tick = now;
    const double timeout = s.timeout_s.load();
    const long long start = s.start_ns.load();
    if (timeout <= 0 || start == 0 || s.paused.load() > 0) continue;
    const double waited = (now - start) * 1e-9;
    if (waited > timeout) GiveUp(waited, timeout, frozen);
  }
}

}  // namespace

void StartCommWatchdog(double timeout_seconds, const std::string& who) {
  WatchdogState& s = State();
  {
    std::lock_guard<std::mutex> lock(s.mu);
    s.who = who;
  }
  s.timeout_s.store(timeout_seconds);
  if (timeout_seconds <= 0) return;
  std::call_once(s.thread_started, [] { std::thread(WatchLoop).detach(); });
}

CommWaitScope::CommWaitScope(std::string what) {
  WatchdogState& s = State();
  previous_start_ns_ = s.start_ns.load();
  if (s.timeout_s.load() <= 0) return;  // off: nothing to record
  {
    std::lock_guard<std::mutex> lock(s.mu);
    previous_what_ = std::move(s.what);
    s.what = std::move(what);
  }
  // A nested wait keeps the outer one's start: the rank has waited since then.
  if (previous_start_ns_ == 0) s.start_ns.store(NowNs());
}

CommWaitScope::~CommWaitScope() {
  WatchdogState& s = State();
  if (s.timeout_s.load() <= 0 && previous_start_ns_ == 0) {
    s.start_ns.store(0);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(s.mu);
    s.what = std::move(previous_what_);
  }
  s.start_ns.store(previous_start_ns_);
}

CommWatchdogPause::CommWatchdogPause() { ++State().paused; }
CommWatchdogPause::~CommWatchdogPause() { --State().paused; }

}  // namespace pipetrain
