// The status document's read model: what each replica shows, read from the
// configuration and the shared blocks.
#include <catch2/catch.hpp>

#include <memory>

#include "status_model.h"
#include "test_blocks.h"
#include "status_render.h"

using namespace fpmr;

namespace {

using Memory = fpmr::testing::TestBlocks;

ReplicaSpec spec_of(const std::vector<std::string>& args) {
    std::string error;
    auto spec = parse_replica(args, &error);
    REQUIRE(spec);
    return *spec;
}

// A vhost with a supervised replica "a" (primary and alternate) and "b" on
// TCP (primary only), every member bound to a slot.
struct Vhost {
    std::vector<ReplicaSpec> replicas{spec_of({"a", "unix:/run/a.sock"}),
                                      spec_of({"b", "tcp:127.0.0.1:9000"})};
    std::vector<ReplicaMember> members;
    Memory memory;
    SharedState shared = memory.format("cafe");

    Vhost() {
        for (size_t i = 0; i < replicas.size(); ++i) {
            for (ReplicaMember& m : replica_members("fpmr-t", static_cast<int>(i), replicas[i], true)) {
                m.slot = shared.claim(member_slot_key("v", m), 1, initial_member_state(m, true));
                REQUIRE(m.slot >= 0);
                members.push_back(m);
            }
        }
        REQUIRE(members.size() == 3);
    }
    StatusSources sources() const {
        StatusSources s;
        s.vhost = "app.test:80";
        s.replicas = &replicas;
        s.members = &members;
        return s;
    }
    TrustedSlot& trusted(int member) { return shared.trusted_rw(members[member].slot); }
    ReplicaSlot& open(int member) { return shared.slot(members[member].slot); }
    void set_state(int member, ReplicaState st) { trusted(member).lifecycle = static_cast<uint32_t>(st); }
};

}  // namespace

TEST_CASE("each replica shows its serving member and the sum of its members' counts", "[status]") {
    Vhost v;
    v.set_state(0, ReplicaState::Draining);  // a's old master, going away
    v.set_state(1, ReplicaState::Ready);     // a's replacement, on a.sock.alt
    v.set_state(2, ReplicaState::Ready);
    v.trusted(1).pid = 4321;
    v.trusted(0).restarts = 2;
    v.open(0).in_flight = 3;
    v.open(1).in_flight = 1;
    v.open(0).requests = 10;
    v.open(1).requests = 5;
    v.open(2).failures = 4;
    v.open(2).in_flight = -7;  // forged by a child: shown as 0
    v.trusted(2).check_latency_us = 2500;
    std::vector<std::string> asked;
    StatusSources sources = v.sources();
    sources.release = "/srv/app/releases/r2";
    sources.listener_pid = [&](const SocketSpec& s) {
        asked.push_back(s.text());
        return 99;
    };
    VhostStatus status = read_vhost_status(sources, v.shared, 0);
    CHECK(status.vhost == "app.test:80");
    CHECK(status.nonce == "cafe");
    CHECK(status.release == "/srv/app/releases/r2");
    CHECK_FALSE(status.release_link);
    REQUIRE(status.replicas.size() == 2);
    const ReplicaStatus& a = status.replicas[0];
    CHECK(a.name == "a");
    CHECK(a.state == ReplicaState::Ready);
    CHECK(a.socket == "unix:/run/a.sock.alt");
    CHECK(a.pid == 4321);
    CHECK(a.in_flight == 4);
    CHECK(a.requests == 15);
    CHECK(a.restarts == 2);
    CHECK(a.release == "/srv/app/releases/r2");  // realpath mode: the current release
    CHECK_FALSE(a.check_seconds);
    const ReplicaStatus& b = status.replicas[1];
    CHECK(b.socket == "tcp:127.0.0.1:9000");
    CHECK(b.in_flight == 0);
    CHECK(b.failures == 4);
    CHECK(b.pid == 99);  // no recorded master: whoever listens
    CHECK(b.check_seconds == Approx(0.0025));
    // Asked for each member shown on the way with no recorded master (a's
    // primary was, until its ready alternate came).
    CHECK(asked == std::vector<std::string>{"unix:/run/a.sock", "tcp:127.0.0.1:9000"});
}

TEST_CASE("the state shown is the verdict steering acts on", "[status]") {
    Vhost v;
    v.set_state(0, ReplicaState::Ready);
    v.set_state(2, ReplicaState::Ready);
    v.open(2).retry_at_us = 1000;  // b refused a connection
    auto state_of = [&](int64_t now, size_t replica) {
        return read_vhost_status(v.sources(), v.shared, now).replicas[replica].state;
    };
    CHECK(state_of(999, 0) == ReplicaState::Ready);
    CHECK(state_of(999, 1) == ReplicaState::Failed);
    CHECK(state_of(1000, 1) == ReplicaState::Failed);  // retried, not yet answered
    v.open(2).retry_at_us = 0;
    CHECK(state_of(1000, 1) == ReplicaState::Ready);
    v.trusted(2).health = static_cast<uint32_t>(HealthState::Failing);
    CHECK(state_of(0, 1) == ReplicaState::Failed);
    v.trusted(2).health = static_cast<uint32_t>(HealthState::Passing);
    v.open(2).admin_drained = 1;
    VhostStatus status = read_vhost_status(v.sources(), v.shared, 0);
    CHECK(status.replicas[1].state == ReplicaState::Draining);
    CHECK(status.replicas[1].admin_drained);
    CHECK(status.replicas[1].health == HealthState::Passing);
    // a: primary starting, alternate stopped: the one coming up is shown.
    v.set_state(0, ReplicaState::Starting);
    status = read_vhost_status(v.sources(), v.shared, 0);
    CHECK(status.replicas[0].state == ReplicaState::Starting);
    CHECK(status.replicas[0].socket == "unix:/run/a.sock");
}

