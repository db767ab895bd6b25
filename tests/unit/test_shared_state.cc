// Shared blocks: formatting, slot binding across generations, concurrency,
// and sequence-locked strings that hostile writers cannot turn into a hang.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "shared_state.h"
#include "test_blocks.h"

using namespace fpmr;

using Memory = fpmr::testing::TestBlocks;

TEST_CASE("format, adopt and nonce", "[shared]") {
    Memory m;
    auto st = m.format("00ff00ff00ff00ff00ff00ff00ff00ff");
    REQUIRE(st.valid());
    CHECK(st.writable());
    CHECK(st.nonce() == "00ff00ff00ff00ff00ff00ff00ff00ff");
    auto r = m.reader();
    CHECK(r.valid());
    CHECK_FALSE(r.writable());  // a child's view: no way to the trusted block for writing
    CHECK(r.nonce() == st.nonce());
    CHECK(r.layout() == m.layout);
    CHECK(r.writer(m.trusted.get(), m.layout.trusted_bytes).writable());
    CHECK_FALSE(r.writer(m.trusted.get(), 16).valid());
    CHECK_FALSE(SharedState::adopt(m.open.get(), 16, m.trusted.get(), m.layout.trusted_bytes).valid());
    m.open[0] ^= 0xff;  // a child overwrote the open header: still ours, the parent stamps it again
    CHECK(m.reader().valid());
    st.stamp_open_header();
    CHECK(m.open[0] == (kSharedMagic & 0xff));
    m.trusted[0] ^= 0xff;  // not our trusted block
    CHECK_FALSE(m.reader().valid());
    CHECK_FALSE(SharedState::format(m.open.get(), 10, m.trusted.get(), 10, m.layout, "x").valid());
}

TEST_CASE("adopt refuses memory whose length is not the one its header's counts give", "[shared][layout]") {
    Memory m(300, 70, 65);
    REQUIRE(m.format().valid());
    const SharedLayout& l = m.layout;
    CHECK(SharedState::adopt(m.open.get(), l.open_bytes, m.trusted.get(), l.trusted_bytes).valid());
    // One row or one slot short or long, in either block.
    CHECK_FALSE(SharedState::adopt(m.open.get(), l.open_bytes - l.child_row_stride, m.trusted.get(),
                                   l.trusted_bytes).valid());
    CHECK_FALSE(SharedState::adopt(m.open.get(), l.open_bytes + 64, m.trusted.get(),
                                   l.trusted_bytes).valid());
    CHECK_FALSE(SharedState::adopt(m.open.get(), l.open_bytes, m.trusted.get(),
                                   l.trusted_bytes - sizeof(TrustedSlot)).valid());
    CHECK_FALSE(SharedState::adopt(m.open.get(), l.open_bytes, m.trusted.get(),
                                   l.trusted_bytes + 4096).valid());
    CHECK_FALSE(SharedState::adopt(nullptr, 0, m.trusted.get(), l.trusted_bytes).valid());
    // A writer's mapping must be the same block, at the same length.
    SharedState r = m.reader();
    CHECK_FALSE(r.writer(m.trusted.get(), l.trusted_bytes - 64).valid());
    Memory other(256, 70, 65);
    REQUIRE(other.format().valid());
    CHECK_FALSE(r.writer(other.trusted.get(), other.layout.trusted_bytes).valid());

    // The trusted header's counts are what is believed: changed, they no
    // longer match the memory (the open header's do not matter).
    auto* header = reinterpret_cast<TrustedHeader*>(m.trusted.get());
    header->slot_count = 301;
    CHECK_FALSE(m.reader().valid());
    header->slot_count = 300;
    header->child_row_count = 0;
    CHECK_FALSE(m.reader().valid());
    header->child_row_count = 70;
    header->layout_version = kLayoutVersion - 1;  // an older module's blocks
    CHECK_FALSE(m.reader().valid());
    header->layout_version = kLayoutVersion;
    reinterpret_cast<SharedHeader*>(m.open.get())->slot_count = 5;
    CHECK(m.reader().valid());
    CHECK(m.reader().layout().slot_count == 300);
    // Format insists on the layout's own lengths too.
    CHECK_FALSE(SharedState::format(m.open.get(), l.open_bytes + 1, m.trusted.get(),
                                    l.trusted_bytes, l, "n").valid());
}

