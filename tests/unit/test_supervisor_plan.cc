// The plan the httpd parent sends the running supervisor at each restart:
// its encoding, and how a new plan compares with the running one.
#include <catch2/catch.hpp>

#include <cstring>

#include "replica_members.h"
#include "shared_state.h"
#include "supervisor_plan.h"

using namespace fpmr;

namespace {

// The plan's part of a replica's members (replica_members.h), on slots from `first_slot` up.
std::vector<MemberPlan> members_of(const ReplicaSpec& spec, bool supervised, int first_slot) {
    std::vector<MemberPlan> members;
    for (ReplicaMember& m : replica_members("fpmr-test", 0, spec, supervised)) {
        m.slot = first_slot + (m.alternate ? 1 : 0);
        members.push_back(m);
    }
    return members;
}

ReplicaPlan replica(const std::string& vhost, const std::string& name, int first_slot) {
    std::string error;
    ReplicaPlan r;
    r.vhost = vhost;
    r.request.command = {"/usr/sbin/php-fpm8.2", "--nodaemonize", "--fpm-config",
                         "/etc/fpm-replica/app.conf"};
    r.request.replica = *parse_replica(
        {name, "unix:/run/fpm-replica/" + name + ".sock",
         "status=unix:/run/fpm-replica/" + name + "-status.sock"}, &error);
    r.release_symlink = "/srv/app/current";
    r.members = members_of(r.request.replica, true, first_slot);
    return r;
}

}  // namespace

TEST_CASE("a supervisor plan survives its encoding byte for byte", "[plan]") {
    std::string error;
    SupervisorPlan plan;
    plan.generation = 7;
    plan.drain_timeout_us = 60000000;
    plan.replicas.push_back(replica("app.test:80", "a", 0));
    ReplicaPlan b = replica("app.test:80", "b", 2);
    b.request.command.push_back("an argument with spaces, a colon: and\na newline");
    b.request.stable_path = "/srv/app/live";
    b.request.helper_path = "/usr/libexec/fpm-replica-helper";
    b.request.helper_config = "/etc/fpm-replica/helper.conf";
    b.request.replica.probe = *parse_socket("unix:/run/fpm-replica/b-probe.sock", &error);
    b.health = HealthCheckSpec{500000, 250000, 3, 2, "/ping?full"};
    b.drain_timeout_us = 20000000;  // its vhost's own FpmReplicaDrainTimeout 20s
    b.warmup.timeout_us = 2500000;
    b.warmup.script = "/srv/tools/warm up.php";
    b.warmup.urls = {"/", "/index.php?warm=1"};
    b.warmup_listener = *parse_socket("tcp:[::1]:8443", &error);
    b.warmup_host = "app.test:8443";
    plan.replicas.push_back(b);
    ReplicaPlan tcp = replica("other:8080", "t", 4);
    tcp.supervised = false;
    tcp.request.command.clear();
    tcp.request.replica = *parse_replica({"t", "tcp:127.0.0.1:9000"}, &error);
    tcp.members = members_of(tcp.request.replica, false, 4);
    tcp.warmup.enabled = false;
    plan.replicas.push_back(tcp);

    std::string bytes = encode_plan(plan);
    auto back = decode_plan(bytes);
    REQUIRE(back);
    CHECK(back->generation == 7);
    CHECK(back->drain_timeout_us == 60000000);
    REQUIRE(back->replicas.size() == 3);
    const ReplicaPlan& b2 = back->replicas[1];
    CHECK(b2.drain_timeout_us == 20000000);
    CHECK(back->replicas[0].drain_timeout_us == 60000000);
    CHECK(b2.vhost == "app.test:80");
    CHECK(b2.request.command == b.request.command);
    CHECK(b2.request.replica.socket == b.request.replica.socket);
    CHECK(b2.request.replica.status == b.request.replica.status);
    CHECK(b2.request.replica.probe == b.request.replica.probe);
    CHECK(b2.request.stable_path == "/srv/app/live");
    CHECK(b2.request.helper_path == "/usr/libexec/fpm-replica-helper");
    CHECK(b2.request.helper_config == "/etc/fpm-replica/helper.conf");
    CHECK(b2.release_symlink == "/srv/app/current");
    REQUIRE(b2.health);
    CHECK(b2.health->interval_us == 500000);
    CHECK(b2.health->timeout_us == 250000);
    CHECK(b2.health->fails == 3);
    CHECK(b2.health->passes == 2);
    CHECK(b2.health->path == "/ping?full");
    CHECK(b2.members == b.members);
    CHECK(b2.warmup == b.warmup);
    CHECK(b2.warmup_listener == b.warmup_listener);
    CHECK(b2.warmup_host == "app.test:8443");
    CHECK_FALSE(back->replicas[0].warmup_listener);
    CHECK(back->replicas[0].warmup == WarmupSpec{});
    CHECK(back->replicas[0].warmup.enabled);
    CHECK_FALSE(back->replicas[2].warmup.enabled);
    CHECK_FALSE(back->replicas[0].health);
    CHECK_FALSE(back->replicas[2].supervised);
    CHECK(back->replicas[2].request.command.empty());
    CHECK(back->replicas[2].members == tcp.members);
    CHECK(encode_plan(*back) == bytes);
}

