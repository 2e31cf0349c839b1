// cordon_bench_classify: the engine's classifier against DPDK's rte_acl, side by side in
// one process on the same generated rule sets and trace, plus the real dpdk-test-acl
// binary on the same rules and trace written in its file formats. A report, not a test:
// bench/run.sh runs it; bench/README.md explains the method and how to read the output.
//
// Exit status: 0 when every verdict of every classifier equals the brute-force reference,
// 2 when any differs (the report lists the first ones), 1 on a setup error.
#include <rte_acl.h>
#include <rte_eal.h>
#include <rte_vect.h>
#include <rte_version.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <boost/json.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "bench/workload.h"
#include "dataplane/engine/engine.h"

#ifndef CORDON_BENCH_MARCH
#define CORDON_BENCH_MARCH "unknown"
#endif
#ifndef CORDON_BENCH_COMPILER
#define CORDON_BENCH_COMPILER "unknown"
#endif

namespace cordon::bench {
namespace {

namespace json = boost::json;
using engine::Direction;
using engine::Protocol;

constexpr uint32_t kBurst = 64;

struct Options {
  std::vector<uint32_t> sizes{1000, 10000, 50000};
  uint32_t rounds = 7;
  uint32_t passes = 16;
  uint64_t seed = kDefaultSeed;
  std::string workdir = "/tmp";
  std::string test_acl = "/usr/bin/dpdk-test-acl";
  uint32_t test_acl_runs = 1;
  std::string engine_v3;  // samples file written by cordon_bench_engine_v3
  std::string json_path;
  std::string md_path;
  std::string host;
  std::string date;
};

// ---------------------------------------------------------------------------------------
// rte_acl: the classic IPv4 5-tuple layout of DPDK's test-acl and l3fwd-acl.

struct AclTuple {  // input buffer; addresses and ports in network byte order
  uint8_t proto;
  uint32_t src;
  uint32_t dst;
  uint16_t sport;
  uint16_t dport;
};

enum { kFieldProto, kFieldSrc, kFieldDst, kFieldSport, kFieldDport, kFieldCount };

const rte_acl_field_def kAclFields[kFieldCount] = {
    {RTE_ACL_FIELD_TYPE_BITMASK, sizeof(uint8_t), kFieldProto, 0, offsetof(AclTuple, proto)},
    {RTE_ACL_FIELD_TYPE_MASK, sizeof(uint32_t), kFieldSrc, 1, offsetof(AclTuple, src)},
    {RTE_ACL_FIELD_TYPE_MASK, sizeof(uint32_t), kFieldDst, 2, offsetof(AclTuple, dst)},
    {RTE_ACL_FIELD_TYPE_RANGE, sizeof(uint16_t), kFieldSport, 3, offsetof(AclTuple, sport)},
    {RTE_ACL_FIELD_TYPE_RANGE, sizeof(uint16_t), kFieldDport, 3, offsetof(AclTuple, dport)},
};

RTE_ACL_RULE_DEF(AclRule, kFieldCount);

struct AclAlg {
  const char* name;
  enum rte_acl_classify_alg alg;  // `enum`: a function of the same name hides the type
};
// Most to least preferred, the order rte_acl itself tries them in on x86.
const AclAlg kAclAlgs[] = {{"avx512x32", RTE_ACL_CLASSIFY_AVX512X32},
                           {"avx512x16", RTE_ACL_CLASSIFY_AVX512X16},
                           {"avx2", RTE_ACL_CLASSIFY_AVX2},
                           {"sse", RTE_ACL_CLASSIFY_SSE},
                           {"scalar", RTE_ACL_CLASSIFY_SCALAR}};

struct AclRuleSpec {  // one rule in host order, shared by rte_acl and the test-acl file
  uint8_t proto;
  uint32_t src, dst;
  uint8_t src_len, dst_len;
  uint16_t dport_lo, dport_hi;
};

std::vector<AclRuleSpec> acl_rules(const Workload& w) {
  std::vector<AclRuleSpec> out;
  out.reserve(w.rule_count);
  for (uint32_t d = 0; d < w.device_count; ++d) {
    const uint32_t dev = device_ip(d);
    for (const engine::Rule& r : w.document.devices[d].rules) {
      AclRuleSpec s{};
      s.proto = r.proto == Protocol::tcp ? 6 : 17;
      const uint32_t peer = r.peer.network.v4_host_order();
      if (r.dir == Direction::out) {
        s.src = dev, s.src_len = 32, s.dst = peer, s.dst_len = r.peer.prefix_length;
      } else {
        s.src = peer, s.src_len = r.peer.prefix_length, s.dst = dev, s.dst_len = 32;
      }
      s.dport_lo = r.dport.first;
      s.dport_hi = r.dport.last;
      out.push_back(s);
    }
  }
  return out;
}

struct AclCtxDeleter {
  void operator()(rte_acl_ctx* c) const { rte_acl_free(c); }
};
using AclCtx = std::unique_ptr<rte_acl_ctx, AclCtxDeleter>;

// rte_acl_create + add + build. Rule g (global id) gets priority MAX - g, so the lowest
// id wins like the engine's first match, and userdata g + 1 (0 means no match).
AclCtx build_acl(const std::vector<AclRuleSpec>& rules) {
  static uint32_t counter = 0;
  const std::string name = "cordon_bench_" + std::to_string(counter++);
  rte_acl_param prm{};
  prm.name = name.c_str();
  prm.socket_id = SOCKET_ID_ANY;
  prm.rule_size = RTE_ACL_RULE_SZ(kFieldCount);
  prm.max_rule_num = static_cast<uint32_t>(rules.size());
  AclCtx ctx(rte_acl_create(&prm));
  if (!ctx) throw std::runtime_error("rte_acl_create failed");
  std::vector<AclRule> batch(rules.size());
  for (size_t g = 0; g < rules.size(); ++g) {
    const AclRuleSpec& s = rules[g];
    AclRule& r = batch[g];
    r = AclRule{};
    r.data.category_mask = 1;
    r.data.priority = static_cast<int32_t>(RTE_ACL_MAX_PRIORITY - g);
    r.data.userdata = static_cast<uint32_t>(g + 1);
    r.field[kFieldProto].value.u8 = s.proto;
    r.field[kFieldProto].mask_range.u8 = 0xff;
    r.field[kFieldSrc].value.u32 = s.src;
    r.field[kFieldSrc].mask_range.u32 = s.src_len;
    r.field[kFieldDst].value.u32 = s.dst;
    r.field[kFieldDst].mask_range.u32 = s.dst_len;
    r.field[kFieldSport].value.u16 = 0;
    r.field[kFieldSport].mask_range.u16 = 65535;
    r.field[kFieldDport].value.u16 = s.dport_lo;
    r.field[kFieldDport].mask_range.u16 = s.dport_hi;
  }
  int rc = rte_acl_add_rules(ctx.get(), reinterpret_cast<const rte_acl_rule*>(batch.data()),
                             static_cast<uint32_t>(batch.size()));
  if (rc != 0) throw std::runtime_error("rte_acl_add_rules: " + std::to_string(rc));
  rte_acl_config cfg{};
  cfg.num_categories = 1;
  cfg.num_fields = kFieldCount;
  std::memcpy(cfg.defs, kAclFields, sizeof(kAclFields));
  cfg.max_size = 0;
  rc = rte_acl_build(ctx.get(), &cfg);
  if (rc != 0) throw std::runtime_error("rte_acl_build: " + std::to_string(rc));
  return ctx;
}

struct AclInput {
  std::vector<AclTuple> tuples;
  std::vector<const uint8_t*> ptrs;
};

AclInput acl_input(const Workload& w) {
  AclInput in;
  in.tuples.reserve(w.trace.size());
  for (const TraceTuple& t : w.trace) {
    AclTuple a{};
    a.proto = t.ip_proto();
    a.src = htonl(t.src_ip());
    a.dst = htonl(t.dst_ip());
    a.sport = htons(t.sport);
    a.dport = htons(t.dport);
    in.tuples.push_back(a);
  }
  for (const AclTuple& a : in.tuples) in.ptrs.push_back(reinterpret_cast<const uint8_t*>(&a));
  return in;
}

Timing time_acl(const rte_acl_ctx* ctx, const AclInput& in, uint32_t passes,
                std::vector<uint32_t>& results) {
  results.resize(in.ptrs.size());
  const uint8_t** data = const_cast<const uint8_t**>(in.ptrs.data());
  uint32_t* out = results.data();
  return time_chunks(in.ptrs.size(), passes, [&](size_t begin, size_t end) {
    for (size_t i = begin; i < end; i += kBurst) {
      const auto burst = static_cast<uint32_t>(std::min<size_t>(kBurst, end - i));
      rte_acl_classify(ctx, data + i, out + i, burst, 1);
    }
  });
}

uint32_t count_acl_mismatches(const Workload& w, const std::vector<uint32_t>& results,
                              std::vector<std::string>& report, const std::string& who) {
  uint32_t m = 0;
  for (size_t i = 0; i < w.expected.size(); ++i) {
    const int32_t got = results[i] == 0 ? -1 : static_cast<int32_t>(results[i] - 1);
    if (got != w.expected[i] && ++m <= 10) {
      report.push_back(who + ": " + describe(w, static_cast<uint32_t>(i)) + "; " + who + " says " +
                       std::to_string(got));
    }
  }
  return m;
}

// ---------------------------------------------------------------------------------------
// dpdk-test-acl: rules and trace in its ClassBench-style text formats.

void write_test_acl_files(const Workload& w, const std::vector<AclRuleSpec>& rules,
                          const std::string& rules_path, const std::string& trace_path) {
  std::ofstream rf(rules_path);
  for (const AclRuleSpec& s : rules) {
    rf << '@' << ipv4_to_string(s.src) << '/' << unsigned{s.src_len} << ' ' << ipv4_to_string(s.dst)
       << '/' << unsigned{s.dst_len} << " 0 : 65535 " << s.dport_lo << " : " << s.dport_hi << ' '
       << unsigned{s.proto} << "/0xff\n";
  }
  std::ofstream tf(trace_path);
  for (const TraceTuple& t : w.trace) {
    tf << t.src_ip() << ' ' << t.dst_ip() << ' ' << t.sport << ' ' << t.dport << ' '
       << unsigned{t.ip_proto()} << '\n';
  }
  if (!rf || !tf) throw std::runtime_error("cannot write dpdk-test-acl files in workdir");
}

std::optional<std::string> run_capture(const std::string& command, const std::string& out_path) {
  const std::string full = command + " >" + out_path + " 2>&1";
  if (std::system(full.c_str()) != 0) return std::nullopt;
  std::ifstream f(out_path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

struct TestAcl {
  bool ran = false;
  std::string error;
  uint32_t mismatches = 0;
  uint32_t checked = 0;
  std::map<std::string, std::vector<double>> cycles;  // alg label -> samples
};

TestAcl run_test_acl(const Options& o, const Workload& w, const std::string& rules_path,
                     const std::string& trace_path, std::vector<std::string>& report) {
  TestAcl t;
  if (o.test_acl.empty()) return t;
  if (access(o.test_acl.c_str(), X_OK) != 0) {
    t.error = o.test_acl + " not found (Debian package dpdk-dev)";
    return t;
  }
  const std::string eal =
      " --no-huge -m 2048 --no-pci --no-telemetry --no-shconf -l 0 --log-level=lib.eal:error";
  const std::string app = " -- --rulesf=" + rules_path + " --tracef=" + trace_path +
                          " --rulenum=" + std::to_string(w.rule_count) +
                          " --tracenum=" + std::to_string(w.trace.size()) +
                          " --tracestep=" + std::to_string(kBurst) + " --bldcat=1 --runcat=1";
  const std::string out = o.workdir + "/test-acl.out";
  // Verdicts: one line per tuple, "result: <userdata - 1>" = line index of the rule.
  auto verify = run_capture(o.test_acl + eal + app + " --iter=1 --verbose=2", out);
  if (!verify) {
    t.error = "dpdk-test-acl failed; see " + out;
    return t;
  }
  t.ran = true;
  std::istringstream lines(*verify);
  std::string line;
  while (std::getline(lines, line)) {
    unsigned tuple = 0;
    unsigned category = 0;
    unsigned long result = 0;
    if (std::sscanf(line.c_str(), "ipv4_5tuple: %u, category: %u, result: %lu", &tuple, &category,
                    &result) != 3 ||
        tuple == 0 || tuple > w.expected.size()) {
      continue;
    }
    const size_t i = tuple - 1;
    const int32_t got = result == 4294967295UL ? -1 : static_cast<int32_t>(result);
    ++t.checked;
    if (got != w.expected[i] && ++t.mismatches <= 10) {
      report.push_back("dpdk-test-acl: " + describe(w, static_cast<uint32_t>(i)) +
                       "; dpdk-test-acl says " + std::to_string(got));
    }
  }
  if (t.checked != w.expected.size()) {
    t.mismatches += static_cast<uint32_t>(w.expected.size() - t.checked);
    report.push_back("dpdk-test-acl printed " + std::to_string(t.checked) + " of " +
                     std::to_string(w.expected.size()) + " verdicts");
  }
  // Timing: its own loop and rdtsc, --iter passes over the trace per run. "default" is
  // the algorithm rte_acl picks with EAL's default SIMD width; avx512x32 needs 512 bits.
  struct Variant {
    std::string label, args;
  };
  const std::vector<Variant> variants = {
      {"default", ""},
      {"avx2", " --alg=avx2"},
      {"avx512x32", " --alg=avx512x32"},
  };
  for (uint32_t run = 0; run < o.test_acl_runs; ++run) {
    for (const Variant& v : variants) {
      std::string cmd = o.test_acl + eal;
      if (v.label == "avx512x32") cmd += " --force-max-simd-bitwidth=512";
      cmd += app + " --iter=" + std::to_string(o.passes) + " --verbose=0" + v.args;
      auto text = run_capture(cmd, out);
      if (!text) continue;  // e.g. the algorithm is not supported here
      const size_t at = text->find(" cycles/pkt");
      if (at == std::string::npos) continue;
      const size_t from = text->rfind(", ", at);
      if (from == std::string::npos) continue;
      t.cycles[v.label].push_back(std::strtod(text->c_str() + from + 2, nullptr));
    }
  }
  return t;
}

// ---------------------------------------------------------------------------------------
// Machine description.

std::string read_first(const std::string& path, const std::string& key) {
  std::ifstream f(path);
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind(key, 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) {
        size_t b = line.find_first_not_of(" \t", colon + 1);
        return b == std::string::npos ? "" : line.substr(b);
      }
    }
  }
  return "";
}

std::string trim_file(const std::string& path) {
  std::ifstream f(path);
  std::string s;
  std::getline(f, s);
  return s;
}

json::object machine_info() {
  json::object m;
  m["cpu"] = read_first("/proc/cpuinfo", "model name");
  m["cpus_online"] = sysconf(_SC_NPROCESSORS_ONLN);
  const std::string flags = " " + read_first("/proc/cpuinfo", "flags") + " ";
  json::object isa;
  for (const char* f :
       {"sse4_2", "avx2", "avx512f", "avx512bw", "avx512vl", "avx512cd", "hypervisor"}) {
    isa[f] = flags.find(std::string(" ") + f + " ") != std::string::npos;
  }
  m["cpu_flags"] = isa;
  utsname u{};
  uname(&u);
  m["kernel"] = std::string(u.sysname) + " " + u.release;
  m["compiler"] = CORDON_BENCH_COMPILER;
  m["dpdk"] = rte_version();
  m["cordon_march"] = CORDON_BENCH_MARCH;
  m["tsc_hz"] = rte_get_tsc_hz();
  m["transparent_hugepages"] = trim_file("/sys/kernel/mm/transparent_hugepage/enabled");
  m["eal"] = "--no-huge (4 KiB pages), 1 lcore";
  m["loadavg_at_start"] = trim_file("/proc/loadavg");
  return m;
}

// ---------------------------------------------------------------------------------------
// Output.

json::object stats_json(const std::vector<double>& samples) {
  const Stats s = stats_of(samples);
  json::object o;
  o["median"] = s.median;
  o["min"] = s.min;
  o["max"] = s.max;
  json::array a;
  for (double v : samples) a.push_back(v);
  o["samples"] = a;
  return o;
}

// Doubles as %.6g (Boost.JSON would write 1.431732564059053E0); non-finite as null.
void scalar(std::ostream& os, const json::value& v) {
  if (v.is_double()) {
    const double d = v.get_double();
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6g", d);
    os << (std::isfinite(d) ? buf : "null");
  } else {
    os << json::serialize(v);
  }
}

void pretty(std::ostream& os, const json::value& v, int indent = 0) {
  const std::string pad(static_cast<size_t>(indent) + 2, ' ');
  const std::string end_pad(static_cast<size_t>(indent), ' ');
  if (v.is_object()) {
    const auto& o = v.get_object();
    if (o.empty()) {
      os << "{}";
      return;
    }
    os << "{\n";
    size_t i = 0;
    for (const auto& kv : o) {
      os << pad << json::serialize(json::string(kv.key())) << ": ";
      pretty(os, kv.value(), indent + 2);
      os << (++i < o.size() ? ",\n" : "\n");
    }
    os << end_pad << "}";
  } else if (v.is_array()) {
    const auto& a = v.get_array();
    bool scalars = true;
    for (const auto& e : a) scalars = scalars && !e.is_object() && !e.is_array();
    if (scalars) {
      os << "[";
      for (size_t i = 0; i < a.size(); ++i) {
        if (i != 0) os << ", ";
        scalar(os, a[i]);
      }
      os << "]";
      return;
    }
    os << "[\n";
    for (size_t i = 0; i < a.size(); ++i) {
      os << pad;
      pretty(os, a[i], indent + 2);
      os << (i + 1 < a.size() ? ",\n" : "\n");
    }
    os << end_pad << "]";
  } else {
    scalar(os, v);
  }
}

std::string fmt(double v, int decimals = 1) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string cell(const json::value* s) {
  if (s == nullptr || !s->is_object()) return "n/a";
  const auto& o = s->get_object();
  return fmt(o.at("median").to_number<double>()) + " (" + fmt(o.at("min").to_number<double>()) +
         "–" + fmt(o.at("max").to_number<double>()) + ")";
}

const json::value* find(const json::object& o, std::initializer_list<const char*> path) {
  const json::value* v = nullptr;
  const json::object* cur = &o;
  for (const char* k : path) {
    if (cur == nullptr) return nullptr;
    v = cur->if_contains(k);
    if (v == nullptr) return nullptr;
    cur = v->if_object();
  }
  return v;
}

double median_of(const json::value* s) {
  return s == nullptr ? 0 : s->get_object().at("median").to_number<double>();
}

std::string markdown(const json::object& r) {
  std::ostringstream md;
  const auto& m = r.at("machine").get_object();
  const auto& method = r.at("method").get_object();
  md << "# Classification: engine vs rte_acl — " << json::value_to<std::string>(r.at("date"))
     << ", " << json::value_to<std::string>(r.at("host")) << "\n\n";
  md << "Produced by `make bench` (bench/run.sh, bench/classify_bench.cpp); method and caveats "
        "in bench/README.md.\n\n";
  md << "## Machine\n\n| | |\n|---|---|\n";
  md << "| CPU | " << json::value_to<std::string>(m.at("cpu")) << " ("
     << m.at("cpus_online").to_number<int64_t>() << " CPUs online"
     << (m.at("cpu_flags").at("hypervisor").as_bool() ? ", virtual machine" : "") << ") |\n";
  md << "| ISA flags | ";
  for (const auto& kv : m.at("cpu_flags").get_object()) {
    if (kv.key() != "hypervisor")
      md << kv.key() << "=" << (kv.value().as_bool() ? "yes" : "no") << " ";
  }
  md << "|\n";
  md << "| TSC | " << fmt(double(m.at("tsc_hz").to_number<uint64_t>()) / 1e9, 3) << " GHz |\n";
  md << "| Kernel | " << json::value_to<std::string>(m.at("kernel")) << " |\n";
  md << "| Compiler | " << json::value_to<std::string>(m.at("compiler")) << " |\n";
  md << "| DPDK | " << json::value_to<std::string>(m.at("dpdk")) << " (Debian package) |\n";
  md << "| CORDON_MARCH | " << json::value_to<std::string>(m.at("cordon_march"))
     << " (engine); rte_acl picks its ISA at run time |\n";
  md << "| Memory | " << json::value_to<std::string>(m.at("eal"))
     << "; THP: " << json::value_to<std::string>(m.at("transparent_hugepages")) << " |\n";
  md << "| Load average | start " << json::value_to<std::string>(m.at("loadavg_at_start"))
     << "; end " << json::value_to<std::string>(m.at("loadavg_at_end")) << " |\n\n";

  md << "Each cell: median (min–max) of " << method.at("rounds").to_number<int64_t>()
     << " runs, interleaved engine/rte_acl in one process; one run = "
     << method.at("passes").to_number<int64_t>() << " passes over the "
     << method.at("trace_tuples").to_number<int64_t>()
     << "-tuple trace. Unit: TSC cycles per packet (one classification: device lookup + "
        "rule lookup). Engine columns: `classify_burst` in bursts of 64 (as rte_acl_classify "
        "here) unless marked one call per packet (device_by_ip + classify per tuple, as the "
        "worker calls it). Ratio > 1: the engine is faster.\n\n";

  md << "## Cycles per packet\n\n";
  md << "| rules | devices | engine (" << json::value_to<std::string>(m.at("cordon_march"))
     << ") | engine (x86-64-v3) | engine, one call per packet | rte_acl best | rte_acl avx2 | "
        "rte_acl scalar | dpdk-test-acl (default alg) | best / engine | avx2 / engine |\n";
  md << "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& sv : r.at("sizes").get_array()) {
    const auto& s = sv.get_object();
    const std::string best = json::value_to<std::string>(s.at("rte_acl_best_alg"));
    const json::value* eng = find(s, {"cycles_per_packet", "engine"});
    md << "| " << s.at("rules").to_number<int64_t>() << " | "
       << s.at("devices").to_number<int64_t>() << " | " << cell(eng) << " | "
       << cell(find(s, {"cycles_per_packet", "engine_x86-64-v3"})) << " | "
       << cell(find(s, {"cycles_per_packet", "engine_one_by_one"})) << " | "
       << cell(find(s, {"cycles_per_packet", ("rte_acl_" + best).c_str()})) << " " << best << " | "
       << cell(find(s, {"cycles_per_packet", "rte_acl_avx2"})) << " | "
       << cell(find(s, {"cycles_per_packet", "rte_acl_scalar"})) << " | "
       << cell(find(s, {"dpdk_test_acl", "cycles_per_packet", "default"})) << " | **"
       << fmt(s.at("ratio_best_over_engine").to_number<double>(), 2) << "** | "
       << fmt(s.at("ratio_avx2_over_engine").to_number<double>(), 2) << " |\n";
  }

