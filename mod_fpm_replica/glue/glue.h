// Declarations shared by the glue files: the per-server configuration, the
// per-request steering state and the process's view of the shared block.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <memory>
#include <optional>
#include <set>
#include <sys/types.h>

#include "config_parse.h"
#include "fcgi_ping_client.h"
#include "release_resolver.h"
#include "replica_members.h"
#include "shared_state.h"
#include "supervisor_plan.h"
#include "httpd_includes.h"

namespace fpmr::glue {

// The name our lbmethod is registered under and the balancers we declare use.
constexpr const char* kLbMethodName = "fpm_replica";

// The replicas one virtual host declared. Owned by the configuration pool
// (deleted by its cleanup); a vhost without FpmReplica lines inherits the
// main server's set, pointer and all.
struct VhostReplicas {
    std::string id;                    // "fpmr-1a2b3c4d", from where the vhost is defined
    std::string balancer_url;          // "balancer://fpmr-1a2b3c4d"
    std::vector<ReplicaSpec> replicas; // in declaration order
    // A replica's primary is added at its FpmReplica line, its alternate then
    // or at FpmReplicaSpawn (glue_config.cc add_member); slots bound in post_config.
    std::vector<ReplicaMember> members;
    std::string vhost_label;           // "app.local:8080", for the status document
    server_rec* defined_in = nullptr;

    int index_of(const char* name) const;
    int member_of_route(const char* route) const;
    // The replica's member with `alternate`, or -1.
    int member_of(int replica, bool alternate) const;
};

// FpmReplicaRelease of one virtual host (or of the main server, inherited).
// Owned by the configuration pool.
struct ReleaseConfig {
    std::string symlink;                        // normalised absolute path
    std::unique_ptr<ReleaseResolver> resolver;  // made in post_config
    int shared_slot = -1;                       // its release slot in the shared blocks, -1: none
    server_rec* defined_in = nullptr;
};

struct AssetFallbackConfig {
    ap_regex_t* pattern;
    int releases;
};

struct ServerConfig {
    VhostReplicas* replicas;  // null when neither this vhost nor the main server declares any
    ReleaseConfig* release;   // null without FpmReplicaRelease
    int64_t resolve_interval_us;
    int resolve_interval_set;
    // DocumentRoot relative to the release symlink ("/public", or "" when it
    // is the symlink itself), computed in post_config for pinned vhosts.
    const char* pinned_docroot_suffix;
    // FpmReplicaStablePath: namespace mode; php-fpm gets paths under it.
    const char* stable_path;
    // Supervision: FpmReplicaSpawn, FpmReplicaHelper, FpmReplicaDrainTimeout.
    const char* spawn_command;   // as written; split when the supervisor starts
    const char* helper_path;     // null: kDefaultHelperPath
    const char* helper_config;   // null: the helper's default
    int64_t drain_timeout_us;
    int drain_timeout_set;
    // FpmReplicaHealthCheck; null without it. Pool-owned copy.
    const HealthCheckSpec* health;
    // FpmReplicaProbe: the URL path of the probe lane; null without it.
    const char* probe_path;
    // FpmReplicaPoolStatus: php-fpm's pm.status_path on the status= sockets
    // (null: the default, /fpm-status; "": off).
    const char* pool_status_path;
    // FpmReplicaWarmup; null without it (warm-up on with the defaults:
    // warmup_of). Pool-owned copy.
    const WarmupSpec* warmup;
    // FpmReplicaAssetFallback: the compiled pattern and how many releases.
    const struct AssetFallbackConfig* asset_fallback;
};

constexpr const char* kDefaultHelperPath = "/usr/libexec/fpm-replica-helper";
constexpr int64_t kDefaultDrainTimeoutUs = 60 * 1000000LL;

ServerConfig* server_config(server_rec* s);
inline VhostReplicas* replicas_for(server_rec* s) { return server_config(s)->replicas; }
inline ReleaseConfig* release_for(server_rec* s) { return server_config(s)->release; }
// The warm-up a vhost's replicas get: its FpmReplicaWarmup, or the default.
inline WarmupSpec warmup_of(const ServerConfig* conf) {
    return conf->warmup ? *conf->warmup : WarmupSpec{};
}

// The shared blocks of this httpd instance, set in post_config in the parent
// before the children fork; invalid in `apachectl -t` and before post_config.
// Reads the trusted block only (glue_state.cc says why).
SharedState shared_state();

// A read-write view of the trusted block for the httpd parent and the
// supervisor (root): maps it on construction, unmaps it on destruction, so
// no child is ever forked with a writable mapping. Invalid (not writable)
// when the mapping failed.
// The read-only descriptor of the trusted block (-1 in children): what a
// freshly forked supervisor maps read-write.
int trusted_block_descriptor();

class TrustedWriter {
public:
    TrustedWriter();
    ~TrustedWriter();
    TrustedWriter(const TrustedWriter&) = delete;
    TrustedWriter& operator=(const TrustedWriter&) = delete;
    const SharedState& state() const { return state_; }

private:
    void* rw_ = nullptr;
    size_t length_ = 0;
    SharedState state_;
};
// "app.local:8080": the vhost's name and port, as the status document and log lines show it.
std::string vhost_label(const server_rec* s);
// Microseconds of a monotonic clock, the same in every process of the host
// (deadlines and the shared time stamps; never the wall clock).
int64_t now_us();

// What the module knows about one request_rec: the release it is pinned to,
// which replica the current attempt is on and which ones it already failed
// on. Lives in r->pool.
struct RequestState {
    const char* release_dir = nullptr;  // pinned release (real path); null when not pinned
    uint64_t release_hash = 0;          // of release_dir: namespace mode routes on it
    bool pin_failed = false;            // the release symlink could not be resolved
    bool stable_paths = false;          // namespace mode: php-fpm gets paths under the stable path
    bool probe_lane = false;            // FpmReplicaProbe request sent to a probe pool
    int probe_member = -1;              // member whose status socket answers the probe
    const char* warmup_header = nullptr;  // FPM-Replica-Warmup as it came (initial request only)
    int warmup_member = -1;             // the supervisor's warm-up request for this member
    ReleaseTicket release_ticket;       // initial request: its count in the release's figures
    bool bound_for_php = false;         // SetHandler fpm-replica: steered to a replica
    int answered_slot = -1;             // member slot whose attempt ended without a backend error