TEST_CASE("anything but exactly one encoded plan is refused", "[plan]") {
    SupervisorPlan plan;
    plan.generation = 3;
    plan.replicas.push_back(replica("app.test:80", "a", 0));
    std::string bytes = encode_plan(plan);
    for (size_t cut = 0; cut < bytes.size(); ++cut) {
        CHECK_FALSE(decode_plan(std::string_view(bytes).substr(0, cut)));
    }
    CHECK_FALSE(decode_plan(bytes + "1:x"));
    // Another layout's plan (the one before warm-up) is not this one.
    CHECK_FALSE(decode_plan("18:fpm-replica-plan/1" + bytes.substr(21)));
    CHECK_FALSE(decode_plan("18:fpm-replica-plan/3" + bytes.substr(21)));
    CHECK_FALSE(decode_plan("99999999999:"));
    std::string bad_socket = bytes;
    bad_socket.replace(bad_socket.find("unix:/run"), 5, "udp:/");
    CHECK_FALSE(decode_plan(bad_socket));
}

TEST_CASE("plans framed on the pipe come out whole, however the reads split them", "[plan]") {
    SupervisorPlan first, second;
    first.generation = 4;
    first.replicas.push_back(replica("app:80", "a", 0));
    second.generation = 5;
    second.replicas.push_back(replica("app:80", "b", 2));
    std::string bytes = frame_plan(first) + frame_plan(second);
    PlanFrames frames;
    std::vector<uint32_t> seen;
    std::optional<SupervisorPlan> plan;
    for (char c : bytes) {
        frames.append(&c, 1);
        while (frames.next(&plan)) {
            REQUIRE(plan);
            seen.push_back(plan->generation);
        }
    }
    CHECK(seen == std::vector<uint32_t>{4, 5});
    std::string garbled = frame_plan(first);
    garbled[10] = '#';
    frames.append(garbled.data(), garbled.size());
    REQUIRE(frames.next(&plan));
    CHECK_FALSE(plan);  // one bad frame, skipped whole
    CHECK_FALSE(frames.next(&plan));
}

TEST_CASE("a new plan keeps, adds, removes and leaves moved replicas alone", "[plan]") {
    std::vector<ReplicaPlan> running = {replica("app:80", "a", 0), replica("app:80", "b", 2),
                                        replica("app:80", "c", 4)};
    std::vector<ReplicaPlan> wanted = {replica("app:80", "a", 0), replica("app:80", "c", 4),
                                       replica("app:80", "d", 6)};
    wanted[0].request.command = {"/usr/sbin/php-fpm8.3", "-F"};  // a setting: still kept
    // c moved to another socket (and so to other slots): the old c goes,
    // a new c comes.
    wanted[1].members[0].socket.path = "/run/elsewhere.sock";
    wanted[1].members[0].slot = 8;
    PlanChanges changes = compare_plans(running, wanted);
    CHECK(changes.kept == std::vector<std::pair<size_t, size_t>>{{0, 0}});
    CHECK(changes.removed == std::vector<size_t>{1, 2});
    CHECK(changes.added == std::vector<size_t>{1, 2});
    CHECK(changes.switched.empty());

    // The same name in another vhost is another replica; turning supervision
    // off is neither a settings change nor a move.
    std::vector<ReplicaPlan> other = {replica("other:80", "a", 8), replica("app:80", "b", 2)};
    other[1].supervised = false;
    changes = compare_plans(running, other);
    CHECK(changes.kept.empty());
    CHECK(changes.switched == std::vector<std::pair<size_t, size_t>>{{1, 1}});
    CHECK(changes.removed == std::vector<size_t>{0, 2});
    CHECK(changes.added == std::vector<size_t>{0});
}

TEST_CASE("a plan naming no slot or a slot outside the shared block is refused", "[plan]") {
    SupervisorPlan plan;
    plan.generation = 3;
    plan.replicas.push_back(replica("app.test:80", "a", 0));
    REQUIRE(decode_plan(encode_plan(plan)));
    SupervisorPlan bad = plan;
    bad.replicas[0].members[1].slot = static_cast<int>(kMaxSlotCapacity);
    CHECK_FALSE(decode_plan(encode_plan(bad)));
    // Against the receiver's blocks: a slot they do not have is refused.
    bad.replicas[0].members[1].slot = 300;
    CHECK(decode_plan(encode_plan(bad)));
    CHECK(decode_plan(encode_plan(bad), 301));
    CHECK_FALSE(decode_plan(encode_plan(bad), 300));
    PlanFrames frames(300);
    frames.append(frame_plan(bad).data(), frame_plan(bad).size());
    std::optional<SupervisorPlan> received;
    REQUIRE(frames.next(&received));
    CHECK_FALSE(received);
    bad.replicas[0].members[1].slot = -1;
    CHECK_FALSE(decode_plan(encode_plan(bad)));
    bad = plan;
    bad.replicas[0].members.clear();
    CHECK_FALSE(decode_plan(encode_plan(bad)));
}

TEST_CASE("a frame longer than any plan empties the buffer instead of waiting for it", "[plan]") {
    PlanFrames frames;
    uint32_t huge = kMaxFrameBytes + 1;
    std::string head(sizeof huge, '\0');
    std::memcpy(head.data(), &huge, sizeof huge);
    frames.append(head.data(), head.size());
    frames.append("xyz", 3);
    std::optional<SupervisorPlan> plan = SupervisorPlan{};
    REQUIRE(frames.next(&plan));
    CHECK_FALSE(plan);
    CHECK(frames.broken());
    CHECK_FALSE(frames.next(&plan));  // nothing left
    SupervisorPlan good;
    good.generation = 4;
    std::string frame = frame_plan(good);
    frames.append(frame.data(), frame.size());
    REQUIRE(frames.next(&plan));
    REQUIRE(plan);
    CHECK(plan->generation == 4);
}