  md << "\n## Every rte_acl algorithm (in-process)\n\n| rules |";
  for (const AclAlg& a : kAclAlgs) md << " " << a.name << " |";
  md << "\n|---:|";
  for (size_t i = 0; i < std::size(kAclAlgs); ++i) md << "---:|";
  md << "\n";
  for (const auto& sv : r.at("sizes").get_array()) {
    const auto& s = sv.get_object();
    md << "| " << s.at("rules").to_number<int64_t>() << " |";
    for (const AclAlg& a : kAclAlgs) {
      md << " " << cell(find(s, {"cycles_per_packet", (std::string("rte_acl_") + a.name).c_str()}))
         << " |";
    }
    md << "\n";
  }
  md << "\nrte_acl's own choice (RTE_ACL_CLASSIFY_DEFAULT) on this machine: "
     << json::value_to<std::string>(r.at("rte_acl_default_alg"))
     << ". AVX-512 paths need AVX512F/VL/CD/BW; avx512x32 also needs EAL's max SIMD width "
        "raised to 512 (--force-max-simd-bitwidth=512 or rte_vect_set_max_simd_bitwidth).\n";

  md << "\n## dpdk-test-acl (the Debian binary, same rules and trace files)\n\n"
        "| rules | default alg | avx2 | avx512x32 (--force-max-simd-bitwidth=512) |\n"
        "|---:|---:|---:|---:|\n";
  for (const auto& sv : r.at("sizes").get_array()) {
    const auto& s = sv.get_object();
    md << "| " << s.at("rules").to_number<int64_t>() << " | "
       << cell(find(s, {"dpdk_test_acl", "cycles_per_packet", "default"})) << " | "
       << cell(find(s, {"dpdk_test_acl", "cycles_per_packet", "avx2"})) << " | "
       << cell(find(s, {"dpdk_test_acl", "cycles_per_packet", "avx512x32"})) << " |\n";
  }

