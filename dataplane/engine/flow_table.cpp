#include "dataplane/engine/flow_table.h"

#include <cstring>

namespace cordon::engine {

size_t FlowKeyHash::operator()(const FlowKey& k) const noexcept {
  uint64_t words[4];
  std::memcpy(&words[0], k.device_ip.data(), 16);
  std::memcpy(&words[2], k.peer_ip.data(), 16);
  uint64_t h = (uint64_t{k.device_port} << 48) ^ (uint64_t{k.peer_port} << 32) ^
               (uint64_t{k.vlan} << 16) ^ (uint64_t{k.protocol} << 8) ^ k.family;
  for (uint64_t w : words) h = (h ^ w) * 0x9e3779b97f4a7c15ULL;
  return static_cast<size_t>(h ^ (h >> 29));
}

FlowTable::FlowTable(uint32_t capacity, EraseHook on_erase, void* context)
    : capacity_(capacity),
      on_erase_(on_erase),
      erase_context_(context),
      flows_(std::make_unique<Flow[]>(capacity)),
      free_(std::make_unique<uint32_t[]>(capacity)) {
  for (uint32_t i = 0; i < capacity; ++i) free_[i] = capacity - 1 - i;
  free_count_ = capacity;
  // Reserved once: with size() <= capacity the map never rehashes, so inserts never allocate.
  index_.reserve(capacity);
}

Flow* FlowTable::find(const FlowKey& key, uint64_t now_ns) noexcept {
  auto it = index_.find(key);
  if (it == index_.end()) return nullptr;
  Flow* flow = &flows_[it->second];
  if (flow->expires_ns <= now_ns) {
    erase(flow);
    return nullptr;
  }
  return flow;
}

Flow* FlowTable::insert(const FlowKey& key) noexcept {
  if (free_count_ == 0) {
    // Evict the coldest closing flow, else the coldest embryonic one; never established.
    List& closing = lists_[static_cast<int>(FlowClass::closing)];
    List& embryonic = lists_[static_cast<int>(FlowClass::embryonic)];
    const uint32_t victim = closing.tail != kNoFlow ? closing.tail : embryonic.tail;
    if (victim == kNoFlow) return nullptr;
    erase(&flows_[victim]);
    ++evictions_;
  }
  const uint32_t index = free_[--free_count_];
  Flow& flow = flows_[index];
  flow = Flow{};
  flow.key = key;
  flow.in_use = true;
  flow.flow_class = FlowClass::embryonic;
  index_.emplace(key, index);
  push_head(index);
  ++size_;
  return &flow;
}

void FlowTable::erase(Flow* flow) noexcept {
  if (on_erase_ != nullptr) on_erase_(erase_context_, *flow);
  const uint32_t index = index_of(flow);
  unlink(index);
  index_.erase(flow->key);
  flow->in_use = false;
  free_[free_count_++] = index;
  --size_;
}

void FlowTable::touch(Flow* flow, FlowClass cls, uint64_t expires_ns) noexcept {
  const uint32_t index = index_of(flow);
  unlink(index);
  flow->flow_class = cls;
  flow->expires_ns = expires_ns;
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
  Flow& f = flows_[index];
  List& list = lists_[static_cast<int>(f.flow_class)];
  if (f.lru_prev != kNoFlow) {
    flows_[f.lru_prev].lru_next = f.lru_next;
  } else {
    list.head = f.lru_next;
  }
  if (f.lru_next != kNoFlow) {
    flows_[f.lru_next].lru_prev = f.lru_prev;
  } else {
    list.tail = f.lru_prev;
  }
  f.lru_prev = f.lru_next = kNoFlow;
  --list.count;
}

void FlowTable::push_head(uint32_t index) noexcept {
  Flow& f = flows_[index];
  List& list = lists_[static_cast<int>(f.flow_class)];
  f.lru_prev = kNoFlow;
  f.lru_next = list.head;
  if (list.head != kNoFlow) flows_[list.head].lru_prev = index;
  list.head = index;
  if (list.tail == kNoFlow) list.tail = index;
  ++list.count;
}

}  // namespace cordon::engine
