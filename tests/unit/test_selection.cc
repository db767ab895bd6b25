// Replica choice: least busy first, ties rotate, unusable replicas skipped.
#include <catch2/catch.hpp>

#include "selection.h"

using namespace fpmr;

namespace {
Candidate ready(int64_t in_flight, uint64_t last_pick = 0) {
    Candidate c;
    c.in_flight = in_flight;
    c.last_pick = last_pick;
    return c;
}
}  // namespace

TEST_CASE("the least busy replica wins", "[selection]") {
    CHECK(choose_replica({ready(3), ready(1), ready(2)}, 0) == 1);
    CHECK(choose_replica({ready(0), ready(5)}, 0) == 0);
}

TEST_CASE("ties go to the replica picked least recently", "[selection]") {
    CHECK(choose_replica({ready(1, 10), ready(1, 9)}, 0) == 1);
    // Sequential requests alternate: simulate picks with a sequence counter.
    std::vector<Candidate> c{ready(0), ready(0), ready(0)};
    uint64_t seq = 0;
    std::vector<int> picks;
    for (int i = 0; i < 6; ++i) {
        int chosen = choose_replica(c, 0);
        picks.push_back(chosen);
        c[chosen].last_pick = ++seq;
    }
    CHECK(picks == std::vector<int>{0, 1, 2, 0, 1, 2});
}

TEST_CASE("draining, stopped, starting and failed replicas are skipped", "[selection]") {
    for (auto state : {ReplicaState::Draining, ReplicaState::Stopped, ReplicaState::Starting,
                       ReplicaState::Failed}) {
        std::vector<Candidate> c{ready(0), ready(7)};
        c[0].state = state;
        INFO(state_name(state));
        CHECK(choose_replica(c, 0) == 1);
        CHECK(usable(c[0], 0, 0) == Usability::NotReady);
        CHECK(std::string(usability_reason(usable(c[0], 0, 0), state)) == state_name(state));
    }
}

TEST_CASE("all draining or all failed gives no replica", "[selection]") {
    std::vector<Candidate> draining{ready(0), ready(0)};
    for (auto& c : draining) c.state = ReplicaState::Draining;
    CHECK(choose_replica(draining, 0) == -1);

    std::vector<Candidate> failed{ready(0), ready(0)};
    for (auto& c : failed) c.state = ReplicaState::Failed;
    CHECK(choose_replica(failed, 0) == -1);

    CHECK(choose_replica({}, 0) == -1);
}

TEST_CASE("a replica that refused is left alone until its retry time", "[selection]") {
    std::vector<Candidate> c{ready(0), ready(9)};
    c[0].retry_at_us = 1000;
    CHECK(choose_replica(c, 999) == 1);
    CHECK(usable(c[0], 999, 0) == Usability::Refused);
    CHECK(choose_replica(c, 1000) == 0);
    CHECK(usable(c[0], 1000, 0) == Usability::Retrying);
    // The status document shows it failed until a request succeeds on it.
    CHECK(status_state(c[0], 999) == ReplicaState::Failed);
    CHECK(status_state(c[0], 1000) == ReplicaState::Failed);
    CHECK(status_state(c[1], 999) == ReplicaState::Ready);
    c[0].state = ReplicaState::Draining;
    CHECK(status_state(c[0], 999) == ReplicaState::Draining);
}

TEST_CASE("a replica this request already failed on is not chosen again", "[selection]") {
    std::vector<Candidate> c{ready(0), ready(3)};
    c[0].tried = true;
    CHECK(choose_replica(c, 0) == 1);
    c[1].tried = true;
    CHECK(choose_replica(c, 0) == -1);
}

TEST_CASE("one rule for steering, the probe lane and the status document", "[selection]") {
    Candidate c = ready(0);
    c.release_hash = 42;
    CHECK(usable(c, 0, 0) == Usability::Usable);
    CHECK(takes_requests(usable(c, 0, 0)));
    // Namespace mode: a request pinned to another release skips it.
    CHECK(usable(c, 0, 42) == Usability::Usable);
    CHECK(usable(c, 0, 7) == Usability::OtherRelease);
    CHECK_FALSE(takes_requests(usable(c, 0, 7)));
    CHECK(std::string(usability_reason(Usability::OtherRelease, c.state)) == "serves another release");
    CHECK(choose_replica({c}, 0, 7) == -1);
    Candidate other = ready(5);
    other.release_hash = 7;
    CHECK(choose_replica({c, other}, 0, 7) == 1);
    CHECK(choose_replica({c, other}, 0) == 0);
    // The status document asks without a pin: a member of an older release
    // that still runs shows ready.
    CHECK(status_state(other, 0) == ReplicaState::Ready);
    // What is not ready says so whatever the pin; then the refusal; the
    // request's own failures first of all.
    c.state = ReplicaState::Starting;
    CHECK(usable(c, 0, 7) == Usability::NotReady);
    c.state = ReplicaState::Ready;
    c.retry_at_us = 100;
    CHECK(usable(c, 50, 42) == Usability::Refused);
    CHECK(usable(c, 50, 7) == Usability::OtherRelease);
    CHECK(usable(c, 100, 42) == Usability::Retrying);
    CHECK(takes_requests(Usability::Retrying));
    CHECK_FALSE(takes_requests(Usability::Refused));
    c.tried = true;
    CHECK(usable(c, 100, 42) == Usability::AlreadyTried);
}

TEST_CASE("a release is served once a ready master serves it", "[selection]") {
    Candidate c = ready(0);
    c.release_hash = 42;
    CHECK(serves_release(c, 42));
    CHECK_FALSE(serves_release(c, 7));
    c.retry_at_us = 1000;  // it may refuse: steering fails over then
    CHECK(serves_release(c, 42));
    c.state = ReplicaState::Starting;
    CHECK_FALSE(serves_release(c, 42));
}
