// Policy swap under load: workers judge batches continuously while the control thread
// publishes thousands of policies. Every batch must be judged by exactly one policy, and
// no worker may touch a policy after it was freed (run under TSan and ASan in make test).
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "dataplane/engine/engine.h"
#include "tests/unit/dataplane/engine/frames.h"

namespace cordon::engine {
namespace {

using testing::Bytes;
using testing::FrameBuilder;

constexpr const char* kMac = "02:c0:4d:00:00:10";

// Policy "A" binds the device to 10.0.0.1, policy "B" to 10.0.0.2. An ARP announcement
// for 10.0.0.1 passes only under A, one for 10.0.0.2 only under B: a batch of both tells
// which policy judged it, and a batch judged by a mix would show it.
std::unique_ptr<CompiledPolicy> make_policy(bool a, uint64_t version, uint32_t workers) {
  Device d;
  d.name = "ct-1";
  d.mac = *MacAddress::parse(kMac);
  d.ips = {*IpAddress::parse(a ? "10.0.0.1" : "10.0.0.2")};
  Rule r;
  r.name = "ping";
  r.dir = Direction::in;
  r.proto = Protocol::icmp;
  r.peer = *Cidr::parse(a ? "10.0.1.0/24" : "10.0.2.0/24");
  d.rules.push_back(r);
  PolicyDocument doc;
  doc.devices.push_back(d);
  CompileResult result = compile_policy(doc, version, workers);
  return std::move(result.policy);
}

Bytes announce(const char* ip) {
  return FrameBuilder()
      .eth(kMac, "ff:ff:ff:ff:ff:ff")
      .arp(1, kMac, ip, "00:00:00:00:00:00", ip)
      .build();
}

TEST(EngineSwap, EveryBatchIsJudgedByExactlyOnePolicy) {
  constexpr uint32_t kWorkers = 3;
  constexpr int kPublishes = 2000;
  EngineConfig config;
  config.workers = kWorkers;
  config.flows_per_worker = 1024;
  Engine engine(config);
  engine.publish(make_policy(true, 1, kWorkers));

  const Bytes a = announce("10.0.0.1");
  const Bytes b = announce("10.0.0.2");
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> mixed{0};
  std::atomic<uint64_t> batches{0};
  std::atomic<uint64_t> judged_by_a{0};

  auto work = [&](uint32_t index) {
    std::vector<PacketView> batch;
    for (int i = 0; i < 16; ++i) {
      const Bytes& f = i % 2 == 0 ? a : b;
      batch.push_back(PacketView{f.data(), static_cast<uint32_t>(f.size()), Side::device});
    }
    std::vector<Verdict> verdicts(batch.size());
    uint64_t now = 1;
    while (!stop.load(std::memory_order_relaxed)) {
      engine.worker(index).process(batch, verdicts, ++now);
      const bool under_a = verdicts[0].action == Action::forward;
      if (under_a) judged_by_a.fetch_add(1, std::memory_order_relaxed);
      for (size_t i = 0; i < verdicts.size(); ++i) {
        const bool expect_forward = (i % 2 == 0) == under_a;
        if ((verdicts[i].action == Action::forward) != expect_forward) mixed.fetch_add(1);
      }
      batches.fetch_add(1, std::memory_order_relaxed);
      // Four busy threads share the 2 cores of a CI machine: let the others run, or each
      // publish waits for the scheduler to bring back a descheduled worker.
      std::this_thread::yield();
      // Worker 2 idles now and then: it must not hold up reclamation while offline.
      if (index == 2 && now % 64 == 0) {
        engine.worker(index).go_idle();
        std::this_thread::yield();
      }
    }
    engine.worker(index).go_idle();
  };

  std::vector<std::thread> threads;
  for (uint32_t i = 0; i < kWorkers; ++i) threads.emplace_back(work, i);
  for (int n = 0; n < kPublishes; ++n) {
    engine.publish(make_policy(n % 2 == 1, static_cast<uint64_t>(n) + 2, kWorkers));
    // Let the workers judge under this policy before the next swap: at most one batch per
    // worker can have been in flight across publish(), so one more proves a batch ran
    // wholly under it. Both policies are then certain to judge batches.
    const uint64_t seen = batches.load();
    while (batches.load() < seen + kWorkers + 1) std::this_thread::yield();
  }
  stop = true;
  for (auto& t : threads) t.join();

  EXPECT_EQ(mixed.load(), 0u);
  // Both policies judged batches while the workers ran: the swaps happened under load.
  EXPECT_GT(judged_by_a.load(), 0u);
  EXPECT_LT(judged_by_a.load(), batches.load());
  const CounterSnapshot s = engine.read_counters();
  EXPECT_EQ(s.packets, batches.load() * 16);
  // Half of each batch passes, whichever policy judged it; counters of every retired
  // policy were folded in without loss.
  EXPECT_EQ(s.forwarded, batches.load() * 8);
  EXPECT_EQ(s.devices.at("ct-1").forwarded_packets, batches.load() * 8);
  EXPECT_EQ(s.devices.at("ct-1").dropped[static_cast<size_t>(DropReason::spoofed_arp)],
            batches.load() * 8);
}

TEST(EngineSwap, IdleWorkerDoesNotBlockPublishAndSeesNewestPolicyOnWake) {
  EngineConfig config;
  config.workers = 2;
  Engine engine(config);
  engine.publish(make_policy(true, 1, 2));
  // Worker 1 processed once (online), then went idle; worker 0 never ran.
  const Bytes a = announce("10.0.0.1");
  PacketView view{a.data(), static_cast<uint32_t>(a.size()), Side::device};
  Verdict v;
  std::thread([&] {
    engine.worker(1).process({&view, 1}, {&v, 1}, 1);
    engine.worker(1).go_idle();
  }).join();
  EXPECT_EQ(v.action, Action::forward);
  for (int n = 0; n < 100; ++n) engine.publish(make_policy(n % 2 == 1, n + 2, 2));  // must return
  std::thread([&] {
    engine.worker(1).process({&view, 1}, {&v, 1}, 2);
    engine.worker(1).go_idle();
  }).join();
  // The last publish (n = 99) was policy A.
  EXPECT_EQ(v.action, Action::forward);
  EXPECT_EQ(engine.active()->version(), 101u);
}

}  // namespace
}  // namespace cordon::engine