  md << "\n## Verdicts (every tuple against a brute-force first-match reference)\n\n"
        "| rules | trace hits | engine | engine x86-64-v3 | rte_acl (all algorithms) | "
        "dpdk-test-acl |\n|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& sv : r.at("sizes").get_array()) {
    const auto& s = sv.get_object();
    const auto& mm = s.at("mismatches").get_object();
    auto mcell = [&mm](const char* k) {
      const json::value* v = mm.if_contains(k);
      return v == nullptr ? std::string("n/a") : std::to_string(v->to_number<int64_t>());
    };
    md << "| " << s.at("rules").to_number<int64_t>() << " | "
       << s.at("trace_hits").to_number<int64_t>() << " / "
       << method.at("trace_tuples").to_number<int64_t>() << " | " << mcell("engine")
       << " mismatches | " << mcell("engine_x86-64-v3") << " | " << mcell("rte_acl") << " | "
       << mcell("dpdk_test_acl") << " |\n";
  }

  md << "\n## Build time (wall clock, median of runs)\n\n"
        "| rules | compile_policy | compile + Engine::publish | engine table entries | "
        "engine hash probes / classify | rte_acl create + add + build |\n"
        "|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& sv : r.at("sizes").get_array()) {
    const auto& s = sv.get_object();
    md << "| " << s.at("rules").to_number<int64_t>() << " | "
       << fmt(median_of(find(s, {"build_ms", "compile_policy"})), 2) << " ms | "
       << fmt(median_of(find(s, {"build_ms", "compile_and_publish"})), 2) << " ms | "
       << s.at("engine_table_entries").to_number<int64_t>() << " | "
       << fmt(s.at("engine_hash_probes_per_classify").to_number<double>(), 2) << " | "
       << fmt(median_of(find(s, {"build_ms", "rte_acl_build"})), 1) << " ms |\n";
  }

  md << "\n## Where the engine stands\n\n";
  auto compare = [](double ratio) {
    return ratio >= 1 ? fmt(ratio, 2) + "× faster than" : fmt(1 / ratio, 2) + "× slower than";
  };
  for (const auto& sv : r.at("sizes").get_array()) {
    const auto& s = sv.get_object();
    const double engine_median = median_of(find(s, {"cycles_per_packet", "engine"}));
    md << "* " << s.at("rules").to_number<int64_t>() << " rules: the engine (classify_burst, "
       << fmt(engine_median) << " cycles/packet) is "
       << compare(s.at("ratio_best_over_engine").to_number<double>())
       << " rte_acl's best algorithm here ("
       << json::value_to<std::string>(s.at("rte_acl_best_alg")) << "), "
       << compare(s.at("ratio_avx2_over_engine").to_number<double>()) << " rte_acl avx2";
    if (const json::value* x16 = find(s, {"cycles_per_packet", "rte_acl_avx512x16"})) {
      md << ", " << compare(median_of(x16) / engine_median) << " avx512x16";
    }
    if (const json::value* sc = find(s, {"cycles_per_packet", "rte_acl_scalar"})) {
      md << ", " << compare(median_of(sc) / engine_median) << " scalar";
    }
    if (const json::value* one = find(s, {"cycles_per_packet", "engine_one_by_one"})) {
      const double best_median = median_of(
          find(s, {"cycles_per_packet",
                   ("rte_acl_" + json::value_to<std::string>(s.at("rte_acl_best_alg"))).c_str()}));
      md << "; one call per packet (" << fmt(median_of(one)) << "), the engine is "
         << compare(best_median / median_of(one)) << " rte_acl's best";
    }
    md << ".\n";
  }
  md << "\n" << json::value_to<std::string>(r.at("notes")) << "\n";
  const auto& examples = r.at("mismatch_examples").get_array();
  if (!examples.empty()) {
    md << "\n## Mismatch examples\n\n";
    for (const auto& e : examples) md << "* " << json::value_to<std::string>(e) << "\n";
  }
  md << "\n## Timing chunks discarded (thread switched out; see bench/README.md)\n\n";
  for (const auto& sv : r.at("sizes").get_array()) {
    const auto& s = sv.get_object();
    md << "* " << s.at("rules").to_number<int64_t>() << " rules:";
    for (const auto& kv : s.at("discarded_chunks").get_object()) {
      md << " " << kv.key() << " " << kv.value().to_number<int64_t>();
    }
    md << "\n";
  }
  return md.str();
}

