// What the replica supervisor runs, as the httpd parent configured it: one
// plan per replica. The parent sends the whole plan to the running
// supervisor at every restart of httpd (encode/decode here), and the
// supervisor compares it with what it runs (compare_plans) to update,
// add and retire replicas without stopping the others.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config_parse.h"
#include "shared_state.h"
#include "supervision.h"

namespace fpmr {

// One balancer member of a replica: a shared slot and the socket a master
// serves it on (the alternate member: "<socket>.alt").
struct MemberPlan {
    int slot = -1;
    SocketSpec socket;
    std::optional<SocketSpec> status;

    bool operator==(const MemberPlan& o) const {
        return slot == o.slot && socket == o.socket && status == o.status;
    }
};

struct ReplicaPlan {
    std::string vhost;
    bool supervised = true;  // false: FpmReplicaHealthCheck only, started by someone else
    std::optional<HealthCheckSpec> health;
    SpawnRequest request;    // release_dir is not part of a plan
    std::string release_symlink;
    // FpmReplicaDrainTimeout of its vhost: how long its old masters may
    // finish their requests, and when a stop escalates to SIGKILL.
    int64_t drain_timeout_us = 60 * 1000000LL;
    // FpmReplicaWarmup of its vhost (on, with the defaults, without one).
    WarmupSpec warmup;
    // Where the warm-up's URL paths are requested through httpd (only with
    // URL paths): the vhost's address (loopback for a wildcard one) and its
    // Host header.
    std::optional<SocketSpec> warmup_listener;
    std::string warmup_host;
    std::vector<MemberPlan> members;  // [0] primary, [1] alternate (unix sockets)

    const std::string& name() const { return request.replica.name; }
};

struct SupervisorPlan {
    uint32_t generation = 0;  // httpd's configuration generation it belongs to
    int64_t drain_timeout_us = 0;  // the longest of its replicas' (httpd's stop waits for it)
    std::vector<ReplicaPlan> replicas;
};

std::string encode_plan(const SupervisorPlan& plan);
// nullopt for anything that is not exactly one encoded plan, or one naming a
// member slot at or above `slot_count` (the receiving blocks' count, or the
// largest any httpd makes).
std::optional<SupervisorPlan> decode_plan(std::string_view bytes,
                                          uint32_t slot_count = kMaxSlotCapacity);

// On the channel from the httpd parent to the supervisor each plan is a
// frame: its length (4 bytes, host order), then encode_plan's bytes. A
// frame longer than this is refused (a plan of 4096 replicas is far less).
constexpr uint32_t kMaxFrameBytes = 16u << 20;
std::string frame_plan(const SupervisorPlan& plan);

// The supervisor's end: collects what it reads and hands out whole frames.
class PlanFrames {
public:
    // `slot_count`: the slots of the blocks the plans' members index.
    explicit PlanFrames(uint32_t slot_count = kMaxSlotCapacity) : slot_count_(slot_count) {}
    void append(const char* data, size_t size) { buffer_.append(data, size); }
    // The next whole frame, decoded (nullopt inside when it does not decode);
    // false while no whole frame is buffered.
    bool next(std::optional<SupervisorPlan>* plan);
    void clear() { buffer_.clear(); }
    // A frame longer than any plan came: the stream cannot be trusted to be
    // in step any more (the reader closes the channel).
    bool broken() const { return broken_; }

private:
    uint32_t slot_count_;
    std::string buffer_;
    bool broken_ = false;
};

// How a new plan relates to the one running, replica by replica (by vhost
// and name).
struct PlanChanges {
    // Same vhost, name, supervision and members: keeps its masters; its
    // other settings (command, helper, health checks, release...) may differ
    // and apply from its next start. Pairs of (running index, wanted index).
    std::vector<std::pair<size_t, size_t>> kept;
    // Wanted indices: new replicas, and replicas that moved to other sockets
    // (their members have other slots; the old ones are in `removed`).
    std::vector<size_t> added;
    std::vector<size_t> removed;  // running indices
    // Same vhost and name, with supervision turned on or off: left running
    // as it is (running index, wanted index).
    std::vector<std::pair<size_t, size_t>> switched;
};
PlanChanges compare_plans(const std::vector<ReplicaPlan>& running,
                          const std::vector<ReplicaPlan>& wanted);

}  // namespace fpmr
