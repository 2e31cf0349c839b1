#include "control/update/self_test.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

extern char** environ;

namespace cordon::control::update {

Result<CommandResult> run_command(const std::vector<std::string>& argv,
                                  const std::vector<std::string>& extra_env,
                                  std::chrono::milliseconds timeout) {
  if (argv.empty()) return Error{"invalid", "no command"};
  // Everything the child needs is prepared before fork (no allocation after it).
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) env_strings.emplace_back(*e);
  for (const auto& e : extra_env) env_strings.push_back(e);
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);

  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return Error{"io", std::string("pipe: ") + std::strerror(errno)};
  const pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return Error{"io", std::string("fork: ") + std::strerror(errno)};
  }
  if (pid == 0) {
    setpgid(0, 0);  // its own group: a timeout kills whatever it started too
    const int null = open("/dev/null", O_RDONLY);
    if (null >= 0) dup2(null, 0);
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    execve(args[0], args.data(), envp.data());
    _exit(127);
  }
  close(fds[1]);
  CommandResult result;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[4096];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      result.timed_out = true;
      kill(-pid, SIGKILL);
      kill(pid, SIGKILL);
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    const int n = poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 1000)));
    if (n < 0 && errno != EINTR) break;
    if (n <= 0) continue;
    const ssize_t got = read(fds[0], buf, sizeof buf);
    if (got <= 0) break;  // EOF: the child (and whatever holds the pipe) is done
    result.output.append(buf, static_cast<size_t>(got));
    if (result.output.size() > 4096) result.output.erase(0, result.output.size() - 4096);
  }
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  // Children it left behind in its group are not ours to keep.
  kill(-pid, SIGKILL);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

Status CommandSelfTest::run() {
  auto r = run_command(argv_, env_, std::chrono::milliseconds(timeout_));
  if (!r) return r.error().context("self-test");
  const CommandResult& c = r.value();
  if (c.exit_code == 0 && !c.timed_out) return ok();
  std::string tail = c.output;
  while (!tail.empty() && (tail.back() == '\n' || tail.back() == ' ')) tail.pop_back();
  if (tail.size() > 600) tail.erase(0, tail.size() - 600);
  std::string why = c.timed_out ? "timed out after " + std::to_string(timeout_.count()) + " s"
                                : (c.exit_code < 0 ? std::string("killed by a signal")
                                                   : "exit code " + std::to_string(c.exit_code));
  if (c.exit_code == 127 && !c.timed_out) why += " (cannot run " + argv_.front() + ")";
  return Error{"self_test", "self-test " + argv_.front() + " failed (" + why + ")" +
                                (tail.empty() ? "" : ": " + tail)};
}

}  // namespace cordon::control::update
