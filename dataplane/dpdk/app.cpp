// The cordon-dataplane application: EAL, ports, workers, control thread.
//
// Start-up order matters for fail-closed behaviour: ports start before any policy, and
// the engine drops everything until one is published; the persisted policy (or the
// --policy file on a first start) is enforced before the control socket accepts anyone.
#include "dataplane/dpdk/app.h"

#include <pthread.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_lcore.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include "dataplane/dpdk/clock.h"
#include "dataplane/dpdk/control.h"
#include "dataplane/dpdk/options.h"
#include "dataplane/dpdk/policy_state.h"
#include "dataplane/dpdk/service_watchdog.h"
#include "dataplane/dpdk/shell.h"
#include "dataplane/engine/engine.h"

namespace {

std::atomic<bool> g_stop{false};

void on_signal(int) {
  g_stop.store(true);
}

struct WorkerLaunch {
  cordon::dataplane::Shell* shell;
  cordon::engine::Engine* engine;
  uint32_t index;
};

int worker_main(void* arg) {
  auto* launch = static_cast<WorkerLaunch*>(arg);
  launch->shell->run_worker(launch->index, *launch->engine, g_stop);
  return 0;
}

void* control_main(void* arg) {
  (*static_cast<std::function<void()>*>(arg))();
  return nullptr;
}

int fail(const std::string& message) {
  std::fprintf(stderr, "cordon-dataplane: %s\n", message.c_str());
  return 1;
}

// Flows across an orderly restart (Engine::save_flows): written at shutdown, read once at
// the next start. What maps flows to workers is the port pairs (each pair is one worker's),
// so a snapshot is taken back only under the same pairs.
std::string pair_layout(const std::vector<cordon::dataplane::PortPair>& pairs) {
  std::string layout;
  for (const auto& p : pairs) {
    layout += p.device_port + ":" + p.network_port + ":" + p.service_port + ";";
  }
  return layout;
}

constexpr const char* kFlowSnapshotFile = "/flows.snapshot";

void restore_flow_snapshot(cordon::engine::Engine& engine, const std::string& state_dir,
                           const std::string& layout) {
  const std::string path = state_dir + kFlowSnapshotFile;
  const std::optional<std::string> snapshot = cordon::dataplane::read_file(path);
  if (!snapshot) return;  // none: a first start, or the last stop was not orderly
  // Used once: a later crash must not bring these flows back.
  if (::unlink(path.c_str()) != 0) {
    std::fprintf(stderr, "cordon-dataplane: %s: %s; its flows are not restored\n", path.c_str(),
                 std::strerror(errno));
    return;
  }
  cordon::dataplane::fsync_dir(state_dir);
  const cordon::engine::FlowRestore r = engine.restore_flows(
      *snapshot, layout, cordon::dataplane::monotonic_ns(), cordon::dataplane::realtime_ns());
  if (!r.error.empty()) {
    std::fprintf(stderr, "cordon-dataplane: %s: %s; no flow restored\n", path.c_str(),
                 r.error.c_str());
    return;
  }
  std::fprintf(stderr,
               "cordon-dataplane: restored %" PRIu64 " flows from the last shutdown (%" PRIu64
               " timed out meanwhile); each is re-checked against the policy at its next packet\n",
               r.restored, r.expired);
}

void save_flow_snapshot(const cordon::engine::Engine& engine, const std::string& state_dir,
                        const std::string& layout) {
  const std::string path = state_dir + kFlowSnapshotFile;
  const cordon::engine::FlowSnapshot snapshot = engine.save_flows(
      layout, cordon::dataplane::monotonic_ns(), cordon::dataplane::realtime_ns());
  std::string error;
  if (!cordon::dataplane::write_file_durably(path, snapshot.bytes, error)) {
    std::fprintf(stderr, "cordon-dataplane: flows not saved: %s\n", error.c_str());
    return;
  }
  cordon::dataplane::fsync_dir(state_dir);  // the rename too: the stop may be a reboot's
  std::fprintf(stderr, "cordon-dataplane: saved %" PRIu64 " flows to %s\n", snapshot.flows,
               path.c_str());
}

}  // namespace

namespace cordon::dataplane {

// Everything after EAL initialisation. Every DPDK object it creates is destroyed when it
// returns, before the caller cleans up the EAL.
int serve(int argc, char** argv) {
  std::string error;
  auto options = cordon::dataplane::parse_options(argc, argv, error);
  if (!options) return fail(error + "\n" + cordon::dataplane::usage());

  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);