TEST_CASE("a layout puts every array apart, aligned, within bounds", "[shared][layout]") {
    auto l = SharedLayout::of(2000, 528, 300);
    REQUIRE(l);
    CHECK(l->slot_count == 2000);
    CHECK(l->child_row_count == 528);
    CHECK(l->release_count == 300);
    for (size_t offset : {l->open_slots, l->open_releases, l->open_child_rows, l->child_row_stride,
                          l->trusted_slots, l->trusted_releases}) {
        CHECK(offset % 64 == 0);
    }
    CHECK(l->open_slots >= sizeof(SharedHeader));
    CHECK(l->open_releases >= l->open_slots + 2000 * sizeof(ReplicaSlot));
    CHECK(l->open_child_rows >= l->open_releases + 300 * sizeof(ReleaseSlot));
    CHECK(l->child_row_stride >= (1 + 2000) * sizeof(std::atomic<int32_t>));
    CHECK(l->open_bytes == l->open_child_rows + 528 * l->child_row_stride);
    CHECK(l->trusted_slots >= sizeof(TrustedHeader));
    CHECK(l->trusted_releases >= l->trusted_slots + 2000 * sizeof(TrustedSlot));
    CHECK(l->trusted_bytes >= l->trusted_releases + 300 * sizeof(TrustedRelease));
    CHECK(l->total_bytes() == SharedLayout::bytes_of(2000, 528, 300));

    CHECK_FALSE(SharedLayout::of(0, 64, 64));
    CHECK_FALSE(SharedLayout::of(256, 0, 64));
    CHECK_FALSE(SharedLayout::of(256, 64, 0));
    CHECK_FALSE(SharedLayout::of(kMaxSlotCapacity + 1, 64, 64));
    CHECK_FALSE(SharedLayout::of(256, kMaxChildRows + 1, 64));
    CHECK_FALSE(SharedLayout::of(256, 64, kMaxReleaseCapacity + 1));
    CHECK(SharedLayout::of(kMaxSlotCapacity, kMinChildRows, kMaxReleaseCapacity));
    // Too many bytes: every slot in every row.
    CHECK_FALSE(SharedLayout::of(kMaxSlotCapacity, kMaxChildRows, 64));
    CHECK(SharedLayout::bytes_of(kMaxSlotCapacity, kMaxChildRows, 64) > kMaxSharedBytes);
}

TEST_CASE("a start sizes the blocks for twice its configuration", "[shared][layout]") {
    CHECK(child_rows_for(0) == kMinChildRows);
    CHECK(child_rows_for(16) == kMinChildRows);   // event's default ServerLimit
    CHECK(child_rows_for(256) == 2 * 256 + 16);   // prefork's
    CHECK(child_rows_for(20000) == 2 * 20000 + 16);
    CHECK(child_rows_for(size_t{1} << 40) == kMaxChildRows);

    // The module loaded but unused, or a small host: the minimums.
    auto small = layout_for({0, 0, 16});
    REQUIRE(small);
    CHECK(small->slot_count == kMinSlotCapacity);
    CHECK(small->release_count == kMinReleaseCapacity);
    CHECK(small->child_row_count == kMinChildRows);

    // 500 vhosts, two supervised replicas each (a primary and an .alt
    // member per replica), each vhost with its own release symlink.
    auto big = layout_for({2000, 500, 16});
    REQUIRE(big);
    CHECK(big->slot_count == 4000);
    CHECK(big->release_count == 1000);
    CHECK(big->child_row_count == kMinChildRows);

    // Room to grow stops at the maximum, and is given up before memory runs out.
    auto at_max = layout_for({kMaxSlotCapacity - 10, 1, 16});
    REQUIRE(at_max);
    CHECK(at_max->slot_count == kMaxSlotCapacity);
    auto tight = layout_for({5000, 1, 4000});
    REQUIRE(tight);
    CHECK(tight->slot_count == 5000);
    CHECK_FALSE(SharedLayout::of(10000, child_rows_for(4000), 2));
    // Never made: too many members, release symlinks, or bytes.
    CHECK_FALSE(layout_for({kMaxSlotCapacity + 1, 1, 16}));
    CHECK_FALSE(layout_for({4, kMaxReleaseCapacity + 1, 16}));
    CHECK_FALSE(layout_for({8000, 1, 20000}));
}

