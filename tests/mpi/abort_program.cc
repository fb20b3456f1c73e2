// The job an aborting rank must take down (run by expect_abort.cmake): rank 1
// calls Communicator::Abort while rank 0 waits in a receive that nothing will
// satisfy and any other rank waits in a barrier. The waiting ranks print a
// line if they ever get past their wait, which the script treats as failure.
//
// `--print-only` makes rank 1 print the fatal line and every rank exit 0:
// the script must reject that run (it checks the job's exit status, not only
// the message).
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

#include "core/tensor.h"
#include "parallel/mpi_communicator.h"

namespace pipetrain {
namespace {

constexpr char kMessage[] = "abort_program: rank 1 gives up";

int Run(bool print_only) {
  absl::StatusOr<std::unique_ptr<Communicator>> world = MpiCommunicator::World();
  if (!world.ok()) {
    std::fprintf(stderr, "%s\n", std::string(world.status().message()).c_str());
    return 2;
  }
  Communicator& comm = **world;
  if (print_only) {
    if (comm.rank() == 1) std::fprintf(stderr, "[r1] fatal: %s\n", kMessage);
    return comm.Barrier().ok() ? 0 : 3;
  }
  if (comm.rank() == 1) {
    // Give the others time to block first: the point is a rank that waits.
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    comm.Abort(kMessage);
  }
  if (comm.rank() == 0) {
    Tensor t = Tensor::Zeros({4}, DType::kF32);
    absl::StatusOr<std::unique_ptr<CommRequest>> request = comm.Irecv(t, 1, 7);
    if (request.ok()) (*request)->Wait().IgnoreError();
    std::printf("rank 0: receive returned\n");
  } else {
    comm.Barrier().IgnoreError();
    std::printf("rank %d: barrier returned\n", comm.rank());
  }
  std::fflush(stdout);
  return 0;
}

}  // namespace
}  // namespace pipetrain

int main(int argc, char** argv) {
  const bool print_only = argc > 1 && std::strcmp(argv[1], "--print-only") == 0;
  return pipetrain::Run(print_only);
}