    VhostReplicas* set = nullptr;
    int current = -1;                  // replica index of the attempt in progress
    uint64_t tried_mask = 0;           // replicas this request already failed on
    bool gateway_env_preexisting = false;
};
RequestState* request_state(request_rec* r, bool create);
// True when the server configuration, not an .htaccess file, made this request's handler fpm-replica-status (glue_control_guard.cc).
bool status_handler_set_by_server_config(request_rec* r);

// Ends the attempt in progress: in_flight--, and on failure the replica is
// marked as refusing for a while.
void finish_attempt(RequestState* st, request_rec* r, bool failed);

// The php-fpm pool figures of member slot `slot`, from its status socket
// at the vhost's FpmReplicaPoolStatus path, at most a second old
// (glue_pool_status.cc); nullopt when it did not answer or the path is off.
std::optional<PoolStatus> pool_status_of(server_rec* s, int slot, const SocketSpec& status_socket);

// Takes r (the status handler's request) out of its release's requests in
// flight (glue_request_figures.cc).
void stop_counting_in_release(request_rec* r);

// This child's row of in-flight counts (glue_child_counts.cc), -1 without one.
int child_row();
// The httpd parent at a restart: gives back the rows of children that are no
// longer among `children` (exits it was not told of).
void release_rows_of_gone_children(const SharedState& state, const std::set<pid_t>& children,
                                   server_rec* s);

// Hook and handler registration, one function per glue file.
void register_config_check_hooks(apr_pool_t* p);
void register_state_hooks(apr_pool_t* p);
void register_steering_hooks(apr_pool_t* p);
void register_stable_path_hooks(apr_pool_t* p);
void register_status_hooks(apr_pool_t* p);
void register_pinning_hooks(apr_pool_t* p);
void register_supervisor_hooks(apr_pool_t* p);
void register_probe_hooks(apr_pool_t* p);
void register_control_guard_hooks(apr_pool_t* p);
void register_child_count_hooks(apr_pool_t* p);
void register_request_figure_hooks(apr_pool_t* p);
void register_asset_fallback_hooks(apr_pool_t* p);
void register_graceful_wakeup_hooks();

// A FastCGI GET of `path` on `spec`; true on any complete answer within the
// timeout (the readiness test, the health checks, the probe lane).
bool answers_ping(const SocketSpec& spec, int timeout_ms, const std::string& path = "/ping");
// Waits in the calling thread until `client` is answered or failed (its
// deadline, `deadline_us`, bounds the wait).
FcgiPingClient::Result wait_for_answer(FcgiPingClient& client, int64_t deadline_us);
// The pid of the process listening on a unix socket (the php-fpm master that
// created it), from SO_PEERCRED (glue_listener_pid.cc); 0 when unknown or TCP.
int32_t listener_pid(const SocketSpec& socket);
// The running replica supervisor's pid, or 0.
pid_t running_supervisor_pid();
// The supervisor process's life (glue_supervisor.cc), in the forked child:
// runs `plan`, reads later plans from `plan_fd` (sent by `parent` only),
// never returns.
[[noreturn]] void run_supervisor(server_rec* s, const SupervisorPlan& plan, int plan_fd,
                                 pid_t parent);

// Namespace mode: a request pinned to release R that goes to php-fpm gets
// SCRIPT_FILENAME, DOCUMENT_ROOT and PATH_TRANSLATED under the stable path
// instead of under R (static files stay served from R).
void use_stable_paths(request_rec* r, RequestState* st);

// Namespace mode with supervision: replicas are routed by the release they
// serve, and a request pinned to a release no replica serves yet waits for
// the supervisor to bring one up, at most this long.
constexpr int64_t kReleaseWaitUs = 15 * 1000000LL;
inline bool routes_by_release(const VhostReplicas* set) {
    return set && server_config(set->defined_in)->stable_path &&
           server_config(set->defined_in)->spawn_command;
}
// The release a request's replica must serve (usable()'s pin, selection.h):
// the one it is pinned to where replicas are routed by release, else 0 (any).
inline uint64_t pinned_release(const RequestState* st) {
    return routes_by_release(st->set) ? st->release_hash : 0;
}

// Namespace mode with supervision (glue_release_wait.cc): OK once a replica
// serves the release `st` is pinned to, waiting up to kReleaseWaitUs for the
// supervisor to bring one up; else 503 with a log line.
int wait_for_release(request_rec* r, RequestState* st);

// The release the vhost's symlink names now, or null (no release configured,
// or it does not resolve).
const ReleaseResolution* current_release(server_rec* s);

extern const command_rec directives[];

}  // namespace fpmr::glue
