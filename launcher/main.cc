// pipetrain: train | plan | translate | score | eval | data | ckpt.
// Only this file exits the process; everything below returns absl::Status.
#include <cstdio>

int main(int argc, char** argv) {
  std::fprintf(stderr, "pipetrain: no subcommands yet\n");
  return 2;
}
