#include "dataplane/engine/inspect/signatures.h"

#include <hs/hs.h>

#include <cstdio>
#include <cstdlib>

namespace cordon::engine {
namespace {

// A content string as a Hyperscan expression matching exactly those bytes.
std::string literal_expression(const std::string& content) {
  std::string out;
  out.reserve(content.size() * 4);
  char buf[5];
  for (unsigned char c : content) {
    std::snprintf(buf, sizeof buf, "\\x%02x", c);
    out += buf;
  }
  return out;
}

}  // namespace

SignatureSet::~SignatureSet() {
  for (hs_scratch* s : scratch_) hs_free_scratch(s);
  hs_free_database(database_);
}

std::unique_ptr<SignatureSet> SignatureSet::compile(const std::vector<PolicyPatch>& patches,
                                                    uint32_t worker_slots,
                                                    std::vector<PolicyError>& errors) {
  auto set = std::unique_ptr<SignatureSet>(new SignatureSet());
  if (patches.empty()) return set;
  if (patches.size() > kMaxPatches) {
    errors.push_back({"patches", "at most " + std::to_string(kMaxPatches) + " policy patches"});
    return nullptr;
  }
  std::vector<std::string> expressions;
  std::vector<unsigned> flags;
  for (size_t i = 0; i < patches.size(); ++i) {
    const PatchMatch& m = patches[i].match;
    if (!m.content.empty()) {
      expressions.push_back(literal_expression(m.content));
      flags.push_back(HS_FLAG_SINGLEMATCH);
      set->patterns_.push_back({static_cast<uint32_t>(i), true,
                                static_cast<uint32_t>(m.content.size()), m.offset, m.depth});
    }
    if (m.regex) {
      expressions.push_back(*m.regex);
      flags.push_back(HS_FLAG_SINGLEMATCH | HS_FLAG_DOTALL);
      set->patterns_.push_back({static_cast<uint32_t>(i), false, 0, m.offset, m.depth});
    }
  }
  // Each expression on its own first: precise errors, and the bounded-width check.
  bool ok = true;
  for (size_t e = 0; e < expressions.size(); ++e) {
    const std::string path = "patches[" + std::to_string(set->patterns_[e].patch) + "].match." +
                             (set->patterns_[e].is_content ? "content" : "regex");
    hs_expr_info_t* info = nullptr;
    hs_compile_error_t* error = nullptr;
    if (hs_expression_info(expressions[e].c_str(), flags[e], &info, &error) != HS_SUCCESS) {
      errors.push_back({path, std::string("not a valid pattern: ") + error->message});
      hs_free_compile_error(error);
      ok = false;
      continue;
    }
    if (info->max_width > kOverlap + 1) {
      errors.push_back({path, "matches may be longer than " + std::to_string(kOverlap + 1) +
                                  " bytes (unbounded repetition?): bound the pattern"});
      ok = false;
    }
    std::free(info);
  }
  if (!ok) return nullptr;

  std::vector<const char*> pointers;
  std::vector<unsigned> ids;
  for (size_t e = 0; e < expressions.size(); ++e) {
    pointers.push_back(expressions[e].c_str());
    ids.push_back(static_cast<unsigned>(e));
  }
  hs_compile_error_t* error = nullptr;
  if (hs_compile_multi(pointers.data(), flags.data(), ids.data(),
                       static_cast<unsigned>(pointers.size()), HS_MODE_BLOCK, nullptr,
                       &set->database_, &error) != HS_SUCCESS) {
    errors.push_back({"patches", std::string("cannot compile signatures: ") + error->message});
    hs_free_compile_error(error);
    return nullptr;
  }
  set->scratch_.assign(worker_slots, nullptr);
  for (hs_scratch*& s : set->scratch_) {
    if (hs_alloc_scratch(set->database_, &s) != HS_SUCCESS) {
      errors.push_back({"patches", "cannot allocate signature scratch space"});
      return nullptr;
    }
  }
  return set;
}

int32_t SignatureSet::scan(uint32_t worker, const uint8_t* window, size_t length, size_t overlap,
                           uint64_t window_offset, uint64_t mask) const noexcept {
  if (database_ == nullptr || mask == 0) return -1;
  struct Context {
    const SignatureSet* self;
    size_t overlap;
    uint64_t window_offset;
    uint64_t mask;
    int32_t found;
  } context{this, overlap, window_offset, mask, -1};
  auto on_match = [](unsigned id, unsigned long long, unsigned long long to, unsigned,
                     void* user) -> int {
    auto* ctx = static_cast<Context*>(user);
    const Pattern& p = ctx->self->patterns_[id];
    if ((ctx->mask >> p.patch & 1) == 0) return 0;
    if (to <= ctx->overlap) return 0;              // reported by the previous scan
    const uint64_t end = ctx->window_offset + to;  // stream offset just past the match
    if (p.is_content) {
      const uint64_t start = end - p.length;
      if (p.offset && start < *p.offset) return 0;
      if (p.depth && end > uint64_t{p.offset.value_or(0)} + *p.depth) return 0;
    } else if (p.depth && end > uint64_t{p.offset.value_or(0)} + *p.depth) {
      return 0;  // regexes have no start of match: depth bounds where they end
    }
    ctx->found = static_cast<int32_t>(p.patch);
    return 1;  // stop scanning
  };
  hs_scan(database_, reinterpret_cast<const char*>(window), static_cast<unsigned>(length), 0,
          scratch_[worker], on_match, &context);
  return context.found;
}

}  // namespace cordon::engine
