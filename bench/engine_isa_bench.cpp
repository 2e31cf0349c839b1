// cordon_bench_engine_v3: the engine's classification loop of cordon_bench_classify, with
// the classifier sources (compiled_policy.cpp, packet.cpp) and this loop rebuilt for
// another ISA (-march=x86-64-v3 in bench/CMakeLists.txt). Same rule sets and trace (same
// seed); verifies every verdict and writes the cycles/packet samples for
// cordon_bench_classify --engine-v3=FILE:
//   size <rules> mismatches <n> samples <cycles/packet>...
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "bench/workload.h"

namespace cordon::bench {
namespace {

int run(int argc, char** argv) {
  std::vector<uint32_t> sizes{1000, 10000, 50000};
  uint32_t rounds = 7;
  uint32_t passes = 16;
  uint64_t seed = kDefaultSeed;
  std::string out_path;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const size_t eq = a.find('=');
    const std::string key = a.substr(0, eq);
    const std::string val = eq == std::string::npos ? "" : a.substr(eq + 1);
    if (key == "--sizes") {
      sizes.clear();
      std::istringstream ss(val);
      std::string item;
      while (std::getline(ss, item, ',')) sizes.push_back(static_cast<uint32_t>(std::stoul(item)));
    } else if (key == "--rounds") {
      rounds = static_cast<uint32_t>(std::stoul(val));
    } else if (key == "--passes") {
      passes = static_cast<uint32_t>(std::stoul(val));
    } else if (key == "--seed") {
      seed = std::stoull(val, nullptr, 0);
    } else if (key == "--out") {
      out_path = val;
    } else {
      std::cerr << "unknown option " << a << "\n";
      return 1;
    }
  }
  std::ostringstream out;
  bool mismatch = false;
  for (uint32_t n : sizes) {
    const Workload w = make_workload(n, seed);
    engine::CompileResult c = engine::compile_policy(w.document, 1, 1);
    if (!c.policy) {
      std::cerr << "compile_policy failed: " << c.errors.front().to_string() << "\n";
      return 1;
    }
    std::vector<std::string> report;
    const uint32_t m = verify_engine(*c.policy, w, report);
    for (const auto& line : report) std::cerr << "engine x86-64-v3: " << line << "\n";
    mismatch = mismatch || m != 0;
    std::vector<int32_t> results;
    time_engine(*c.policy, w, 1, results);  // warm-up
    out << "size " << n << " mismatches " << m << " samples";
    for (uint32_t r = 0; r < rounds; ++r) {
      out << ' ' << time_engine(*c.policy, w, passes, results).per_packet();
    }
    out << '\n';
  }
  if (out_path.empty()) {
    std::cout << out.str();
  } else {
    std::ofstream(out_path) << out.str();
  }
  return mismatch ? 2 : 0;
}

}  // namespace
}  // namespace cordon::bench

int main(int argc, char** argv) {
  return cordon::bench::run(argc, argv);
}
