// What the replica supervisor decides without touching a process: how the
// FpmReplicaSpawn command line splits into words, what a replica is started
// with (argv and environment, directly or through fpm-replica-helper), and
// when a crashed replica may start again.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config_parse.h"

namespace fpmr {

// Splits a command line into words: blanks separate, single quotes keep
// everything literally, double quotes and a backslash escape as in sh. No
// expansion of any kind. nullopt with *error on an unclosed quote or no word.
std::optional<std::vector<std::string>> split_command(std::string_view text, std::string* error);

struct SpawnPlan {
    std::vector<std::string> argv;
    std::vector<std::string> env;  // "NAME=value"
};

struct SpawnRequest {
    std::vector<std::string> command;  // FpmReplicaSpawn, split
    ReplicaSpec replica;
    std::string release_dir;           // real path of the release it serves; "" without one
    std::string stable_path;           // "" in realpath mode
    std::string helper_path;           // used only with a stable path
    std::string helper_config;         // "" for the helper's default
};

// The SPEC's environment (FPM_REPLICA_NAME, _LISTEN, _STATUS_LISTEN,
// _PROBE_LISTEN, _RELEASE) plus a fixed PATH; in namespace mode the command
// is wrapped in `fpm-replica-helper spawn ... --`.
SpawnPlan plan_spawn(const SpawnRequest& request);

// When a replica that exited may start again: 0.5 s after the first crash,
// doubling up to 30 s; after 5 crashes within 60 s it stays down (failed)
// until someone resets it. A run of 60 s or more forgets earlier crashes.
class RestartBackoff {
public:
    static constexpr int kMaxQuickCrashes = 5;
    static constexpr int64_t kWindowUs = 60 * 1000000LL;
    static constexpr int64_t kFirstDelayUs = 500000;
    static constexpr int64_t kMaxDelayUs = 30 * 1000000LL;

    // Records an exit after `ran_us` of running; returns the earliest time
    // to start again, or -1 to give up.
    int64_t on_exit(int64_t now_us, int64_t ran_us);
    void reset() { crashes_ = 0; window_start_us_ = 0; }
    int crashes() const { return crashes_; }

private:
    int crashes_ = 0;
    int64_t window_start_us_ = 0;
};

}  // namespace fpmr