TEST_CASE("300 vhosts take a few megabytes", "[shared][layout]") {
    // 7.4 MiB under event: 3.8 of them are the request figures (eight recent
    // releases with their paths per release symlink, three duration
    // histograms and the pool status cache per member).
    // 300 vhosts x 2 supervised replicas x 2 members, a release symlink each.
    auto event = layout_for({1200, 300, 16});      // event, ServerLimit 16
    auto prefork = layout_for({1200, 300, 256});   // prefork, ServerLimit 256
    REQUIRE(event);
    REQUIRE(prefork);
    CHECK(event->total_bytes() < (size_t{8} << 20));
    CHECK(prefork->total_bytes() < (size_t{12} << 20));  // 11.7 MiB, most of it the 256 child rows
}

TEST_CASE("a key keeps its slot and its state across generations", "[shared]") {
    Memory m;
    auto st = m.format();
    int a = st.claim("v|a", 1, ReplicaState::Ready);
    int b = st.claim("v|b", 1, ReplicaState::Ready);
    REQUIRE(a >= 0);
    REQUIRE(b >= 0);
    CHECK(a != b);
    st.trusted_rw(a).lifecycle = static_cast<uint32_t>(ReplicaState::Draining);
    st.slot(a).in_flight = 3;
    st.slot(a).admin_drained = 1;

    // Graceful restart: generation 2 keeps a, drops b, adds c.
    CHECK(st.claim("v|a", 2, ReplicaState::Ready) == a);
    int c = st.claim("v|c", 2, ReplicaState::Ready);
    st.retire_unclaimed(2);
    CHECK(st.trusted(a).lifecycle.load() == static_cast<uint32_t>(ReplicaState::Draining));
    CHECK(st.slot(a).in_flight.load() == 3);
    CHECK(st.slot(a).admin_drained.load() == 1);  // the operator's drain outlives the restart
    CHECK(c != a);
    CHECK(c != b);  // a never-used slot is preferred over a just-retired one
    CHECK(st.trusted(b).in_use.load() == 0);

    // b comes back later: it gets a fresh slot, state and counters reset.
    int b2 = st.claim("v|b", 3, ReplicaState::Ready);
    CHECK(st.slot(b2).in_flight.load() == 0);
    CHECK(st.trusted(b2).lifecycle.load() == static_cast<uint32_t>(ReplicaState::Ready));

    st.reset_in_flight();
    CHECK(st.slot(a).in_flight.load() == 0);
}

TEST_CASE("only a writer claims slots", "[shared]") {
    Memory m;
    m.format();
    auto r = m.reader();
    CHECK(r.claim("v|a", 1, ReplicaState::Ready) == -1);
    CHECK(r.claim_release("/srv/a/current") == -1);
}

TEST_CASE("the state steering obeys is derived from parts with one writer each", "[shared]") {
    using S = ReplicaState;
    using H = HealthState;
    CHECK(effective_state(S::Ready, H::Unknown, false, 0) == S::Ready);
    CHECK(effective_state(S::Ready, H::Passing, false, 0) == S::Ready);
    CHECK(effective_state(S::Ready, H::Failing, false, 0) == S::Failed);
    CHECK(effective_state(S::Ready, H::Passing, true, 0) == S::Draining);
    CHECK(effective_state(S::Ready, H::Passing, false, 5) == S::Failed);
    CHECK(effective_state(S::Starting, H::Passing, true, 0) == S::Starting);
    CHECK(effective_state(S::Stopped, H::Failing, false, 0) == S::Stopped);
    Memory m;
    auto st = m.format();
    int a = st.claim("v|a", 1, ReplicaState::Ready);
    CHECK(st.state_of(a) == S::Ready);
    st.slot(a).admin_drained = 1;
    CHECK(st.state_of(a) == S::Draining);
    st.slot(a).admin_drained = 0;
    st.trusted_rw(a).health = static_cast<uint32_t>(H::Failing);
    CHECK(st.state_of(a) == S::Failed);
}

TEST_CASE("slots run out cleanly and retired ones are reused", "[shared]") {
    Memory m;
    auto st = m.format();
    for (size_t i = 0; i < m.layout.slot_count; ++i) REQUIRE(st.claim("k" + std::to_string(i), 1, ReplicaState::Ready) >= 0);
    CHECK(st.claim("one-too-many", 1, ReplicaState::Ready) == -1);
    CHECK(st.claim(std::string(kSlotKeyLength, 'x'), 1, ReplicaState::Ready) == -1);
    st.claim("k0", 2, ReplicaState::Ready);
    st.retire_unclaimed(2);
    CHECK(st.claim("new", 2, ReplicaState::Ready) >= 0);
}

