// A watchdog on communication. A rank that is stopped (SIGSTOP, a hung
// driver, a node swapping to death) never answers, and every MPI call that
// needs it waits forever: the job hangs silently until its time limit. The
// watchdog bounds every wait. The communicators mark each blocking call with
// a CommWaitScope saying what it waits on and for whom; a thread checks
// once a second, and a wait longer than the timeout prints one line naming
// this rank, the action and the peer(s), then ends the process with
// kExitCommStalled, which makes mpirun (or srun) take the whole job down.
#ifndef PIPETRAIN_PARALLEL_COMM_WATCHDOG_H_
#define PIPETRAIN_PARALLEL_COMM_WATCHDOG_H_

#include <string>

namespace pipetrain {

// A rank gave up waiting on its peers (distinct from a failure, 1).
inline constexpr int kExitCommStalled = 4;

// Starts the process's watchdog thread (once; later calls change the
// timeout and the name). `who` names this rank in the message (for example
// "world rank 2 of 4 on host n17, pid 4242"). timeout_seconds <= 0 turns it
// off. The thread lives until the process ends.
void StartCommWatchdog(double timeout_seconds, const std::string& who);

// Marks a blocking wait of this thread; scopes nest (the innermost is
// reported). `what` should name the action and the peer, e.g. "Irecv from
// pipeline rank 1 (world rank 3)". Cheap when the watchdog is off.
class CommWaitScope {
 public:
  explicit CommWaitScope(std::string what);
  ~CommWaitScope();
  CommWaitScope(const CommWaitScope&) = delete;
  CommWaitScope& operator=(const CommWaitScope&) = delete;

 private:
  std::string previous_what_;
  long long previous_start_ns_;
};

// A wait that may legitimately last long (one rank prepares the data while
// the others wait at a barrier): the watchdog does not count it.
class CommWatchdogPause {
 public:
  CommWatchdogPause();
  ~CommWatchdogPause();
  CommWatchdogPause(const CommWatchdogPause&) = delete;
  CommWatchdogPause& operator=(const CommWatchdogPause&) = delete;
};

}  // namespace pipetrain

#endif  // PIPETRAIN_PARALLEL_COMM_WATCHDOG_H_
