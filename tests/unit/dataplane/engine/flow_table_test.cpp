#include "dataplane/engine/flow_table.h"

#include <gtest/gtest.h>

#include <vector>

namespace cordon::engine {
namespace {

FlowKey key(uint16_t port) {
  FlowKey k;
  k.device_ip = IpAddress::v4(0x0a32000a).bytes;
  k.peer_ip = IpAddress::v4(0x0a320014).bytes;
  k.family = 4;
  k.protocol = 6;
  k.device_port = port;
  k.peer_port = 104;
  return k;
}

constexpr uint64_t kLater = 1'000'000'000;

TEST(FlowTable, InsertFindErase) {
  FlowTable t(8);
  Flow* f = t.insert(key(1));
  ASSERT_NE(f, nullptr);
  t.touch(f, FlowClass::embryonic, kLater);
  EXPECT_EQ(t.find(key(1), 0), f);
  EXPECT_EQ(t.find(key(2), 0), nullptr);
  EXPECT_EQ(t.size(), 1u);
  t.erase(f);
  EXPECT_EQ(t.find(key(1), 0), nullptr);
  EXPECT_EQ(t.size(), 0u);
}

// The hint prefetch_flow() returns for a burst lookup is only where to look first: find()
// must not trust it after the entry it named was erased (the Flow entry still holds the
// old key) or when it names another flow's slot.
TEST(FlowTable, FindVerifiesTheHintFromPrefetch) {
  FlowTable t(64);
  Flow* first = t.insert(key(1));
  t.touch(first, FlowClass::established, kLater);
  const uint64_t hash = flow_key_hash(key(1));
  const uint8_t hint = t.prefetch_flow(hash);
  ASSERT_NE(hint, FlowTable::kNoHint);
  EXPECT_EQ(t.find(key(1), hash, hint, 0), first);
  EXPECT_EQ(t.prefetch_flow(flow_key_hash(key(2))), FlowTable::kAbsent);

  t.erase(first);
  EXPECT_EQ(t.find(key(1), hash, hint, 0), nullptr);

  for (uint16_t p = 2; p < 40; ++p) t.touch(t.insert(key(p)), FlowClass::established, kLater);
  Flow* again = t.insert(key(1));
  t.touch(again, FlowClass::established, kLater);
  // Any slot number as hint, right or wrong, finds exactly the flow of the key.
  for (uint16_t p = 1; p < 41; ++p) {
    const uint64_t h = flow_key_hash(key(p));
    const Flow* expected = p < 40 ? t.find(key(p), 0) : nullptr;
    ASSERT_TRUE(p == 40 || expected != nullptr);
    for (unsigned wrong = 0; wrong < 8; ++wrong) {
      EXPECT_EQ(t.find(key(p), h, static_cast<uint8_t>(wrong), 0), expected) << p << " " << wrong;
    }
    EXPECT_EQ(t.find(key(p), h, FlowTable::kNoHint, 0), expected);
  }
  EXPECT_EQ(t.find(key(1), hash, hint, 0), again);
}

// The engine classifies the packets whose key prefetch_flow() calls absent as new flows
// before judging them, so a flow that overflowed past its home bucket (full when it was
// inserted) must never be called absent.
TEST(FlowTable, PrefetchCallsAbsentOnlyKeysNoBucketCanHold) {
  FlowTable t(4096);
  // Twelve keys with one home bucket, which holds ten: two overflow to the next bucket.
  const size_t home = t.home_bucket(flow_key_hash(key(0)));
  std::vector<uint16_t> same_home;
  for (uint16_t p = 0; same_home.size() < 12; ++p) {
    if (t.home_bucket(flow_key_hash(key(p))) == home) same_home.push_back(p);
  }
  for (uint16_t p : same_home) t.touch(t.insert(key(p)), FlowClass::established, kLater);
  unsigned overflowed = 0;
  for (uint16_t p : same_home) {
    const uint8_t hint = t.prefetch_flow(flow_key_hash(key(p)));
    EXPECT_NE(hint, FlowTable::kAbsent) << p;
    if (hint == FlowTable::kNoHint) ++overflowed;
  }
  EXPECT_EQ(overflowed, 2u);
  // A missing key of that bucket may have overflowed too; of another bucket, it is absent.
  uint16_t missing = same_home.back() + 1;
  while (t.home_bucket(flow_key_hash(key(missing))) != home) ++missing;
  EXPECT_EQ(t.prefetch_flow(flow_key_hash(key(missing))), FlowTable::kNoHint);
  while (t.home_bucket(flow_key_hash(key(missing))) == home ||
         t.home_bucket(flow_key_hash(key(missing))) == home + 1) {
    ++missing;
  }
  EXPECT_EQ(t.prefetch_flow(flow_key_hash(key(missing))), FlowTable::kAbsent);
}

// Expiry times are kept in whole grains (~67 ms), rounded up: tests below use them.
constexpr uint64_t kGrain = FlowTable::kExpiryGrain;

TEST(FlowTable, ExpiredEntryIsGoneOnLookup) {
  FlowTable t(8);
  Flow* f = t.insert(key(1));
  t.touch(f, FlowClass::established, 100 * kGrain);
  EXPECT_EQ(t.find(key(1), 100 * kGrain - 1), f);
  EXPECT_EQ(t.find(key(1), 100 * kGrain), nullptr);
  EXPECT_EQ(t.size(), 0u);
}

TEST(FlowTable, ExpiryIsRoundedUpToTheGrainNeverDown) {
  FlowTable t(8);
  Flow* f = t.insert(key(1));
  t.touch(f, FlowClass::established, 100 * kGrain + 1);  // lives to the next grain
  EXPECT_EQ(f->expires_ns, 101 * kGrain);
  EXPECT_EQ(t.find(key(1), 101 * kGrain - 1), f);
  // Later packets within the same grain leave the stored expiry as it is; one past it
  // moves it on.
  t.touch(f, FlowClass::established, 100 * kGrain + kGrain / 2);
  EXPECT_EQ(f->expires_ns, 101 * kGrain);
  t.touch(f, FlowClass::established, 101 * kGrain + 1);
  EXPECT_EQ(f->expires_ns, 102 * kGrain);
  EXPECT_EQ(t.find(key(1), 102 * kGrain - 1), f);
  EXPECT_EQ(t.find(key(1), 102 * kGrain), nullptr);
}

TEST(FlowTable, ExpireRemovesColdEntriesWithinBudget) {
  FlowTable t(16);
  for (uint16_t p = 0; p < 10; ++p) {
    t.touch(t.insert(key(p)), FlowClass::embryonic, (100 + p) * kGrain);
  }
  EXPECT_EQ(t.expire(105 * kGrain, 3), 3u);  // budget
  EXPECT_EQ(t.size(), 7u);
  EXPECT_EQ(t.expire(105 * kGrain, 100), 3u);  // ports 3, 4, 5 left to expire at <= 105
  EXPECT_EQ(t.size(), 4u);
  EXPECT_NE(t.find(key(6), 105 * kGrain), nullptr);
}

TEST(FlowTable, FullTableEvictsClosingThenEmbryonicNeverEstablished) {
  FlowTable t(4);
  t.touch(t.insert(key(1)), FlowClass::established, kLater);
  t.touch(t.insert(key(2)), FlowClass::established, kLater);
  t.touch(t.insert(key(3)), FlowClass::embryonic, kLater);
  t.touch(t.insert(key(4)), FlowClass::closing, kLater);
  // Full: the closing flow goes first.
  // (A new entry is live once touched: the engine always touches it right away.)
  Flow* five = t.insert(key(5));
  ASSERT_NE(five, nullptr);
  t.touch(five, FlowClass::established, kLater);
  EXPECT_EQ(t.find(key(4), 0), nullptr);
  // Then the embryonic one.
  Flow* six = t.insert(key(6));
  ASSERT_NE(six, nullptr);
  t.touch(six, FlowClass::established, kLater);
  EXPECT_EQ(t.find(key(3), 0), nullptr);
  // All established: refused, nothing evicted.
  EXPECT_EQ(t.insert(key(7)), nullptr);
  for (int p : {1, 2, 5, 6}) EXPECT_NE(t.find(key(static_cast<uint16_t>(p)), 0), nullptr) << p;
  EXPECT_EQ(t.evictions(), 2u);
}

TEST(FlowTable, EvictsLeastRecentlyUsedEmbryonicFirst) {
  FlowTable t(3);
  t.touch(t.insert(key(1)), FlowClass::embryonic, kLater);
  t.touch(t.insert(key(2)), FlowClass::embryonic, kLater);
  t.touch(t.insert(key(3)), FlowClass::embryonic, kLater);
  t.touch(t.find(key(1), 0), FlowClass::embryonic, kLater);  // 2 is now the coldest
  t.touch(t.insert(key(4)), FlowClass::embryonic, kLater);
  EXPECT_EQ(t.find(key(2), 0), nullptr);
  EXPECT_NE(t.find(key(1), 0), nullptr);
}

TEST(FlowTable, LookupEndsWhenEveryBucketHasOverflowed) {
  // Every bucket's overflow count is non-zero once an entry has probed past each of them,
  // and stays so while those entries live, however empty the buckets are since: a lookup
  // of an absent key must still end (it once went round the index forever; a small
  // table near capacity got there in the bench's every-packet-a-new-flow run).
  FlowTable t(64);
  const size_t buckets = t.bucket_count();
  uint16_t next_port = 0;
  auto keys_homed_at = [&](size_t bucket, int count) {
    std::vector<uint16_t> ports;
    for (; static_cast<int>(ports.size()) < count; ++next_port) {
      if (t.home_bucket(flow_key_hash(key(next_port))) == bucket) ports.push_back(next_port);
    }
    return ports;
  };
  for (size_t b = 0; b < buckets; ++b) {
    // One more than a bucket holds: the last one probes past bucket b, whatever else
    // is in it.
    const std::vector<uint16_t> ports = keys_homed_at(b, 11);
    for (uint16_t p : ports) t.touch(t.insert(key(p)), FlowClass::embryonic, kLater);
    for (size_t i = 0; i + 1 < ports.size(); ++i) t.erase(t.find(key(ports[i]), 0));
  }
  EXPECT_EQ(t.size(), buckets);
  EXPECT_EQ(t.find(key(next_port), 0), nullptr);
  const std::vector<uint16_t> absent = keys_homed_at(3, 1);
  EXPECT_EQ(t.find(key(absent[0]), 0), nullptr);
}

TEST(FlowTable, ChurnAtCapacityNeverRehashes) {
  // Inserts must never allocate on the worker: the reserved hash map keeps its buckets
  // through any amount of churn at full capacity.
  FlowTable t(1024);
  for (uint16_t p = 0; p < 1024; ++p) t.touch(t.insert(key(p)), FlowClass::embryonic, kLater);
  const size_t buckets = t.bucket_count();
  for (uint32_t round = 0; round < 200'000; ++round) {
    const auto p = static_cast<uint16_t>(1024 + round % 60000);
    Flow* f = t.insert(key(p));  // evicts the coldest embryonic flow
    ASSERT_NE(f, nullptr);
    t.touch(f, FlowClass::embryonic, kLater);
  }
  EXPECT_EQ(t.size(), 1024u);
  EXPECT_EQ(t.bucket_count(), buckets);
}

}  // namespace
}  // namespace cordon::engine
