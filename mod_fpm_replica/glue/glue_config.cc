// The directive handlers, each parsing its arguments through the core, an
// FpmReplica line becoming the mod_proxy configuration an operator would
// otherwise write by hand (balancer members with our lbmethod), run through
// mod_proxy's own directives so mod_proxy owns its workers.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "glue.h"
#include "replica_members.h"
#include "supervision.h"

namespace fpmr::glue {

namespace {

// Name of our lbmethod provider (ProxySet lbmethod=fpm_replica).

struct ModuleNeed {
    const char* source_name;  // as ap_find_linked_module knows it
    const char* load_line;
};
constexpr ModuleNeed kNeededModules[] = {
    {"mod_proxy.c", "LoadModule proxy_module"},
    {"mod_proxy_fcgi.c", "LoadModule proxy_fcgi_module"},
    {"mod_proxy_balancer.c", "LoadModule proxy_balancer_module"},
    {"mod_slotmem_shm.c", "LoadModule slotmem_shm_module"},
};

template <typename T>
apr_status_t delete_object(void* data) {
    delete static_cast<T*>(data);
    return APR_SUCCESS;
}

// A C++ object the configuration pool owns: deleted by the pool's cleanup,
// so its lifetime follows httpd's configuration generations.
template <typename T, typename... Args>
T* new_pool_owned(apr_pool_t* pool, Args&&... args) {
    T* object = new T(std::forward<Args>(args)...);
    apr_pool_cleanup_register(pool, object, delete_object<T>, apr_pool_cleanup_null);
    return object;
}

// A stable, hostname-safe id for the vhost section a directive sits in.
std::string vhost_id(const server_rec* s) {
    std::string where = s->is_virtual ? std::string(s->defn_name ? s->defn_name : "?") + ":" +
                                            std::to_string(s->defn_line_number)
                                      : std::string("main");
    // The one text hash (shared_state.h), folded to 32 bits: worker names
    // stay short (mod_proxy bounds them).
    uint64_t hash = text_hash(where);
    char buf[16];
    std::snprintf(buf, sizeof buf, "%08x", static_cast<uint32_t>(hash ^ (hash >> 32)));
    return std::string("fpmr-") + buf;
}

// Runs one mod_proxy directive as if it were written where `cmd` is.
const char* run_proxy_directive(cmd_parms* cmd, const char* directive, const std::string& args) {
    auto* node = static_cast<ap_directive_t*>(apr_pcalloc(cmd->pool, sizeof(ap_directive_t)));
    node->directive = directive;
    node->args = apr_pstrdup(cmd->pool, args.c_str());
    node->filename = cmd->directive ? cmd->directive->filename : "FpmReplica";
    node->line_num = cmd->directive ? cmd->directive->line_num : 0;
    cmd_parms sub = *cmd;
    return ap_walk_config(node, &sub, cmd->context);
}

const char* fail(cmd_parms* cmd, const std::string& message) {
    return apr_pstrcat(cmd->pool, cmd->cmd->name, ": ", message.c_str(), NULL);
}

// One entry of the directives table, written beside its handler: every
// directive is server-wide (RSRC_CONF) and carries no per-directive data.
// httpd's C++ view of a directive function is `const char* (*)()`; the cast
// goes through void(*)() so the compiler knows it is deliberate.
template <typename F>
command_rec directive(const char* name, F* handler, cmd_how how, const char* help) {
    return {name, reinterpret_cast<cmd_func>(reinterpret_cast<void (*)()>(handler)), nullptr,
            RSRC_CONF, how, help};
}

// Declares one balancer member of a replica to mod_proxy (the member as
// replica_members.h derives it; none for the alternate of a TCP replica).
const char* add_member(cmd_parms* cmd, VhostReplicas* set, size_t replica, bool alternate) {
    const ReplicaSpec& spec = set->replicas[replica];
    std::optional<ReplicaMember> m =
        replica_member(set->id, static_cast<int>(replica), spec, alternate);
    if (!m) return nullptr;  // restarts in place
    if (const char* err = run_proxy_directive(cmd, "BalancerMember",
                                              balancer_member_arguments(set->balancer_url, *m))) {
        return fail(cmd, spec.name + ": mod_proxy refused the member: " + err);
    }
    set->members.push_back(std::move(*m));
    return nullptr;
}

const char* set_replica(cmd_parms* cmd, void*, int argc, char* const argv[]) {
    try {
        if (const char* err = ap_check_cmd_context(cmd, NOT_IN_DIR_LOC_FILE)) return err;
        for (const auto& need : kNeededModules) {
            if (!ap_find_linked_module(need.source_name)) {
                return fail(cmd, std::string("needs ") + need.source_name + ": add '" +
                                     need.load_line + " ...' before the first FpmReplica line");
            }
        }
        std::vector<std::string> args(argv, argv + argc);
        std::string error;
        auto spec = parse_replica(args, &error);
        if (!spec) return fail(cmd, error);

        ServerConfig* conf = server_config(cmd->server);
        if (!conf->replicas) {
            auto* set = new_pool_owned<VhostReplicas>(cmd->pool);
            set->id = vhost_id(cmd->server);
            set->balancer_url = "balancer://" + set->id;
            set->defined_in = cmd->server;
            conf->replicas = set;
        }
        VhostReplicas* set = conf->replicas;
        error = check_replica_conflicts(set->replicas, *spec);
        if (!error.empty()) return fail(cmd, error);

        bool first = set->replicas.empty();
        set->replicas.push_back(*spec);
        if (const char* err = add_member(cmd, set, set->replicas.size() - 1, false)) return err;
        if (server_config(cmd->server)->spawn_command) {
            if (const char* err = add_member(cmd, set, set->replicas.size() - 1, true)) return err;
        }
        if (first) {
            std::string params = set->balancer_url + " lbmethod=" + kLbMethodName;
            if (const char* err = run_proxy_directive(cmd, "ProxySet", params)) {
                return fail(cmd, std::string("mod_proxy refused the balancer: ") + err);
            }
        }
        return nullptr;
    } catch (const std::exception& e) {
        return fail(cmd, std::string("internal error: ") + e.what());
    } catch (...) {
        return fail(cmd, "internal error");
    }
}

const command_rec kReplicaDirective = directive(
    "FpmReplica", set_replica, TAKE_ARGV,
    "FpmReplica NAME SOCKET [status=SOCKET] [probe=SOCKET]: a php-fpm master "
    "requests are steered to (SOCKET is unix:/path or tcp:HOST:PORT)");

const char* set_release(cmd_parms* cmd, void*, const char* arg) {
    try {
        if (const char* err = ap_check_cmd_context(cmd, NOT_IN_DIR_LOC_FILE)) return err;
        std::string symlink = normalize_absolute_path(arg);
        if (symlink.empty() || symlink == "/") {
            return fail(cmd, std::string("'") + arg +
                                 "' must be an absolute path without '.' or '..' components, "
                                 "such as /srv/app/current");
        }
        ServerConfig* conf = server_config(cmd->server);
        if (conf->release) return fail(cmd, "given twice in this virtual host");
        auto* release = new_pool_owned<ReleaseConfig>(cmd->pool);
        release->symlink = symlink;
        release->defined_in = cmd->server;
        conf->release = release;
        return nullptr;
    } catch (...) {
        return fail(cmd, "internal error");
    }
}

const command_rec kReleaseDirective = directive(
    "FpmReplicaRelease", set_release, TAKE1,
    "FpmReplicaRelease PATH: the release symlink (/srv/app/current); every request "
    "is pinned to the release it names when the request starts");

const char* set_resolve_interval(cmd_parms* cmd, void*, const char* arg) {
    if (const char* err = ap_check_cmd_context(cmd, NOT_IN_DIR_LOC_FILE)) return err;
    std::string error;
    auto us = parse_duration_us(arg, &error);
    if (!us) return fail(cmd, error);
    if (*us > 3600LL * 1000000) return fail(cmd, std::string("'") + arg + "' is longer than an hour");
    ServerConfig* conf = server_config(cmd->server);
    conf->resolve_interval_us = *us;
    conf->resolve_interval_set = 1;
    return nullptr;
}

const command_rec kResolveIntervalDirective = directive(
    "FpmReplicaResolveInterval", set_resolve_interval, TAKE1,
    "FpmReplicaResolveInterval DURATION: how long a resolved release may be reused "
    "(default 0: read the symlink on every request)");

const char* set_stable_path(cmd_parms* cmd, void*, const char* arg) {
    if (const char* err = ap_check_cmd_context(cmd, NOT_IN_DIR_LOC_FILE)) return err;
    std::string path = normalize_absolute_path(arg);
    if (path.empty() || path == "/") {
        return fail(cmd, std::string("'") + arg +
                             "' must be an absolute path without '.' or '..' components");
    }
    server_config(cmd->server)->stable_path = apr_pstrdup(cmd->pool, path.c_str());
    return nullptr;
}

const command_rec kStablePathDirective = directive(
    "FpmReplicaStablePath", set_stable_path, TAKE1,
    "FpmReplicaStablePath DIR: namespace mode; php-fpm receives script paths under "
    "DIR, where each replica has its release bind-mounted");

const char* set_spawn(cmd_parms* cmd, void*, const char* arg) {
    if (const char* err = ap_check_cmd_context(cmd, NOT_IN_DIR_LOC_FILE)) return err;
    std::string error;
    auto words = split_command(arg, &error);
    if (!words) return fail(cmd, std::string("'") + arg + "' " + error);
    if ((*words)[0].empty() || (*words)[0][0] != '/') {
        return fail(cmd, std::string("'") + arg + "' must start with the absolute path of php-fpm");
    }
    ServerConfig* conf = server_config(cmd->server);
    if (conf->spawn_command) return fail(cmd, "given twice in this virtual host");
    conf->spawn_command = apr_pstrdup(cmd->pool, arg);
    // Replicas declared before this line get their alternate members now.
    if (VhostReplicas* set = conf->replicas) {
        for (size_t i = 0; i < set->replicas.size(); ++i) {
            if (const char* err = add_member(cmd, set, i, true)) return err;
        }
    }
    return nullptr;
}

const command_rec kSpawnDirective = directive(
    "FpmReplicaSpawn", set_spawn, TAKE1,
    "FpmReplicaSpawn \"COMMAND\": the module starts and supervises this vhost's "
    "replicas with COMMAND (php-fpm in the foreground)");

const char* set_helper(cmd_parms* cmd, void*, const char* path, const char* option) {
    if (const char* err = ap_check_cmd_context(cmd, NOT_IN_DIR_LOC_FILE)) return err;
    if (normalize_absolute_path(path).empty()) {
        return fail(cmd, std::string("'") + path + "' must be an absolute path");
    }
    ServerConfig* conf = server_config(cmd->server);
    conf->helper_path = apr_pstrdup(cmd->pool, path);
    conf->helper_config = nullptr;
    if (option) {
        std::string opt = option;
        if (opt.rfind("config=", 0) != 0 || normalize_absolute_path(opt.substr(7)).empty()) {
            return fail(cmd, "'" + opt + "' is not config=/absolute/path");
        }
        conf->helper_config = apr_pstrdup(cmd->pool, opt.c_str() + 7);
    }
    return nullptr;
}

const command_rec kHelperDirective = directive(
    "FpmReplicaHelper", set_helper, TAKE12,
    "FpmReplicaHelper PATH [config=FILE]: the fpm-replica-helper binary and the "
    "configuration file passed to it");

const char* set_health_check(cmd_parms* cmd, void*, int argc, char* const argv[]) {
    try {
        if (const char* err = ap_check_cmd_context(cmd, NOT_IN_DIR_LOC_FILE)) return err;
        std::string error;
        auto spec = parse_health_check(std::vector<std::string>(argv, argv + argc), &error);
        if (!spec) return fail(cmd, error);
        server_config(cmd->server)->health = new_pool_owned<HealthCheckSpec>(cmd->pool, *spec);
        return nullptr;
    } catch (...) {
        return fail(cmd, "internal error");
    }
}

const command_rec kHealthCheckDirective = directive(
    "FpmReplicaHealthCheck", set_health_check, TAKE_ARGV,
    "FpmReplicaHealthCheck [interval=1s] [timeout=1s] [fails=2] [passes=1] "
    "[path=/ping]: FastCGI checks of every replica (status socket first)");

const char* set_warmup(cmd_parms* cmd, void*, int argc, char* const argv[]) {
    try {
        if (const char* err = ap_check_cmd_context(cmd, NOT_IN_DIR_LOC_FILE)) return err;
        ServerConfig* conf = server_config(cmd->server);
        if (conf->warmup) return fail(cmd, "given twice in this virtual host");
        std::string error;
        auto spec = parse_warmup(std::vector<std::string>(argv, argv + argc), &error);
        if (!spec) return fail(cmd, error);
        conf->warmup = new_pool_owned<WarmupSpec>(cmd->pool, *spec);
        return nullptr;
    } catch (...) {
        return fail(cmd, "internal error");
    }
}

const command_rec kWarmupDirective = directive(
    "FpmReplicaWarmup", set_warmup, TAKE_ARGV,
    "FpmReplicaWarmup [timeout=10s] [script=PATH] | off: a new master "
    "compiles the working set of the one it replaces before it takes traffic");

// A path as it stands in a request line: absolute, no query or fragment.
bool is_plain_url_path(const char* arg) { return arg[0] == '/' && !std::strpbrk(arg, " \t?#"); }

const char* set_probe(cmd_parms* cmd, void*, const char* arg) {
    if (const char* err = ap_check_cmd_context(cmd, NOT_IN_DIR_LOC_FILE)) return err;
    if (!is_plain_url_path(arg)) {
        return fail(cmd, std::string("'") + arg + "' must be a URL path such as /healthz.php");
    }
    server_config(cmd->server)->probe_path = apr_pstrdup(cmd->pool, arg);
    return nullptr;
}

const command_rec kProbeDirective = directive(
    "FpmReplicaProbe", set_probe, TAKE1,
    "FpmReplicaProbe URL-PATH: requests for this path go to a ready replica's "
    "probe= pool (or are answered from its status socket's ping)");

const char* set_pool_status(cmd_parms* cmd, void*, const char* arg) {
    if (const char* err = ap_check_cmd_context(cmd, NOT_IN_DIR_LOC_FILE)) return err;
    if (std::strcmp(arg, "off") == 0) {
        server_config(cmd->server)->pool_status_path = "";
        return nullptr;
    }
    if (!is_plain_url_path(arg)) {
        return fail(cmd, std::string("'") + arg + "' must be php-fpm's pm.status_path (a URL path such as "
                         "/fpm-status) or off");
    }
    server_config(cmd->server)->pool_status_path = apr_pstrdup(cmd->pool, arg);
    return nullptr;
}

const command_rec kPoolStatusDirective = directive(
    "FpmReplicaPoolStatus", set_pool_status, TAKE1,
    "FpmReplicaPoolStatus URL-PATH|off: php-fpm's pm.status_path on the replicas' "
    "status= sockets, read for the Prometheus output (default /fpm-status)");

const char* set_asset_fallback(cmd_parms* cmd, void*, int argc, char* const argv[]) {
    try {
        if (const char* err = ap_check_cmd_context(cmd, NOT_IN_DIR_LOC_FILE)) return err;
        ServerConfig* conf = server_config(cmd->server);
        if (conf->asset_fallback) return fail(cmd, "given twice in this virtual host");
        std::string error;
        auto spec = parse_asset_fallback(std::vector<std::string>(argv, argv + argc), &error);
        if (!spec) return fail(cmd, error);
        ap_regex_t* pattern = ap_pregcomp(cmd->pool, spec->pattern.c_str(), AP_REG_EXTENDED | AP_REG_NOSUB);
        if (!pattern) return fail(cmd, "'" + spec->pattern + "' is not a regular expression");
        auto* config = static_cast<AssetFallbackConfig*>(apr_pcalloc(cmd->pool, sizeof(AssetFallbackConfig)));
        config->pattern = pattern;
        config->releases = spec->releases;
        conf->asset_fallback = config;
        return nullptr;
    } catch (...) {
        return fail(cmd, "internal error");
    }
}

const command_rec kAssetFallbackDirective = directive(
    "FpmReplicaAssetFallback", set_asset_fallback, TAKE_ARGV,
    "FpmReplicaAssetFallback REGEX [releases=3]: a static file matching REGEX that "
    "is missing from the pinned release is served from the newest other release that has it");

const char* set_drain_timeout(cmd_parms* cmd, void*, const char* arg) {
    if (const char* err = ap_check_cmd_context(cmd, NOT_IN_DIR_LOC_FILE)) return err;
    std::string error;
    auto us = parse_duration_us(arg, &error);
    if (!us) return fail(cmd, error);
    if (*us < 1000000 || *us > 3600LL * 1000000) {
        return fail(cmd, std::string("'") + arg + "' must be between 1s and 1h");
    }
    ServerConfig* conf = server_config(cmd->server);
    conf->drain_timeout_us = *us;
    conf->drain_timeout_set = 1;
    return nullptr;
}

const command_rec kDrainTimeoutDirective = directive(
    "FpmReplicaDrainTimeout", set_drain_timeout, TAKE1,
    "FpmReplicaDrainTimeout DURATION: how long a stopping replica may finish its "
    "requests before it is killed (default 60s)");

}  // namespace

int VhostReplicas::index_of(const char* name) const {
    if (!name) return -1;
    for (size_t i = 0; i < replicas.size(); ++i) {
        if (replicas[i].name == name) return static_cast<int>(i);
    }
    return -1;
}

int VhostReplicas::member_of_route(const char* route) const {
    if (!route) return -1;
    for (size_t i = 0; i < members.size(); ++i) {
        if (members[i].route == route) return static_cast<int>(i);
    }
    return -1;
}

int VhostReplicas::member_of(int replica, bool alternate) const {
    for (size_t i = 0; i < members.size(); ++i) {
        if (members[i].replica == replica && members[i].alternate == alternate) return static_cast<int>(i);
    }
    return -1;
}

// In the order `httpd -L` lists them.
const command_rec directives[] = {
    kReplicaDirective, kReleaseDirective, kResolveIntervalDirective, kStablePathDirective,
    kSpawnDirective, kHelperDirective, kDrainTimeoutDirective, kHealthCheckDirective,
    kProbeDirective, kWarmupDirective, kPoolStatusDirective,
    kAssetFallbackDirective, {nullptr, nullptr, nullptr, 0, RAW_ARGS, nullptr},
};

}  // namespace fpmr::glue
