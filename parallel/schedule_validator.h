// Proves a schedule's lists consistent before anything runs them:
//   - shape: one list per rank, every virtual stage placed on exactly one
//     (rank, chunk), micro-batches, chunks and peers in range;
//   - counts: every (micro-batch, chunk) of every rank has exactly one F, one
//     B and one W, and exactly the SEND/RECV its neighbours need;
//   - order on each rank: RECV_F before F before SEND_F, RECV_B before B
//     before SEND_B, F before B before W, and for neighbouring virtual stages
//     on the same rank, F of the earlier stage first and B of the later first;
//   - matching: every SEND goes to the rank holding the neighbouring stage,
//     which receives it from this rank, and every RECV has its SEND.
// It does not prove freedom from deadlock (two ranks each receiving before
// sending what the other waits for pass these checks): SimulateSchedule finds
// that.
#ifndef PIPETRAIN_PARALLEL_SCHEDULE_VALIDATOR_H_
#define PIPETRAIN_PARALLEL_SCHEDULE_VALIDATOR_H_

#include "absl/status/status.h"
#include "parallel/schedule.h"

namespace pipetrain {

// OK, or InvalidArgument listing the first problems found (each naming the
// rank, the action and its position, and what was expected) and how many more.
absl::Status ValidateSchedule(const Schedule& schedule);

}  // namespace pipetrain

#endif  // PIPETRAIN_PARALLEL_SCHEDULE_VALIDATOR_H_