TEST_CASE("a replica's members are claimed together up to the capacity, or not at all", "[shared][layout]") {
    Memory m(2000, kMinChildRows, kMinReleaseCapacity);
    auto st = m.format();
    auto pair = [](int n) {
        return std::vector<SharedState::Claim>{
            {"v" + std::to_string(n) + "|a", ReplicaState::Starting},
            {"v" + std::to_string(n) + "|a.alt", ReplicaState::Stopped}};
    };
    // 1000 replicas of two members fill 2000 slots, each slot once.
    std::vector<bool> taken(2000, false);
    for (int n = 0; n < 1000; ++n) {
        auto slots = st.claim_together(pair(n), 1);
        REQUIRE(slots);
        REQUIRE(slots->size() == 2);
        for (int slot : *slots) {
            REQUIRE(slot >= 0);
            REQUIRE(slot < 2000);
            CHECK_FALSE(taken[slot]);
            taken[slot] = true;
        }
        CHECK(st.trusted((*slots)[0]).lifecycle.load() == static_cast<uint32_t>(ReplicaState::Starting));
        CHECK(st.trusted((*slots)[1]).lifecycle.load() == static_cast<uint32_t>(ReplicaState::Stopped));
    }
    CHECK(st.free_slots() == 0);
    // Full: a new replica finds no room and changes nothing; the bound ones
    // are found again (the next generation of the same configuration).
    CHECK_FALSE(st.claim_together(pair(1000), 2));
    CHECK(st.free_slots() == 0);
    auto again = st.claim_together(pair(7), 2);
    REQUIRE(again);
    CHECK(st.trusted((*again)[0]).claimed_generation.load() == 2);
    // A mix of a bound key and a new one fails whole: the bound one is not
    // marked as claimed by a generation that did not get it.
    auto mixed = pair(8);
    mixed[1].key = "v8|a.moved";
    CHECK_FALSE(st.claim_together(mixed, 3));
    CHECK(st.trusted(st.claim_together(pair(8), 2)->front()).claimed_generation.load() == 2);

    // Generation 2 kept only replicas 7 and 8: the others are retired at its
    // end, and a generation after it reuses their slots.
    st.retire_unclaimed(2);
    CHECK(st.free_slots() == 1996);
    CHECK(st.claim_together(pair(1000), 3));
    // Keys that cannot be keys are refused.
    CHECK_FALSE(st.claim_together({{"", ReplicaState::Ready}}, 3));
    CHECK_FALSE(st.claim_together({{std::string(kSlotKeyLength, 'k'), ReplicaState::Ready}}, 3));
    CHECK_FALSE(m.reader().claim_together(pair(2000), 3));  // not a writer
}

TEST_CASE("new keys take never-used slots first, then the one retired longest ago", "[shared][layout]") {
    Memory m(4, kMinChildRows, kMinReleaseCapacity);
    auto st = m.format();
    int a = st.claim("a", 1, ReplicaState::Ready);
    int b = st.claim("b", 1, ReplicaState::Ready);
    st.retire_unclaimed(2);  // a and b left the configuration in generation 2
    int c = st.claim("c", 3, ReplicaState::Ready);
    int d = st.claim("d", 3, ReplicaState::Ready);
    CHECK(c != a);  // never-used slots while there are any
    CHECK(c != b);
    CHECK(d != a);
    CHECK(d != b);
    CHECK(st.free_slots() == 2);
    // Every slot has been used now. As if a had been kept one generation
    // longer than b: b was retired longest ago.
    st.trusted_rw(a).claimed_generation = 2;
    auto slots = st.claim_together({{"e", ReplicaState::Ready}}, 4);
    REQUIRE(slots);
    CHECK(slots->front() == b);
    CHECK(st.claim("f", 4, ReplicaState::Ready) == a);
    CHECK(st.claim("g", 4, ReplicaState::Ready) == -1);
}

