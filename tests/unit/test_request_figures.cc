// Request figures: in flight and answers per release, a dead child's share
// given back, the duration histogram, and exact counts under threads.
#include <catch2/catch.hpp>

#include <thread>
#include <vector>

#include "request_figures.h"
#include "shared_state.h"
#include "test_blocks.h"

using namespace fpmr;

namespace {
const ReleaseFiguresView* figures_of(const std::vector<ReleaseFiguresView>& all, const std::string& release) {
    for (const auto& f : all) {
        if (f.release == release) return &f;
    }
    return nullptr;
}
}  // namespace

TEST_CASE("each release counts its requests in flight and its answers", "[figures]") {
    fpmr::testing::TestBlocks m;
    auto st = m.format();
    int link = st.claim_release("/srv/app/current");
    REQUIRE(link >= 0);
    int row = st.claim_child_row(4000);
    ReleaseTicket a1 = begin_release_request(st, link, row, "/srv/app/releases/r1", 10);
    ReleaseTicket a2 = begin_release_request(st, link, row, "/srv/app/releases/r1", 11);
    ReleaseTicket b1 = begin_release_request(st, link, -1, "/srv/app/releases/r2", 12);
    REQUIRE(a1.entry >= 0);
    CHECK(a1.entry == a2.entry);
    CHECK(a1.child_cell == a2.child_cell);
    CHECK(b1.entry != a1.entry);
    CHECK(b1.child_row == -1);
    record_release_answer(st, a1, release_hash("/srv/app/releases/r1"), 200);
    record_release_answer(st, a2, release_hash("/srv/app/releases/r1"), 502);
    record_release_answer(st, b1, release_hash("/srv/app/releases/r1"), 500);  // not its release: ignored
    auto all = read_release_figures(st, link);
    REQUIRE(all.size() == 2);
    const ReleaseFiguresView* r1 = figures_of(all, "/srv/app/releases/r1");
    REQUIRE(r1);
    CHECK(r1->in_flight == 2);
    CHECK(r1->requests == 2);
    CHECK(r1->server_errors == 1);
    CHECK(figures_of(all, "/srv/app/releases/r2")->requests == 0);
    end_release_request(st, a1);
    end_release_request(st, a2);
    end_release_request(st, b1);
    all = read_release_figures(st, link);
    CHECK(figures_of(all, "/srv/app/releases/r1")->in_flight == 0);
    CHECK(figures_of(all, "/srv/app/releases/r2")->in_flight == 0);
    // No release slot, no release: nothing counted.
    CHECK(begin_release_request(st, -1, row, "/srv/app/releases/r1", 1).entry == -1);
    CHECK(begin_release_request(st, link, row, "", 1).entry == -1);
    CHECK(begin_release_request(st, static_cast<int>(m.layout.release_count), row, "/x", 1).entry == -1);
}

TEST_CASE("a release's figures are reused only when nothing is in flight on it", "[figures]") {
    fpmr::testing::TestBlocks m;
    auto st = m.format();
    int link = st.claim_release("/srv/app/current");
    std::vector<ReleaseTicket> held;
    for (size_t i = 0; i < kReleaseFigureEntries; ++i) {
        held.push_back(begin_release_request(st, link, -1, "/srv/app/releases/r" + std::to_string(i),
                                             static_cast<int64_t>(100 + i)));
        REQUIRE(held.back().entry >= 0);
        record_release_answer(st, held.back(), release_hash("/srv/app/releases/r" + std::to_string(i)), 200);
    }
    // Every entry has a request in flight: the next release goes uncounted.
    CHECK(begin_release_request(st, link, -1, "/srv/app/releases/new", 200).entry == -1);
    // r3 and r5 end; r3 was used longer ago, so it makes room.
    end_release_request(st, held[5]);
    end_release_request(st, held[3]);
    ReleaseTicket fresh = begin_release_request(st, link, -1, "/srv/app/releases/new", 300);
    CHECK(fresh.entry == held[3].entry);
    auto all = read_release_figures(st, link);
    CHECK(figures_of(all, "/srv/app/releases/r3") == nullptr);
    REQUIRE(figures_of(all, "/srv/app/releases/new"));
    CHECK(figures_of(all, "/srv/app/releases/new")->requests == 0);  // starts from nothing
    CHECK(figures_of(all, "/srv/app/releases/r5")->requests == 1);
}

