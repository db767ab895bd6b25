// A replica's balancer members: what each FpmReplica line becomes in
// mod_proxy and in shared memory.
#include <catch2/catch.hpp>

#include "replica_members.h"

using namespace fpmr;

namespace {
ReplicaSpec spec_of(const std::vector<std::string>& args) {
    std::string error;
    auto spec = parse_replica(args, &error);
    REQUIRE(spec);
    return *spec;
}
}  // namespace

TEST_CASE("a supervised unix replica has a primary and an alternate member", "[members]") {
    ReplicaSpec a = spec_of({"a", "unix:/run/fpm/a.sock", "status=unix:/run/fpm/a-status.sock",
                             "probe=unix:/run/fpm/a-probe.sock"});
    auto members = replica_members("fpmr-1a2b3c4d", 2, a, true);
    REQUIRE(members.size() == 2);
    const ReplicaMember& primary = members[0];
    const ReplicaMember& alt = members[1];
    CHECK(primary.replica == 2);
    CHECK_FALSE(primary.alternate);
    CHECK(primary.route == "a");
    CHECK(primary.worker_host == "fpmr-1a2b3c4d-a");
    CHECK(primary.socket.text() == "unix:/run/fpm/a.sock");
    CHECK(primary.status->text() == "unix:/run/fpm/a-status.sock");
    CHECK(primary.probe->text() == "unix:/run/fpm/a-probe.sock");
    CHECK(primary.slot == -1);
    CHECK(alt.replica == 2);
    CHECK(alt.alternate);
    CHECK(alt.route == "a.alt");
    CHECK(alt.worker_host == "fpmr-1a2b3c4d-a-alt");
    CHECK(alt.socket.text() == "unix:/run/fpm/a.sock.alt");
    CHECK(alt.status->text() == "unix:/run/fpm/a-status.sock.alt");
    CHECK(alt.probe->text() == "unix:/run/fpm/a-probe.sock.alt");

    CHECK(balancer_member_arguments("balancer://fpmr-1a2b3c4d", primary) ==
          "balancer://fpmr-1a2b3c4d unix:/run/fpm/a.sock|fcgi://fpmr-1a2b3c4d-a route=a retry=1");
    CHECK(balancer_member_arguments("balancer://fpmr-1a2b3c4d", alt) ==
          "balancer://fpmr-1a2b3c4d unix:/run/fpm/a.sock.alt|fcgi://fpmr-1a2b3c4d-a-alt "
          "route=a.alt retry=1");
    CHECK(probe_proxy_url(primary) == "unix:/run/fpm/a-probe.sock|fcgi://fpmr-1a2b3c4d-a-probe");
    CHECK(probe_proxy_url(alt) == "unix:/run/fpm/a-probe.sock.alt|fcgi://fpmr-1a2b3c4d-a-alt-probe");
}

TEST_CASE("an unsupervised replica, or one on TCP, has its primary member only", "[members]") {
    ReplicaSpec a = spec_of({"a", "unix:/run/fpm/a.sock"});
    auto members = replica_members("fpmr-x", 0, a, false);
    REQUIRE(members.size() == 1);
    CHECK_FALSE(members[0].status);
    CHECK_FALSE(members[0].probe);
    CHECK(probe_proxy_url(members[0]).empty());

    ReplicaSpec t = spec_of({"t", "tcp:127.0.0.1:9000", "probe=tcp:127.0.0.1:9001"});
    CHECK(replica_members("fpmr-x", 0, t, true).size() == 1);
    CHECK_FALSE(replica_member("fpmr-x", 0, t, true));
    auto primary = replica_member("fpmr-x", 0, t, false);
    REQUIRE(primary);
    CHECK(balancer_member_arguments("balancer://fpmr-x", *primary) ==
          "balancer://fpmr-x fcgi://127.0.0.1:9000 route=t retry=1");
    CHECK(probe_proxy_url(*primary) == "fcgi://127.0.0.1:9001");
}

TEST_CASE("slot keys name the vhost, the route and the socket", "[members]") {
    ReplicaSpec a = spec_of({"a", "unix:/run/fpm/a.sock"});
    auto members = replica_members("fpmr-x", 0, a, true);
    std::string key = member_slot_key("127.0.0.1:80 app.test:80", members[0]);
    CHECK(key.rfind("127.0.0.1:80 app.test:80|a|", 0) == 0);
    CHECK(key.size() == std::string("127.0.0.1:80 app.test:80|a|").size() + 16);
    CHECK(member_slot_key("127.0.0.1:80 app.test:80", members[1]).find("|a.alt|") != std::string::npos);
    // Another socket is another member.
    ReplicaSpec moved = spec_of({"a", "unix:/run/fpm/elsewhere.sock"});
    CHECK(member_slot_key("v", replica_members("fpmr-x", 0, moved, false)[0]) !=
          member_slot_key("v", members[0]));
    CHECK(member_slot_key("v", members[0]) == member_slot_key("v", members[0]));
}

TEST_CASE("a fresh slot's first state", "[members]") {
    ReplicaSpec a = spec_of({"a", "unix:/run/fpm/a.sock"});
    auto members = replica_members("fpmr-x", 0, a, true);
    CHECK(initial_member_state(members[0], false) == ReplicaState::Ready);
    CHECK(initial_member_state(members[0], true) == ReplicaState::Starting);
    CHECK(initial_member_state(members[1], true) == ReplicaState::Stopped);
}
