// Shared blocks: formatting, slot binding across generations, concurrency,
// and sequence-locked strings that hostile writers cannot turn into a hang.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "shared_state.h"

using namespace fpmr;

namespace {
struct Memory {
    std::unique_ptr<unsigned char[]> open{new unsigned char[SharedState::bytes_needed()]};
    std::unique_ptr<unsigned char[]> trusted{new unsigned char[SharedState::trusted_bytes_needed()]};
    SharedState format(std::string_view nonce = "n") {
        return SharedState::format(open.get(), SharedState::bytes_needed(), trusted.get(),
                                   SharedState::trusted_bytes_needed(), nonce);
    }
    SharedState reader() {
        return SharedState::adopt(open.get(), SharedState::bytes_needed(), trusted.get(),
                                  SharedState::trusted_bytes_needed());
    }
};
}  // namespace

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
    CHECK(r.writer(m.trusted.get(), SharedState::trusted_bytes_needed()).writable());
    CHECK_FALSE(r.writer(m.trusted.get(), 16).valid());
    CHECK_FALSE(SharedState::adopt(m.open.get(), 16, m.trusted.get(), SharedState::trusted_bytes_needed()).valid());
    m.open[0] ^= 0xff;  // a child overwrote the open header: still ours, the parent stamps it again
    CHECK(m.reader().valid());
    st.stamp_open_header();
    CHECK(m.open[0] == (kSharedMagic & 0xff));
    m.trusted[0] ^= 0xff;  // not our trusted block
    CHECK_FALSE(m.reader().valid());
    CHECK_FALSE(SharedState::format(m.open.get(), 10, m.trusted.get(), 10, "x").valid());
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
    for (size_t i = 0; i < kMaxSlots; ++i) REQUIRE(st.claim("k" + std::to_string(i), 1, ReplicaState::Ready) >= 0);
    CHECK(st.claim("one-too-many", 1, ReplicaState::Ready) == -1);
    CHECK(st.claim(std::string(kSlotKeyLength, 'x'), 1, ReplicaState::Ready) == -1);
    st.claim("k0", 2, ReplicaState::Ready);
    st.retire_unclaimed(2);
    CHECK(st.claim("new", 2, ReplicaState::Ready) >= 0);
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
    CHECK(st.block()->children[killed].in_flight[a].load() == 2);

    auto released = st.release_child(101);  // the parent: child 101 died mid-request
    CHECK(released.rows == 1);
    CHECK(released.requests == 3);
    CHECK(released.complete);
    CHECK(st.slot(a).in_flight.load() == 0);
    CHECK(st.slot(b).in_flight.load() == 2);  // the survivor's two stay
    CHECK(st.block()->children[killed].owner_pid.load() == 0);
    CHECK(st.release_child(101).rows == 0);  // told twice: nothing more to give back

    // The freed row is taken again, and starts from zero.
    CHECK(st.claim_child_row(103) == killed);
    CHECK(st.block()->children[killed].in_flight[a].load() == 0);
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
    for (size_t i = 1; i < kMaxChildRows; ++i) REQUIRE(st.claim_child_row(1000 + static_cast<int32_t>(i)) >= 0);
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
    st.block()->children[row].in_flight[a] = INT32_MAX;  // more than the aggregate holds
    st.slot(b).in_flight = 5;
    st.block()->children[row].in_flight[b] = -7;          // negative: nothing to give back
    st.slot(c).in_flight = INT64_MIN;                     // a forged aggregate
    st.block()->children[row].in_flight[c] = 1;
    auto released = st.release_child(200);
    CHECK(released.requests == int64_t{INT32_MAX} + 1);
    CHECK(st.slot(a).in_flight.load() == 0);
    CHECK(st.slot(b).in_flight.load() == 5);
    CHECK(st.slot(c).in_flight.load() == 0);
    for (size_t i = 0; i < kMaxSlots; ++i) CHECK(st.block()->children[row].in_flight[i].load() == 0);
}

TEST_CASE("rows of children gone unannounced are released at a restart", "[shared][children]") {
    Memory m;
    auto st = m.format();
    int a = st.claim("v|a", 1, ReplicaState::Ready);
    int gone = st.claim_child_row(301);
    int live = st.claim_child_row(302);
    st.begin_attempt(a, gone);
    st.begin_attempt(a, live);
    st.block()->children[st.claim_child_row(303)].owner_pid = -4;  // forged owner
    auto released = st.release_gone_children([](int32_t pid) { return pid == 302; });
    CHECK(released.rows == 2);
    CHECK(released.requests == 1);
    CHECK(st.slot(a).in_flight.load() == 1);
    CHECK(st.block()->children[gone].owner_pid.load() == 0);
    CHECK(st.block()->children[live].owner_pid.load() == 302);
}

TEST_CASE("a restart with no child alive frees every row; a reused slot starts clean", "[shared][children]") {
    Memory m;
    auto st = m.format();
    int a = st.claim("v|a", 1, ReplicaState::Ready);
    int row = st.claim_child_row(400);
    st.begin_attempt(a, row);
    st.reset_in_flight();
    CHECK(st.slot(a).in_flight.load() == 0);
    CHECK(st.block()->children[row].owner_pid.load() == 0);
    CHECK(st.block()->children[row].in_flight[a].load() == 0);

    // Slot a retired and given to another replica: an old child's share of
    // the replica it served before is not the new one's.
    row = st.claim_child_row(401);
    st.begin_attempt(a, row);
    for (size_t i = 0; i < kMaxSlots; ++i) st.claim("fill" + std::to_string(i), 2, ReplicaState::Ready);
    st.retire_unclaimed(3);
    int reused = st.claim("v|z", 3, ReplicaState::Ready);
    REQUIRE(reused == a);
    CHECK(st.block()->children[row].in_flight[reused].load() == 0);
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
    for (size_t i = 2; i < kMaxReleaseSlots; ++i) st.claim_release("/x" + std::to_string(i));
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
