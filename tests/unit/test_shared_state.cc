// Shared block: formatting, slot binding across generations, concurrency.
#include <catch2/catch.hpp>

#include <memory>
#include <thread>
#include <vector>

#include "shared_state.h"

using namespace fpmr;

namespace {
struct Memory {
    std::unique_ptr<unsigned char[]> bytes{new unsigned char[SharedState::bytes_needed()]};
    void* data() { return bytes.get(); }
};
}  // namespace

TEST_CASE("format, adopt and nonce", "[shared]") {
    Memory m;
    auto st = SharedState::format(m.data(), SharedState::bytes_needed(), "00ff00ff00ff00ff00ff00ff00ff00ff");
    REQUIRE(st.valid());
    CHECK(st.nonce() == "00ff00ff00ff00ff00ff00ff00ff00ff");
    CHECK(SharedState::adopt(m.data(), SharedState::bytes_needed()).valid());
    CHECK_FALSE(SharedState::adopt(m.data(), 16).valid());
    m.bytes[0] ^= 0xff;  // not our magic any more
    CHECK_FALSE(SharedState::adopt(m.data(), SharedState::bytes_needed()).valid());
    CHECK_FALSE(SharedState::format(m.data(), 10, "x").valid());
}

TEST_CASE("a key keeps its slot and its state across generations", "[shared]") {
    Memory m;
    auto st = SharedState::format(m.data(), SharedState::bytes_needed(), "n");
    int a = st.claim("v|a", 1, ReplicaState::Ready);
    int b = st.claim("v|b", 1, ReplicaState::Ready);
    REQUIRE(a >= 0);
    REQUIRE(b >= 0);
    CHECK(a != b);
    st.slot(a).state = static_cast<uint32_t>(ReplicaState::Draining);
    st.slot(a).in_flight = 3;

    // Graceful restart: generation 2 keeps a, drops b, adds c.
    CHECK(st.claim("v|a", 2, ReplicaState::Ready) == a);
    int c = st.claim("v|c", 2, ReplicaState::Ready);
    st.retire_unclaimed(2);
    CHECK(st.slot(a).state.load() == static_cast<uint32_t>(ReplicaState::Draining));
    CHECK(st.slot(a).in_flight.load() == 3);
    CHECK(c != a);
    CHECK(c != b);  // a never-used slot is preferred over a just-retired one
    CHECK(st.slot(b).in_use.load() == 0);

    // b comes back later: it gets a fresh slot, state and counters reset.
    int b2 = st.claim("v|b", 3, ReplicaState::Ready);
    CHECK(st.slot(b2).in_flight.load() == 0);
    CHECK(st.slot(b2).state.load() == static_cast<uint32_t>(ReplicaState::Ready));

    st.reset_in_flight();
    CHECK(st.slot(a).in_flight.load() == 0);
}

TEST_CASE("slots run out cleanly and retired ones are reused", "[shared]") {
    Memory m;
    auto st = SharedState::format(m.data(), SharedState::bytes_needed(), "n");
    for (size_t i = 0; i < kMaxSlots; ++i) REQUIRE(st.claim("k" + std::to_string(i), 1, ReplicaState::Ready) >= 0);
    CHECK(st.claim("one-too-many", 1, ReplicaState::Ready) == -1);
    CHECK(st.claim(std::string(kSlotKeyLength, 'x'), 1, ReplicaState::Ready) == -1);
    st.claim("k0", 2, ReplicaState::Ready);
    st.retire_unclaimed(2);
    CHECK(st.claim("new", 2, ReplicaState::Ready) >= 0);
}

TEST_CASE("in-flight counting is exact under concurrent threads", "[shared]") {
    Memory m;
    auto st = SharedState::format(m.data(), SharedState::bytes_needed(), "n");
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

TEST_CASE("release slots are found again by their symlink path", "[shared]") {
    Memory m;
    auto st = SharedState::format(m.data(), SharedState::bytes_needed(), "n");
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
    auto st = SharedState::format(m.data(), SharedState::bytes_needed(), "n");
    int slot = st.claim("v|a", 1, ReplicaState::Ready);
    const std::string r1 = "/srv/app/releases/2026-11-23T0801";
    const std::string r2 = "/srv/app/releases/r2-" + std::string(100, 'x');
    write_slot_release(st.slot(slot), r1);
    CHECK(read_slot_release(st.slot(slot)) == r1);
    CHECK(st.slot(slot).release_hash.load() == release_hash(r1));
    CHECK(release_hash("") == 0);
    CHECK(release_hash(r1) != release_hash(r2));
    std::atomic<bool> stop{false};
    std::atomic<long> torn{0}, reads{0};
    std::thread reader([&] {
        while (!stop) {
            std::string r = read_slot_release(st.slot(slot));
            if (r != r1 && r != r2) ++torn;
            ++reads;
        }
    });
    for (int i = 0; i < 20000; ++i) write_slot_release(st.slot(slot), i % 2 ? r1 : r2);
    stop = true;
    reader.join();
    CHECK(torn == 0);
    CHECK(reads > 0);
}
