// The post-update self-test: after a trial boot of a new slot, the new slot's own
// checks decide whether it is kept. CommandSelfTest runs a program (by default the
// image's /usr/lib/cordon/update-self-test: the dataplane starts and the validation
// corpus of tests/packets replays with every expected verdict, and controld answers)
// with a deadline and reports its exit status and the tail of its output.
//
// Threads: run() is called from UpdateService's worker thread; no shared state.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "control/common/result.h"

namespace cordon::control::update {

class SelfTest {
 public:
  virtual ~SelfTest() = default;
  // ok, or an Error whose message says which check failed.
  virtual Status run() = 0;
};

struct CommandResult {
  int exit_code = -1;  // -1 when killed by a signal or the deadline
  std::string output;  // stdout and stderr, the last 4 KiB
  bool timed_out = false;
};

// Runs argv[0] (a path) with argv, stdin from /dev/null, with `extra_env` added to the
// environment; kills it (SIGKILL, its whole process group) at the deadline.
Result<CommandResult> run_command(const std::vector<std::string>& argv,
                                  const std::vector<std::string>& extra_env,
                                  std::chrono::milliseconds timeout);

class CommandSelfTest final : public SelfTest {
 public:
  CommandSelfTest(std::vector<std::string> argv, std::vector<std::string> env,
                  std::chrono::seconds timeout)
      : argv_(std::move(argv)), env_(std::move(env)), timeout_(timeout) {}
  Status run() override;

 private:
  std::vector<std::string> argv_;
  std::vector<std::string> env_;
  std::chrono::seconds timeout_;
};

}  // namespace cordon::control::update