TEST_CASE("child rows are as wide as the block has slots", "[shared][children]") {
    Memory m(2000, 80, kMinReleaseCapacity);
    auto st = m.format();
    std::vector<int> slots;
    for (int i = 0; i < 2000; ++i) slots.push_back(st.claim("k" + std::to_string(i), 1, ReplicaState::Ready));
    int last = slots.back();
    REQUIRE(last == 1999);
    int first_row = st.claim_child_row(700);
    int second_row = st.claim_child_row(701);
    REQUIRE(first_row == 0);
    REQUIRE(second_row == 1);
    // The last count of one row is not the next row's owner.
    for (int i = 0; i < 5; ++i) st.begin_attempt(last, first_row);
    st.begin_attempt(last, second_row);
    st.begin_attempt(300, first_row);
    CHECK(st.child_row(first_row).in_flight[last].load() == 5);
    CHECK(st.child_row(second_row).owner_pid.load() == 701);
    CHECK(st.child_row(second_row).in_flight[last].load() == 1);
    CHECK(st.slot(last).in_flight.load() == 6);
    auto released = st.release_child(700);
    CHECK(released.requests == 6);
    CHECK(st.slot(last).in_flight.load() == 1);
    CHECK(st.slot(300).in_flight.load() == 0);
    CHECK(st.child_row(second_row).owner_pid.load() == 701);
    // Every row is usable (700's was freed: 79 more), and the last one ends
    // where the block does.
    for (int pid = 702; pid < 702 + 79; ++pid) REQUIRE(st.claim_child_row(pid) >= 0);
    CHECK(st.claim_child_row(9999) == -1);
    ChildRow end = st.child_row(79);
    end.in_flight[1999] = 3;
    CHECK(reinterpret_cast<unsigned char*>(&end.in_flight[1999]) + sizeof(int32_t) <=
          m.open.get() + m.layout.open_bytes);
    st.reset_in_flight();
    CHECK(st.child_row(79).in_flight[1999].load() == 0);
    CHECK(st.child_row(79).owner_pid.load() == 0);
}

TEST_CASE("in-flight counting is exact under concurrent threads", "[shared]") {
    Memory m;
    auto st = m.format();
    int slot = st.claim("v|a", 1, ReplicaState::Ready);
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 100000; ++i) {
                st.slot(slot).in_flight.fetch_add(1);
                st.slot(slot).in_flight.fetch_sub(1);
            }
        });
    }
    for (auto& t : threads) t.join();
    CHECK(st.slot(slot).in_flight.load() == 0);
}

TEST_CASE("a dead child's share of the in-flight counts is released, nobody else's", "[shared][children]") {
    Memory m;
    auto st = m.format();
    int a = st.claim("v|a", 1, ReplicaState::Ready);
    int b = st.claim("v|b", 1, ReplicaState::Ready);
    int killed = st.claim_child_row(101);
    int survivor = st.claim_child_row(102);
    REQUIRE(killed >= 0);
    REQUIRE(survivor >= 0);
    CHECK(killed != survivor);
    for (int i = 0; i < 3; ++i) st.begin_attempt(a, killed);
    st.begin_attempt(b, killed);
    st.begin_attempt(b, survivor);
    st.begin_attempt(b, survivor);
    st.end_attempt(a, killed);
    CHECK(st.slot(a).in_flight.load() == 2);
    CHECK(st.slot(b).in_flight.load() == 3);
    CHECK(st.child_row(killed).in_flight[a].load() == 2);

    auto released = st.release_child(101);  // the parent: child 101 died mid-request
    CHECK(released.rows == 1);
    CHECK(released.requests == 3);
    CHECK(released.complete);
    CHECK(st.slot(a).in_flight.load() == 0);
    CHECK(st.slot(b).in_flight.load() == 2);  // the survivor's two stay
    CHECK(st.child_row(killed).owner_pid.load() == 0);
    CHECK(st.release_child(101).rows == 0);  // told twice: nothing more to give back

    // The freed row is taken again, and starts from zero.
    CHECK(st.claim_child_row(103) == killed);
    CHECK(st.child_row(killed).in_flight[a].load() == 0);
    st.end_attempt(b, survivor);
    st.end_attempt(b, survivor);
    CHECK(st.slot(b).in_flight.load() == 0);
    CHECK(st.release_child(102).requests == 0);
}

TEST_CASE("without a row only the aggregate counts", "[shared][children]") {
    Memory m;
    auto st = m.format();
    int a = st.claim("v|a", 1, ReplicaState::Ready);
    st.begin_attempt(a, -1);
    CHECK(st.slot(a).in_flight.load() == 1);
    st.end_attempt(a, -1);
    CHECK(st.slot(a).in_flight.load() == 0);
}