// Samples file of cordon_bench_engine_v3: "size <rules> mismatches <n> samples <v>...".
std::map<uint32_t, std::pair<uint32_t, std::vector<double>>> read_v3(const std::string& path) {
  std::map<uint32_t, std::pair<uint32_t, std::vector<double>>> out;
  std::ifstream f(path);
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream ls(line);
    std::string k1, k2, k3;
    uint32_t size = 0, mism = 0;
    if (!(ls >> k1 >> size >> k2 >> mism >> k3) || k1 != "size") continue;
    std::vector<double> v;
    double x = 0;
    while (ls >> x) v.push_back(x);
    out[size] = {mism, v};
  }
  return out;
}

// Chunks dropped because the thread was switched out, per variant (see time_chunks).
void add_discarded(json::object& o, const std::string& key, const Timing& t, const Workload&) {
  const int64_t before = o.contains(key) ? o.at(key).to_number<int64_t>() : 0;
  o[key] = before + static_cast<int64_t>(t.discarded_chunks);
}

double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

std::vector<uint32_t> parse_sizes(const std::string& s) {
  std::vector<uint32_t> v;
  std::istringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) v.push_back(static_cast<uint32_t>(std::stoul(item)));
  return v;
}

Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const size_t eq = a.find('=');
    const std::string key = a.substr(0, eq);
    const std::string val = eq == std::string::npos ? "" : a.substr(eq + 1);
    if (key == "--sizes")
      o.sizes = parse_sizes(val);
    else if (key == "--rounds")
      o.rounds = static_cast<uint32_t>(std::stoul(val));
    else if (key == "--passes")
      o.passes = static_cast<uint32_t>(std::stoul(val));
    else if (key == "--seed")
      o.seed = std::stoull(val, nullptr, 0);
    else if (key == "--workdir")
      o.workdir = val;
    else if (key == "--test-acl")
      o.test_acl = val;
    else if (key == "--test-acl-runs")
      o.test_acl_runs = static_cast<uint32_t>(std::stoul(val));
    else if (key == "--engine-v3")
      o.engine_v3 = val;
    else if (key == "--json")
      o.json_path = val;
    else if (key == "--md")
      o.md_path = val;
    else if (key == "--host")
      o.host = val;
    else if (key == "--date")
      o.date = val;
    else
      throw std::invalid_argument("unknown option " + a);
  }
  if (o.host.empty()) {
    char buf[256] = {};
    gethostname(buf, sizeof buf - 1);
    o.host = buf;
  }
  if (o.date.empty()) {
    char buf[32];
    const std::time_t now = std::time(nullptr);
    std::strftime(buf, sizeof buf, "%Y-%m-%d", std::localtime(&now));
    o.date = buf;
  }
  return o;
}