TEST_CASE("a replica that is not ready says why; a ready one has no reason", "[status]") {
    Vhost v;
    v.set_state(0, ReplicaState::Ready);
    v.set_state(2, ReplicaState::Ready);
    auto replica = [&](size_t i) { return read_vhost_status(v.sources(), v.shared, 0).replicas[i]; };
    CHECK_FALSE(replica(0).reason);
    v.open(2).admin_drained = 1;
    CHECK(replica(1).reason == std::optional<std::string>("drained by the operator"));
    v.open(2).admin_drained = 0;
    v.trusted(2).health = static_cast<uint32_t>(HealthState::Failing);
    v.trusted(2).trouble = static_cast<uint32_t>(MasterTrouble::HealthChecks);
    v.trusted(2).trouble_detail = 500;
    CHECK(replica(1).state == ReplicaState::Failed);
    CHECK(replica(1).reason == std::optional<std::string>("failing its health checks: answered 500"));
    v.set_state(0, ReplicaState::Starting);
    CHECK(replica(0).reason == std::optional<std::string>("starting: waiting for its master to answer"));
    std::string json = render_status_json(read_vhost_status(v.sources(), v.shared, 0));
    CHECK(json.find("\"reason\": \"failing its health checks: answered 500\"") != std::string::npos);
}

TEST_CASE("namespace mode shows the release each master serves", "[status]") {
    Vhost v;
    v.set_state(0, ReplicaState::Ready);
    REQUIRE(write_slot_release(v.trusted(0), "/srv/app/releases/r1"));
    StatusSources sources = v.sources();
    sources.release = "/srv/app/releases/r2";
    sources.routes_by_release = true;
    VhostStatus status = read_vhost_status(sources, v.shared, 0);
    CHECK(status.replicas[0].release == "/srv/app/releases/r1");
    CHECK_FALSE(status.replicas[1].release);  // its master serves none yet
}

TEST_CASE("a replica without a bound slot shows its configured socket", "[status]") {
    Vhost v;
    for (ReplicaMember& m : v.members) m.slot = -1;
    VhostStatus status = read_vhost_status(v.sources(), v.shared, 0);
    REQUIRE(status.replicas.size() == 2);
    CHECK(status.replicas[0].socket == "unix:/run/a.sock");
    CHECK_FALSE(status.replicas[0].pid);
    CHECK(status.replicas[0].in_flight == 0);
}

TEST_CASE("a deploy preparation shows as asked, then as the supervisor took it", "[status]") {
    Vhost v;
    int slot = v.shared.claim_release("/srv/app/current");
    REQUIRE(slot >= 0);
    StatusSources sources = v.sources();
    sources.release_link = "/srv/app/current";
    CHECK_FALSE(read_vhost_status(sources, v.shared, 0).prepared_release);
    ReleaseSlot& asked = v.shared.release_slot(slot);
    REQUIRE(write_locked_string(asked.requested_seq, asked.requested, kReleaseLength,
                                "/srv/app/releases/r3"));
    asked.prepare_requests.fetch_add(1);
    VhostStatus status = read_vhost_status(sources, v.shared, 0);
    CHECK(status.release_link == "/srv/app/current");
    CHECK(status.prepared_release == "/srv/app/releases/r3");
    CHECK(status.prepared_state == "starting");
    TrustedRelease& taken = v.shared.trusted_release_rw(slot);
    taken.prepare_handled = 1;
    taken.prepare_state = static_cast<uint32_t>(PrepareState::Ready);
    REQUIRE(write_locked_string(taken.prepared_seq, taken.prepared, kReleaseLength,
                                "/srv/app/releases/r3"));
    status = read_vhost_status(sources, v.shared, 0);
    CHECK(status.prepared_release == "/srv/app/releases/r3");
    CHECK(status.prepared_state == "ready");
}

TEST_CASE("display order of a replica's members", "[status]") {
    CHECK(display_rank(ReplicaState::Ready) < display_rank(ReplicaState::Starting));
    CHECK(display_rank(ReplicaState::Starting) < display_rank(ReplicaState::Draining));
    CHECK(display_rank(ReplicaState::Draining) < display_rank(ReplicaState::Failed));
    CHECK(display_rank(ReplicaState::Failed) < display_rank(ReplicaState::Stopped));
}