TEST_CASE("child rows run out cleanly and only for real pids", "[shared][children]") {
    Memory m;
    auto st = m.format();
    CHECK(st.claim_child_row(0) == -1);
    CHECK(st.claim_child_row(-5) == -1);
    CHECK(m.reader().claim_child_row(7) >= 0);  // a child claims its own row: no writer needed
    for (size_t i = 1; i < m.layout.child_row_count; ++i) REQUIRE(st.claim_child_row(1000 + static_cast<int32_t>(i)) >= 0);
    CHECK(st.claim_child_row(99999) == -1);
    CHECK(st.release_child(1001).rows == 1);
    CHECK(st.claim_child_row(99999) >= 0);
}

TEST_CASE("forged rows never drive an aggregate below zero or overflow it", "[shared][children]") {
    Memory m;
    auto st = m.format();
    int a = st.claim("v|a", 1, ReplicaState::Ready);
    int b = st.claim("v|b", 1, ReplicaState::Ready);
    int c = st.claim("v|c", 1, ReplicaState::Ready);
    int row = st.claim_child_row(200);
    st.slot(a).in_flight = 2;
    st.child_row(row).in_flight[a] = INT32_MAX;  // more than the aggregate holds
    st.slot(b).in_flight = 5;
    st.child_row(row).in_flight[b] = -7;          // negative: nothing to give back
    st.slot(c).in_flight = INT64_MIN;                     // a forged aggregate
    st.child_row(row).in_flight[c] = 1;
    auto released = st.release_child(200);
    CHECK(released.requests == int64_t{INT32_MAX} + 1);
    CHECK(st.slot(a).in_flight.load() == 0);
    CHECK(st.slot(b).in_flight.load() == 5);
    CHECK(st.slot(c).in_flight.load() == 0);
    for (size_t i = 0; i < m.layout.slot_count; ++i) CHECK(st.child_row(row).in_flight[i].load() == 0);
}

TEST_CASE("rows of children gone unannounced are released at a restart", "[shared][children]") {
    Memory m;
    auto st = m.format();
    int a = st.claim("v|a", 1, ReplicaState::Ready);
    int gone = st.claim_child_row(301);
    int live = st.claim_child_row(302);
    st.begin_attempt(a, gone);
    st.begin_attempt(a, live);
    st.child_row(st.claim_child_row(303)).owner_pid = -4;  // forged owner
    auto released = st.release_gone_children([](int32_t pid) { return pid == 302; });
    CHECK(released.rows == 2);
    CHECK(released.requests == 1);
    CHECK(st.slot(a).in_flight.load() == 1);
    CHECK(st.child_row(gone).owner_pid.load() == 0);
    CHECK(st.child_row(live).owner_pid.load() == 302);
}

TEST_CASE("a restart with no child alive frees every row; a reused slot starts clean", "[shared][children]") {
    Memory m;
    auto st = m.format();
    int a = st.claim("v|a", 1, ReplicaState::Ready);
    int row = st.claim_child_row(400);
    st.begin_attempt(a, row);
    st.reset_in_flight();
    CHECK(st.slot(a).in_flight.load() == 0);
    CHECK(st.child_row(row).owner_pid.load() == 0);
    CHECK(st.child_row(row).in_flight[a].load() == 0);

    // Slot a retired and given to another replica: an old child's share of
    // the replica it served before is not the new one's.
    row = st.claim_child_row(401);
    st.begin_attempt(a, row);
    for (size_t i = 0; i < m.layout.slot_count; ++i) st.claim("fill" + std::to_string(i), 2, ReplicaState::Ready);
    st.retire_unclaimed(3);
    int reused = st.claim("v|z", 3, ReplicaState::Ready);
    REQUIRE(reused == a);
    CHECK(st.child_row(row).in_flight[reused].load() == 0);
}

TEST_CASE("releasing a dead child is exact while live children keep counting", "[shared][children]") {
    Memory m;
    auto st = m.format();
    int a = st.claim("v|a", 1, ReplicaState::Ready);
    int dead = st.claim_child_row(500);
    for (int i = 0; i < 50; ++i) st.begin_attempt(a, dead);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        int row = st.claim_child_row(600 + t);
        threads.emplace_back([&st, a, row] {
            for (int i = 0; i < 100000; ++i) {
                st.begin_attempt(a, row);
                st.end_attempt(a, row);
            }
            st.begin_attempt(a, row);  // one left open by each live child
        });
    }
    auto released = st.release_child(500);
    for (auto& t : threads) t.join();
    CHECK(released.requests == 50);
    CHECK(released.complete);
    CHECK(st.slot(a).in_flight.load() == 4);
}

