// Parsing and validation of the module's directive arguments: socket specs,
// replica names, durations. No httpd types, so Catch2 tests link it alone.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace fpmr {

// A FastCGI endpoint as the operator writes it: unix:/path or tcp:HOST:PORT.
struct SocketSpec {
    enum class Kind { Unix, Tcp };
    Kind kind = Kind::Unix;
    std::string path;  // Unix only: absolute socket path
    std::string host;  // Tcp only: host name or address (IPv6 without brackets)
    int port = 0;      // Tcp only

    // The spelling the operator used, normalised: "unix:/run/a.sock", "tcp:127.0.0.1:9000".
    std::string text() const;
    // php-fpm's `listen` syntax: "/run/a.sock" or "127.0.0.1:9000" ("[::1]:9000").
    std::string fpm_listen() const;
    // The mod_proxy worker URL for this socket. `worker_host` names the worker
    // so that two unix sockets never collapse into one mod_proxy worker.
    std::string proxy_url(const std::string& worker_host) const;

    // The socket a supervised replica's replacement listens on while the
    // current master still serves: "<path>.alt" (unix sockets only).
    SocketSpec alternate() const;

    bool operator==(const SocketSpec& o) const {
        return kind == o.kind && path == o.path && host == o.host && port == o.port;
    }
};

struct ReplicaSpec {
    std::string name;
    SocketSpec socket;
    std::optional<SocketSpec> status;  // php-fpm pm.status_listen socket
    std::optional<SocketSpec> probe;   // dedicated small pool for the probe lane
};

// Longest unix socket path: mod_proxy accepts 95 characters for a worker,
// and a supervised replica's alternate socket appends ".alt".
constexpr size_t kMaxUnixPathLength = 91;
// Longest replica name; names become part of mod_proxy worker host names.
constexpr size_t kMaxReplicaNameLength = 32;
// Replicas per vhost: each has up to two balancer members and the
// per-request "already tried" set is a 64-bit mask over members.
constexpr size_t kMaxReplicasPerVhost = 32;

// Each parser returns std::nullopt and fills *error with one plain sentence
// (no directive prefix: the caller adds "FpmReplica ..." context).
std::optional<SocketSpec> parse_socket(std::string_view text, std::string* error);
bool is_valid_replica_name(std::string_view name);

// `args` are the directive's words after the directive name:
// NAME SOCKET [status=SOCKET] [probe=SOCKET]
std::optional<ReplicaSpec> parse_replica(const std::vector<std::string>& args,
                                         std::string* error);

// Checks a new replica against those already declared in the same vhost:
// duplicate names, a socket used twice, the per-vhost limit.
// Returns an empty string when the replica may be added.
std::string check_replica_conflicts(const std::vector<ReplicaSpec>& existing,
                                    const ReplicaSpec& candidate);

// "500ms", "2s", "1m", bare number = seconds. Result in microseconds.
std::optional<int64_t> parse_duration_us(std::string_view text, std::string* error);

}  // namespace fpmr

namespace fpmr {

// FpmReplicaHealthCheck [interval=1s] [timeout=1s] [fails=2] [passes=1] [path=/ping]
struct HealthCheckSpec {
    int64_t interval_us = 1000000;
    int64_t timeout_us = 1000000;
    int fails = 2;
    int passes = 1;
    std::string path = "/ping";
};
std::optional<HealthCheckSpec> parse_health_check(const std::vector<std::string>& args,
                                                  std::string* error);

// The warm-up script the package installs (share/warmup.php).
constexpr const char* kDefaultWarmupScript = "/usr/share/fpm-replica/warmup.php";
// URL paths of one FpmReplicaWarmup: each is one request before ready.
constexpr size_t kMaxWarmupUrls = 32;

// FpmReplicaWarmup [timeout=DURATION] [script=PATH] [URL-PATH ...], or
// FpmReplicaWarmup off. Without the directive warm-up is on with these
// defaults (SPEC): a default-constructed spec is what the supervisor uses.
struct WarmupSpec {
    bool enabled = true;
    int64_t timeout_us = 10 * 1000000LL;  // the whole warm-up: list, compile, URL paths
    std::string script = kDefaultWarmupScript;  // absolute path of a .php file php-fpm may run
    std::vector<std::string> urls;        // absolute URL paths, in the order given

    bool operator==(const WarmupSpec& o) const {
        return enabled == o.enabled && timeout_us == o.timeout_us && script == o.script &&
               urls == o.urls;
    }
};
std::optional<WarmupSpec> parse_warmup(const std::vector<std::string>& args, std::string* error);

// FpmReplicaAssetFallback REGEX [releases=N]: the pattern (compiled by the
// glue with httpd's regex library) and how many other releases to look in.
constexpr int kDefaultAssetFallbackReleases = 3;
constexpr int kMaxAssetFallbackReleases = 16;
struct AssetFallbackSpec {
    std::string pattern;
    int releases = kDefaultAssetFallbackReleases;
};
std::optional<AssetFallbackSpec> parse_asset_fallback(const std::vector<std::string>& args,
                                                      std::string* error);

}  // namespace fpmr