TEST_CASE("a dead child's requests in flight are taken out of its releases", "[figures][children]") {
    fpmr::testing::TestBlocks m;
    auto st = m.format();
    int link = st.claim_release("/srv/app/current");
    int dying = st.claim_child_row(5000);
    int living = st.claim_child_row(5001);
    for (int i = 0; i < 3; ++i) begin_release_request(st, link, dying, "/srv/app/releases/r1", 1);
    begin_release_request(st, link, dying, "/srv/app/releases/r2", 1);
    begin_release_request(st, link, living, "/srv/app/releases/r1", 1);
    // Forged cells (an entry beyond the block, a negative count) name nothing.
    ChildRow row = st.child_row(dying);
    row.release_cells[2 * (kChildReleaseCells - 1)] = 1 << 30;
    row.release_cells[2 * (kChildReleaseCells - 1) + 1] = 7;
    row.release_cells[2 * (kChildReleaseCells - 2)] = 1;
    row.release_cells[2 * (kChildReleaseCells - 2) + 1] = -5;
    auto released = st.release_child(5000);
    CHECK(released.complete);
    auto all = read_release_figures(st, link);
    CHECK(figures_of(all, "/srv/app/releases/r1")->in_flight == 1);  // the living child's
    CHECK(figures_of(all, "/srv/app/releases/r2")->in_flight == 0);
    // The freed row starts clean for its next child.
    int next = st.claim_child_row(5002);
    for (size_t c = 0; c < 2 * kChildReleaseCells; ++c) CHECK(st.child_row(next).release_cells[c].load() == 0);
    st.reset_in_flight();
    CHECK(figures_of(read_release_figures(st, link), "/srv/app/releases/r1")->in_flight == 0);
}

TEST_CASE("durations land in Prometheus' default buckets, per member and release", "[figures]") {
    fpmr::testing::TestBlocks m;
    auto st = m.format();
    int slot = st.claim("v|a|unix:/a", 1, ReplicaState::Ready);
    uint64_t r1 = release_hash("/r1"), r2 = release_hash("/r2");
    record_member_duration(st, slot, r1, 4000, 1);       // 4 ms: le 0.005
    record_member_duration(st, slot, r1, 5000, 2);       // exactly 5 ms: le 0.005
    record_member_duration(st, slot, r1, 300000, 3);     // le 0.5
    record_member_duration(st, slot, r1, 20000000, 4);   // above 10 s: +Inf only
    record_member_duration(st, slot, r2, 1000, 5);
    auto views = read_member_durations(st, slot);
    REQUIRE(views.size() == 2);
    const DurationsView& first = views[0].release_hash == r1 ? views[0] : views[1];
    CHECK(first.buckets[0] == 2);
    CHECK(first.buckets[6] == 1);
    CHECK(first.buckets[kDurationBounds] == 1);
    CHECK(first.count() == 4);
    CHECK(first.sum_us == 4000 + 5000 + 300000 + 20000000);
    // A fourth release takes the entry used longest ago, from nothing.
    record_member_duration(st, slot, release_hash("/r3"), 1000, 6);
    record_member_duration(st, slot, release_hash("/r4"), 1000, 7);
    views = read_member_durations(st, slot);
    CHECK(views.size() == kMemberReleaseEntries);
    for (const auto& v : views) CHECK(v.release_hash != r1);
    record_member_duration(st, -1, r1, 1, 1);  // no slot: nothing, no crash
}

TEST_CASE("release figures are exact under concurrent threads", "[figures]") {
    fpmr::testing::TestBlocks m;
    auto st = m.format();
    int link = st.claim_release("/srv/app/current");
    constexpr int kThreads = 4, kRounds = 20000;
    int row = st.claim_child_row(6000);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            std::string release = "/srv/app/releases/r" + std::to_string(t % 2);
            for (int i = 0; i < kRounds; ++i) {
                ReleaseTicket ticket = begin_release_request(st, link, row, release, i);
                record_release_answer(st, ticket, release_hash(release), i % 10 == 0 ? 500 : 200);
                end_release_request(st, ticket);
            }
        });
    }
    for (auto& t : threads) t.join();
    auto all = read_release_figures(st, link);
    REQUIRE(all.size() == 2);
    for (const auto& f : all) {
        CHECK(f.in_flight == 0);
        CHECK(f.requests == 2 * kRounds);
        CHECK(f.server_errors == 2 * kRounds / 10);
    }
    for (size_t c = 0; c < kChildReleaseCells; ++c) CHECK(st.child_row(row).release_cells[2 * c + 1].load() == 0);
}