TEST_CASE("release slots are found again by their symlink path", "[shared]") {
    Memory m;
    auto st = m.format();
    int a = st.claim_release("/srv/a/current");
    int b = st.claim_release("/srv/b/current");
    REQUIRE(a >= 0);
    REQUIRE(b >= 0);
    CHECK(a != b);
    CHECK(st.claim_release("/srv/a/current") == a);
    CHECK(st.find_release("/srv/a/current") == a);
    CHECK(st.find_release("/srv/nowhere") == -1);
    for (size_t i = 2; i < m.layout.release_count; ++i) st.claim_release("/x" + std::to_string(i));
    CHECK(st.claim_release("/one/too/many") == -1);
}

TEST_CASE("a slot's release is never read torn while the supervisor writes it", "[shared]") {
    Memory m;
    auto st = m.format();
    int slot = st.claim("v|a", 1, ReplicaState::Ready);
    const std::string r1 = "/srv/app/releases/2026-11-23T0801";
    const std::string r2 = "/srv/app/releases/r2-" + std::string(100, 'x');
    REQUIRE(write_slot_release(st.trusted_rw(slot), r1));
    CHECK(read_slot_release(st.trusted(slot)) == r1);
    CHECK(st.trusted(slot).release_hash.load() == release_hash(r1));
    CHECK(release_hash("") == 0);
    CHECK(release_hash(r1) != release_hash(r2));
    std::atomic<bool> stop{false};
    std::atomic<long> torn{0}, reads{0};
    std::thread reader([&] {
        while (!stop) {
            std::optional<std::string> r = read_slot_release(st.trusted(slot));
            if (r && *r != r1 && *r != r2) ++torn;
            ++reads;
        }
    });
    for (int i = 0; i < 20000; ++i) write_slot_release(st.trusted_rw(slot), i % 2 ? r1 : r2);
    stop = true;
    reader.join();
    CHECK(torn == 0);
    CHECK(reads > 0);
}

TEST_CASE("several writers of one string never interleave", "[shared]") {
    std::atomic<uint32_t> seq{0};
    char buffer[kReleaseLength] = {};
    const std::string a(300, 'a'), b(200, 'b');
    std::atomic<bool> stop{false};
    std::atomic<long> torn{0}, refused{0};
    auto writer = [&](const std::string& text) {
        while (!stop) {
            if (!write_locked_string(seq, buffer, sizeof buffer, text)) ++refused;
        }
    };
    std::thread w1(writer, a), w2(writer, b);
    for (int i = 0; i < 20000; ++i) {
        std::optional<std::string> r = read_locked_string(seq, buffer, sizeof buffer);
        if (r && *r != a && *r != b && !r->empty()) ++torn;
    }
    stop = true;
    w1.join();
    w2.join();
    CHECK(torn == 0);
    CHECK((seq.load() & 1u) == 0);
}

TEST_CASE("a counter left odd makes readers and writers give up, never hang", "[shared]") {
    std::atomic<uint32_t> seq{0};
    char buffer[kReleaseLength] = {};
    REQUIRE(write_locked_string(seq, buffer, sizeof buffer, "/srv/app/releases/r1"));
    seq.store(seq.load() + 1);  // a writer died mid-write (or memory was forged)
    auto started = std::chrono::steady_clock::now();
    CHECK_FALSE(read_locked_string(seq, buffer, sizeof buffer).has_value());
    CHECK_FALSE(write_locked_string(seq, buffer, sizeof buffer, "/srv/app/releases/r2"));
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(2));
    uint32_t stuck = seq.load();
    CHECK_FALSE(clear_stuck_string(seq, stuck + 1, buffer, sizeof buffer));  // not what it is
    REQUIRE(clear_stuck_string(seq, stuck, buffer, sizeof buffer));
    CHECK(read_locked_string(seq, buffer, sizeof buffer) == std::string());
    CHECK(write_locked_string(seq, buffer, sizeof buffer, "/srv/app/releases/r2"));
    CHECK(read_locked_string(seq, buffer, sizeof buffer) == std::string("/srv/app/releases/r2"));
}
