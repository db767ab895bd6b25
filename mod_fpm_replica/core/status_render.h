// Renders the status document (SPEC "Status and control") as JSON or as
// Prometheus text.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "pool_status.h"
#include "shared_state.h"

namespace fpmr {

struct ReplicaStatus {
    std::string name;
    std::string socket;                  // "unix:/run/a.sock"
    ReplicaState state = ReplicaState::Ready;  // derived: status_state (selection.h)
    bool admin_drained = false;                 // the operator's drain
    HealthState health = HealthState::Unknown;  // FpmReplicaHealthCheck's verdict
    std::optional<std::string> reason;          // why it is not ready (replica_reason.h); null when ready
    std::optional<std::string> release;  // null until pinning knows it
    std::optional<int32_t> pid;          // null when unknown
    int64_t in_flight = 0;
    uint64_t requests = 0;
    uint64_t failures = 0;
    uint64_t restarts = 0;
    std::optional<double> check_seconds;  // last health check's duration (FpmReplicaHealthCheck)
    struct Warmup {
        int64_t scripts = 0;
        double seconds = 0;
    };
    std::optional<Warmup> warmup;  // its master's last warm-up (FpmReplicaWarmup); null: none
    // Its answers' durations, per release ("": requests of no release),
    // summed over its members.
    struct Durations {
        std::string release;
        DurationsView figures;
    };
    std::vector<Durations> durations;
    // php-fpm's pool figures of its shown member (Prometheus only): null
    // without a status= socket; `up` false when the status page did not
    // answer in time.
    struct Pool {
        bool up = false;
        PoolStatus figures;
    };
    std::optional<Pool> pool;
};

// A release the vhost's symlink named recently, or one a master serves.
struct ReleaseUse {
    std::string release;
    int64_t in_flight = 0;       // pinned requests not finished
    uint64_t requests = 0;       // PHP requests answered from it
    uint64_t server_errors = 0;  // of those, 5xx
    std::vector<std::string> replicas;  // namespace mode: replicas with a master on it
};

struct VhostStatus {
    std::string vhost;                   // "app.local:8080"
    std::optional<std::string> release;
    std::optional<std::string> release_link;   // the release symlink (FpmReplicaRelease)
    bool namespace_mode = false;               // "mode": "namespace" (else "realpath")
    std::optional<std::string> previous_release;  // what the symlink named before its last flip
    std::optional<std::string> prepared_release;  // deploy preparation, when one was asked
    std::string prepared_state;
    std::string nonce;
    std::vector<ReplicaStatus> replicas;
    std::vector<ReleaseUse> releases;  // in the order first seen; the symlink's first
    SharedState::Usage shared_memory;  // of the whole httpd instance
};

std::string json_escape(const std::string& text);
std::string render_status_json(const VhostStatus& status);
// The same figures in Prometheus' text exposition format (version 0.0.4);
// every metric name starts with fpm_replica_.
std::string render_status_prometheus(const VhostStatus& status);

}  // namespace fpmr