int run(int argc, char** argv) {
  const Options o = parse_options(argc, argv);

  // EAL without hugepages, PCI or telemetry: rte_acl needs only its memory allocator.
  std::vector<std::string> eal_args = {
      "cordon_bench_classify", "--no-huge",   "-m", "2048", "--no-pci",
      "--no-telemetry",        "--no-shconf", "-l", "0",    "--log-level=lib.eal:error"};
  std::vector<char*> eal_argv;
  for (auto& s : eal_args) eal_argv.push_back(s.data());
  if (rte_eal_init(static_cast<int>(eal_argv.size()), eal_argv.data()) < 0) {
    std::cerr << "rte_eal_init failed\n";
    return 1;
  }

  json::object report;
  report["date"] = o.date;
  report["host"] = o.host;
  report["machine"] = machine_info();
  json::object method;
  method["rules_per_device"] = kRulesPerDevice;
  method["trace_tuples"] = kTraceSize;
  method["rounds"] = o.rounds;
  method["passes"] = o.passes;
  method["rte_acl_burst"] = kBurst;
  method["seed"] = o.seed;
  report["method"] = method;

  const auto v3 = o.engine_v3.empty() ? decltype(read_v3("")){} : read_v3(o.engine_v3);
  std::vector<std::string> problems;
  bool any_mismatch = false;
  std::string default_alg_256, default_alg_512;
  json::array sizes;

  for (uint32_t n : o.sizes) {
    std::cerr << "== " << n << " rules\n";
    const Workload w = make_workload(n, o.seed);
    json::object s;
    s["rules"] = w.rule_count;
    s["devices"] = w.device_count;
    s["trace_hits"] = w.expected_hits;
    s["engine_hash_probes_per_classify"] = w.mean_prefix_probes;
    json::object build_ms;
    json::object mism;
    json::object cpp;

    // Engine: compile + publish, as controld does it.
    engine::EngineConfig config;
    config.workers = 1;
    config.flows_per_worker = 1024;
    engine::Engine eng(config);
    std::vector<double> compile_ms, publish_ms;
    for (uint32_t rep = 0; rep < 5; ++rep) {
      const auto t0 = std::chrono::steady_clock::now();
      engine::CompileResult c = engine::compile_policy(w.document, rep + 1, 1);
      compile_ms.push_back(ms_since(t0));
      if (!c.policy) {
        std::cerr << "compile_policy failed: " << c.errors.front().to_string() << "\n";
        return 1;
      }
      eng.publish(std::move(c.policy));
      publish_ms.push_back(ms_since(t0));
    }
    build_ms["compile_policy"] = stats_json(compile_ms);
    build_ms["compile_and_publish"] = stats_json(publish_ms);
    const engine::CompiledPolicy& policy = *eng.active();
    s["engine_table_entries"] = policy.table_entries();
    mism["engine"] = verify_engine(policy, w, problems);

    // rte_acl: same rules, built the way dpdk-test-acl builds them.
    const std::vector<AclRuleSpec> specs = acl_rules(w);
    std::vector<double> acl_ms;
    AclCtx ctx;
    const uint32_t builds = n <= 10000 ? 3 : 1;
    for (uint32_t rep = 0; rep < builds; ++rep) {
      ctx.reset();
      const auto t0 = std::chrono::steady_clock::now();
      ctx = build_acl(specs);
      acl_ms.push_back(ms_since(t0));
    }
    build_ms["rte_acl_build"] = stats_json(acl_ms);
    s["build_ms"] = build_ms;

    // Which algorithm rte_acl's default would take: the first one it accepts, with EAL's
    // default SIMD width and then with 512 bits allowed (needed for avx512x32).
    auto first_accepted = [&ctx]() {
      for (const AclAlg& a : kAclAlgs) {
        if (rte_acl_set_ctx_classify(ctx.get(), a.alg) == 0) return std::string(a.name);
      }
      return std::string("none");
    };
    if (default_alg_256.empty()) default_alg_256 = first_accepted();
    rte_vect_set_max_simd_bitwidth(RTE_VECT_SIMD_512);
    if (default_alg_512.empty()) default_alg_512 = first_accepted();

    const AclInput in = acl_input(w);
    std::vector<const AclAlg*> algs;
    uint32_t acl_mismatches = 0;
    std::vector<uint32_t> acl_results;
    for (const AclAlg& a : kAclAlgs) {
      if (rte_acl_set_ctx_classify(ctx.get(), a.alg) != 0) continue;
      algs.push_back(&a);
      time_acl(ctx.get(), in, 1, acl_results);  // warm-up and verdicts
      acl_mismatches +=
          count_acl_mismatches(w, acl_results, problems, std::string("rte_acl ") + a.name);
    }
    mism["rte_acl"] = acl_mismatches;

    // Interleaved runs: engine, every rte_acl algorithm, engine, ...
    // "engine" is classify_burst (bursts of 64, like rte_acl_classify here);
    // "engine_one_by_one" is device_by_ip + classify per tuple, as the worker calls it.
    std::vector<double> engine_cpp;
    std::vector<double> engine_single_cpp;
    std::map<std::string, std::vector<double>> acl_cpp;
    json::object discarded;
    std::vector<int32_t> engine_out;
    time_engine(policy, w, 1, engine_out);  // warm-up
    for (uint32_t round = 0; round < o.rounds; ++round) {
      const Timing te = time_engine(policy, w, o.passes, engine_out, EngineCalls::burst);
      engine_cpp.push_back(te.per_packet());
      add_discarded(discarded, "engine", te, w);
      const Timing t1 = time_engine(policy, w, o.passes, engine_out, EngineCalls::one_by_one);
      engine_single_cpp.push_back(t1.per_packet());
      add_discarded(discarded, "engine_one_by_one", t1, w);
      for (const AclAlg* a : algs) {
        rte_acl_set_ctx_classify(ctx.get(), a->alg);
        const Timing ta = time_acl(ctx.get(), in, o.passes, acl_results);
        acl_cpp[a->name].push_back(ta.per_packet());
        add_discarded(discarded, std::string("rte_acl_") + a->name, ta, w);
      }
    }
    s["discarded_chunks"] = discarded;
    cpp["engine"] = stats_json(engine_cpp);
    cpp["engine_one_by_one"] = stats_json(engine_single_cpp);
    if (auto it = v3.find(n); it != v3.end()) {
      cpp["engine_x86-64-v3"] = stats_json(it->second.second);
      mism["engine_x86-64-v3"] = it->second.first;
    }
    std::string best;
    double best_median = 0;
    for (const auto& [name, samples] : acl_cpp) {
      cpp["rte_acl_" + name] = stats_json(samples);
      const double med = stats_of(samples).median;
      if (best.empty() || med < best_median) best = name, best_median = med;
    }
    s["cycles_per_packet"] = cpp;
    s["rte_acl_best_alg"] = best;
    const double engine_median = stats_of(engine_cpp).median;
    s["ratio_best_over_engine"] = best_median / engine_median;
    s["ratio_avx2_over_engine"] =
        acl_cpp.count("avx2") ? stats_of(acl_cpp["avx2"]).median / engine_median : 0.0;
    ctx.reset();

    // The real dpdk-test-acl on the same rules and trace.
    const std::string rules_path = o.workdir + "/rules-" + std::to_string(n) + ".txt";
    const std::string trace_path = o.workdir + "/trace-" + std::to_string(n) + ".txt";
    write_test_acl_files(w, specs, rules_path, trace_path);
    const TestAcl ta = run_test_acl(o, w, rules_path, trace_path, problems);
    json::object tj;
    tj["ran"] = ta.ran;
    if (!ta.error.empty()) tj["error"] = ta.error;
    json::object tcpp;
    for (const auto& [label, samples] : ta.cycles) tcpp[label] = stats_json(samples);
    tj["cycles_per_packet"] = tcpp;
    s["dpdk_test_acl"] = tj;
    if (ta.ran) mism["dpdk_test_acl"] = ta.mismatches;

    for (const auto& kv : mism) any_mismatch = any_mismatch || kv.value().to_number<int64_t>() != 0;
    s["mismatches"] = mism;
    sizes.push_back(s);
  }
  report["sizes"] = sizes;
  report["machine"].as_object()["loadavg_at_end"] = trim_file("/proc/loadavg");
  report["rte_acl_default_alg"] =
      default_alg_256 + " (EAL default SIMD width), " + default_alg_512 + " (512 bits allowed)";
  json::array pj;
  for (const auto& p : problems) pj.push_back(json::string(p));
  report["mismatch_examples"] = pj;
  report["notes"] =
      "The engine is compiled for " + std::string(CORDON_BENCH_MARCH) +
      " (CORDON_MARCH); rte_acl chooses AVX2/AVX-512 code at run time whatever the build "
      "flags, so its best column uses instructions our build does not. The x86-64-v3 column "
      "is the same engine source rebuilt with -march=x86-64-v3 (separate process, run just "
      "before). No hugepages (EAL --no-huge): rte_acl's tables and the engine's both sit on "
      "4 KiB pages (THP as configured). IPv4 TCP/UDP only: rte_acl has no direction or "
      "device notion, so the rule sets are built so that the 5-tuple is unambiguous.";

  const std::string md = markdown(report);
  if (!o.md_path.empty()) std::ofstream(o.md_path) << md;
  if (!o.json_path.empty()) {
    std::ofstream f(o.json_path);
    pretty(f, report);
    f << "\n";
  }
  std::cout << md;
  if (!problems.empty()) {
    std::cerr << "MISMATCHES: see the report\n";
  }
  rte_eal_cleanup();
  return any_mismatch ? 2 : 0;
}

}  // namespace
}  // namespace cordon::bench

int main(int argc, char** argv) {
  try {
    return cordon::bench::run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "cordon_bench_classify: " << e.what() << "\n";
    return 1;
  }
}