  const uint32_t workers = rte_lcore_count();
  try {
    std::filesystem::create_directories(options->state_dir);
    std::filesystem::create_directories(
        std::filesystem::path(options->control_socket).parent_path());
  } catch (const std::exception& e) {
    return fail(e.what());
  }
  cordon::engine::EngineConfig config;
  config.workers = workers;
  config.record_flows = true;  // controld keeps flow records (guardrail, discovery)
  config.flows_per_worker = options->flows_per_worker;
  config.inspected_flows_per_worker = options->inspected_flows_per_worker;
  std::unique_ptr<cordon::engine::Engine> engine;
  std::unique_ptr<cordon::dataplane::Shell> shell;
  try {
    engine = std::make_unique<cordon::engine::Engine>(config);
    shell = std::make_unique<cordon::dataplane::Shell>(*options, workers);
  } catch (const std::exception& e) {
    return fail(e.what());
  }
  if (shell->pairs().size() < workers) {
    std::fprintf(stderr,
                 "cordon-dataplane: %u workers for %zu port pairs: %zu worker(s) will idle\n",
                 workers, shell->pairs().size(), workers - shell->pairs().size());
  }

  // Enforce the last applied policy (or the initial one) before anything else.
  cordon::dataplane::PolicyState state(*engine, options->state_dir);
  if (auto restore_error = state.restore()) return fail(*restore_error);
  if (!state.has_policy() && options->initial_policy) {
    std::ifstream in(*options->initial_policy);
    if (!in) return fail("cannot read --policy " + *options->initial_policy);
    std::ostringstream text;
    text << in.rdbuf();
    const cordon::dataplane::ApplyResult r = state.apply(text.str());
    if (!r.ok) {
      std::string all = "--policy " + *options->initial_policy + " is invalid:";
      for (const auto& e : r.errors) all += "\n  " + e.to_string();
      return fail(all);
    }
  }
  // Before any worker runs: the flow tables are the control thread's until then.
  const std::string layout = pair_layout(options->pairs);
  restore_flow_snapshot(*engine, options->state_dir, layout);
  std::fprintf(stderr, "cordon-dataplane: %s; %zu port pair(s), %u worker(s)\n",
               state.has_policy()
                   ? ("enforcing policy version " + std::to_string(state.version())).c_str()
                   : "no policy: dropping all device traffic",
               shell->pairs().size(), workers);

  std::vector<WorkerLaunch> launches;
  launches.reserve(workers);
  for (uint32_t i = 0; i < workers; ++i) launches.push_back({shell.get(), engine.get(), i});
  uint32_t next = 1;
  unsigned lcore;
  RTE_LCORE_FOREACH_WORKER(lcore) {
    rte_eal_remote_launch(worker_main, &launches[next++], lcore);
  }

  // The control thread: the only caller of Engine's control side from here on.
  cordon::dataplane::register_telemetry(*engine, *shell, state.version_counter());
  cordon::dataplane::ControlServer server(*engine, state, options->control_socket);
  if (std::string listen_error = server.listen(); !listen_error.empty()) {
    g_stop = true;
    rte_eal_mp_wait_lcore();
    return fail("control socket: " + listen_error);
  }
  cordon::dataplane::ServiceWatchdog watchdog([&shell] {
    std::vector<uint64_t> loops;
    for (uint32_t i = 0; i < shell->workers(); ++i)
      loops.push_back(shell->counters(i).loops.load(std::memory_order_relaxed));
    return loops;
  });
  // A DPDK control thread, so it runs on the CPUs the EAL leaves to control work (those of
  // the process's initial affinity that are no lcore's), not on the main lcore's: created
  // as a plain thread from here it would inherit worker 0's CPU, and a policy's compile
  // would take that worker's time (or, with the worker under SCHED_FIFO, wait for it).
  std::function<void()> control_body = [&server, &watchdog] {
    server.run(g_stop, [&watchdog] { watchdog.tick(std::chrono::steady_clock::now()); });
  };
  pthread_t control;
  if (const int rc =
          rte_ctrl_thread_create(&control, "cordon-control", nullptr, control_main, &control_body);
      rc != 0) {
    g_stop = true;
    rte_eal_mp_wait_lcore();
    return fail(std::string("control thread: ") + std::strerror(-rc));
  }
  std::fprintf(stderr, "cordon-dataplane: control socket %s ready\n",
               options->control_socket.c_str());
  watchdog.ready("enforcing policy version " + std::to_string(state.version()));

  worker_main(&launches[0]);  // the main lcore is worker 0
  rte_eal_mp_wait_lcore();
  pthread_join(control, nullptr);
  // Every worker has stopped: the flow tables are the control thread's again.
  save_flow_snapshot(*engine, options->state_dir, layout);
  shell.reset();
  std::fprintf(stderr, "cordon-dataplane: stopped\n");
  return 0;
}

int run_dataplane(int argc, char** argv) {
  const int eal_args = rte_eal_init(argc, argv);
  if (eal_args < 0) {
    std::fprintf(stderr, "cordon-dataplane: EAL initialisation failed: %s\n%s",
                 rte_strerror(rte_errno), usage().c_str());
    return 1;
  }
  const int status = serve(argc - eal_args - 1, argv + eal_args + 1);
  rte_eal_cleanup();
  return status;
}

}  // namespace cordon::dataplane
