#include "dataplane/engine/flow_table.h"

#include <immintrin.h>
#include <sys/mman.h>

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <type_traits>

namespace cordon::engine {

void FlowTable::HugeFree::operator()(void* p) const noexcept {
  std::free(p);
}

// Default-constructed elements (Flow and Bucket are trivially destructible) in memory
// aligned to 2 MiB and advised as huge-page backed; every page is touched here, so
// process() never takes a page fault on the table.
template <typename T>
FlowTable::HugeArray<T> FlowTable::allocate_huge(size_t count) {
  static_assert(std::is_trivially_destructible_v<T>);
  constexpr size_t kHuge = size_t{2} << 20;
  // Small tables (tests, tiny configurations) stay on ordinary pages, 64-byte aligned.
  const size_t needed = count * sizeof(T);
  const size_t align = needed >= kHuge ? kHuge : 64;
  const size_t bytes = (needed + align - 1) / align * align;
  void* memory = std::aligned_alloc(align, bytes);
  if (memory == nullptr) throw std::bad_alloc();
  if (align == kHuge) madvise(memory, bytes, MADV_HUGEPAGE);  // advice only: 4 KiB pages work too
  std::uninitialized_default_construct_n(static_cast<T*>(memory), count);
  return HugeArray<T>(static_cast<T*>(memory));
}

namespace {
// Buckets for `capacity` flows: at most 6 flows per bucket of 10 slots.
size_t bucket_count_for(uint32_t capacity) {
  return std::max<size_t>(2, (size_t{capacity} + 5) / 6);
}
}  // namespace

FlowTable::FlowTable(uint32_t capacity, EraseHook on_erase, void* context)
    : capacity_(capacity),
      on_erase_(on_erase),
      erase_context_(context),
      flows_(allocate_huge<Flow>(capacity)),
      links_(allocate_huge<Links>(capacity)),
      sequences_(allocate_huge<TcpSequence>(capacity)),
      free_(std::make_unique<uint32_t[]>(capacity)),
      buckets_(allocate_huge<Bucket>(bucket_count_for(capacity))),
      bucket_count_(bucket_count_for(capacity)) {
  for (uint32_t i = 0; i < capacity; ++i) free_[i] = capacity - 1 - i;
  free_count_ = capacity;
  for (size_t b = 0; b < bucket_count_; ++b) {
    Bucket& bucket = buckets_[b];
    std::memset(&bucket, 0, sizeof bucket);
    for (uint32_t& f : bucket.flows) f = kNoFlow;
  }
}

void FlowTable::index_insert(uint64_t hash, uint32_t index) noexcept {
  // size_ < capacity <= 6 per bucket on average: some bucket has a free slot.
  const uint16_t tag = tag_of(hash);
  for (size_t b = home_bucket(hash);; b = next_bucket(b)) {
    Bucket& bucket = buckets_[b];
    const unsigned free_slots = match(bucket, 0);
    if (free_slots != 0) {
      const int slot = std::countr_zero(free_slots);
      bucket.tags[slot] = tag;
      bucket.flows[slot] = index;
      return;
    }
    ++bucket.overflow;
  }
}

void FlowTable::index_erase(uint64_t hash, uint32_t index) noexcept {
  for (size_t b = home_bucket(hash);; b = next_bucket(b)) {
    Bucket& bucket = buckets_[b];
    for (int slot = 0; slot < Bucket::kSlots; ++slot) {
      if (bucket.tags[slot] != 0 && bucket.flows[slot] == index) {
        bucket.tags[slot] = 0;
        bucket.flows[slot] = kNoFlow;
        return;
      }
    }
    --bucket.overflow;  // the entry went past this bucket when it was inserted
  }
}

Flow* FlowTable::insert(const FlowKey& key) noexcept {
  if (free_count_ == 0) {
    // Evict the coldest closing flow, else the coldest embryonic one; never established.
    List& closing = lists_[static_cast<int>(FlowClass::closing)];
    List& embryonic = lists_[static_cast<int>(FlowClass::embryonic)];
    List& from = closing.tail != kNoFlow ? closing : embryonic;
    if (from.tail == kNoFlow) return nullptr;
    // Second chance for flows touched since they were last moved (header comment); at
    // most one pass over the list, after which no entry is referenced.
    for (uint32_t n = from.count; n > 0 && flows_[from.tail].referenced; --n) {
      Flow& cold = flows_[from.tail];
      relink(&cold, cold.flow_class, cold.expires_ns);
    }
    evict(&flows_[from.tail]);
  }
  const uint32_t index = free_[--free_count_];
  Flow& flow = flows_[index];
  flow = Flow{};
  flow.key = key;
  flow.flow_class = FlowClass::embryonic;
  index_insert(flow_key_hash(key), index);
  push_head(index);
  ++size_;
  return &flow;
}

void FlowTable::erase(Flow* flow) noexcept {
  if (on_erase_ != nullptr) on_erase_(erase_context_, *flow);
  const uint32_t index = index_of(flow);
  unlink(index);
  index_erase(flow_key_hash(flow->key), index);
  free_[free_count_++] = index;
  --size_;
}

void FlowTable::relink(Flow* flow, FlowClass cls, uint64_t expires_ns) noexcept {
  const uint32_t index = index_of(flow);
  unlink(index);
  flow->flow_class = cls;
  flow->expires_ns = expires_ns;
  flow->linked_period = period_of(expires_ns);
  flow->linked = true;
  flow->referenced = false;
  push_head(index);
}

uint32_t FlowTable::expire(uint64_t now_ns, uint32_t budget) noexcept {
  uint32_t removed = 0;
  for (List& list : lists_) {
    // Lists are ordered by last use and each holds flows of similar timeouts, so the
    // cold end is where expired entries are; stop at the first live one.
    while (removed < budget && list.tail != kNoFlow && flows_[list.tail].expires_ns <= now_ns) {
      erase(&flows_[list.tail]);
      ++removed;
    }
  }
  return removed;
}

void FlowTable::unlink(uint32_t index) noexcept {
  Links& l = links_[index];
  List& list = lists_[static_cast<int>(flows_[index].flow_class)];
  if (l.prev != kNoFlow) {
    links_[l.prev].next = l.next;
  } else {
    list.head = l.next;
  }
  if (l.next != kNoFlow) {
    links_[l.next].prev = l.prev;
  } else {
    list.tail = l.prev;
  }
  l.prev = l.next = kNoFlow;
  --list.count;
}

void FlowTable::push_head(uint32_t index) noexcept {
  Links& l = links_[index];
  List& list = lists_[static_cast<int>(flows_[index].flow_class)];
  l.prev = kNoFlow;
  l.next = list.head;
  if (list.head != kNoFlow) links_[list.head].prev = index;
  list.head = index;
  if (list.tail == kNoFlow) list.tail = index;
  ++list.count;
}

}  // namespace cordon::engine
