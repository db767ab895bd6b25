// Directive handlers and configuration checks. An FpmReplica line is parsed
// by the core, then turned into the mod_proxy configuration an operator would
// otherwise write by hand (a balancer member with our lbmethod), executed
// through mod_proxy's own directives so mod_proxy owns its workers.
#include <dirent.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <optional>
#include <string>
#include <vector>

#include "glue.h"
#include "replica_members.h"
#include "supervision.h"

namespace fpmr::glue {

namespace {

// Name of our lbmethod provider (ProxySet lbmethod=fpm_replica).
constexpr const char* kLbMethodName = "fpm_replica";

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

// A stable, hostname-safe id for the vhost section a directive sits in.
std::string vhost_id(const server_rec* s) {
    std::string where = s->is_virtual ? std::string(s->defn_name ? s->defn_name : "?") + ":" +
                                            std::to_string(s->defn_line_number)
                                      : std::string("main");
    uint32_t hash = 2166136261u;  // FNV-1a
    for (unsigned char c : where) {
        hash ^= c;
        hash *= 16777619u;
    }
    char buf[16];
    std::snprintf(buf, sizeof buf, "%08x", hash);
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
            auto* set = new VhostReplicas();
            apr_pool_cleanup_register(cmd->pool, set, delete_object<VhostReplicas>, apr_pool_cleanup_null);
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
        auto* release = new ReleaseConfig();
        apr_pool_cleanup_register(cmd->pool, release, delete_object<ReleaseConfig>,
                                  apr_pool_cleanup_null);
        release->symlink = symlink;
        release->defined_in = cmd->server;
        conf->release = release;
        return nullptr;
    } catch (...) {
        return fail(cmd, "internal error");
    }
}

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

const char* set_health_check(cmd_parms* cmd, void*, int argc, char* const argv[]) {
    try {
        if (const char* err = ap_check_cmd_context(cmd, NOT_IN_DIR_LOC_FILE)) return err;
        std::string error;
        auto spec = parse_health_check(std::vector<std::string>(argv, argv + argc), &error);
        if (!spec) return fail(cmd, error);
        auto* owned = new HealthCheckSpec(*spec);
        apr_pool_cleanup_register(cmd->pool, owned, delete_object<HealthCheckSpec>,
                                  apr_pool_cleanup_null);
        server_config(cmd->server)->health = owned;
        return nullptr;
    } catch (...) {
        return fail(cmd, "internal error");
    }
}

const char* set_probe(cmd_parms* cmd, void*, const char* arg) {
    if (const char* err = ap_check_cmd_context(cmd, NOT_IN_DIR_LOC_FILE)) return err;
    if (arg[0] != '/' || std::strpbrk(arg, " \t?#")) {
        return fail(cmd, std::string("'") + arg + "' must be a URL path such as /healthz.php");
    }
    server_config(cmd->server)->probe_path = apr_pstrdup(cmd->pool, arg);
    return nullptr;
}

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

// The stable path must be an existing, empty directory (the host never sees
// a release there: the mounts live in the replicas' namespaces), outside the
// release symlink and the directory holding the releases.
bool check_stable_path(server_rec* s, const char* stable, const ReleaseConfig* release) {
    std::string why;
    struct stat st;
    std::string releases_dir;
    if (release) {
        if (char* real = ::realpath(release->symlink.c_str(), nullptr)) {
            releases_dir = real;
            std::free(real);
            releases_dir = releases_dir.substr(0, releases_dir.rfind('/'));
        }
    }
    if (!release) {
        why = "needs FpmReplicaRelease in the same virtual host";
    } else if (path_is_under(stable, release->symlink) ||
               (!releases_dir.empty() && releases_dir != "/" && path_is_under(stable, releases_dir))) {
        why = "lies inside the releases ('" + release->symlink + "' or '" + releases_dir + "')";
    } else if (::lstat(stable, &st) != 0 || !S_ISDIR(st.st_mode)) {
        why = "is not an existing directory";
    } else if (DIR* dir = ::opendir(stable)) {
        for (dirent* e; (e = ::readdir(dir));) {
            if (std::strcmp(e->d_name, ".") != 0 && std::strcmp(e->d_name, "..") != 0) {
                why = "is not empty";
                break;
            }
        }
        ::closedir(dir);
    } else {
        why = "cannot be read";
    }
    if (why.empty()) return true;
    ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, FPMRNO(00026)
                 "FpmReplicaStablePath: '%s' of %s %s", stable, vhost_label(s).c_str(),
                 why.c_str());
    return false;
}

// The DocumentRoot of a vhost with FpmReplicaRelease must be the symlink or
// lie under it: pinning rebases it onto the release the symlink names.
bool check_document_root(server_rec* s, const ReleaseConfig& release) {
    auto* core = static_cast<core_server_config*>(ap_get_core_module_config(s->module_config));
    std::string docroot = normalize_absolute_path(core->ap_document_root ? core->ap_document_root : "");
    if (!docroot.empty() && path_is_under(docroot, release.symlink)) return true;
    ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, FPMRNO(00022)
                 "FpmReplicaRelease: DocumentRoot '%s' of %s is neither the release symlink "
                 "'%s' nor under it",
                 core->ap_document_root ? core->ap_document_root : "(none)",
                 vhost_label(s).c_str(), release.symlink.c_str());
    return false;
}

// Cross-directive checks; runs in `apachectl configtest` too.
int check_config(apr_pool_t*, apr_pool_t*, apr_pool_t*, server_rec* main_server) {
    try {
        bool ok = true;
        for (server_rec* s = main_server; s; s = s->next) {
            if (ReleaseConfig* release = release_for(s)) ok = check_document_root(s, *release) && ok;
            if (const char* stable = server_config(s)->stable_path) {
                ok = check_stable_path(s, stable, release_for(s)) && ok;
            }
        }
        if (!ok) return !OK;
        for (server_rec* s = main_server; s; s = s->next) {
            VhostReplicas* set = replicas_for(s);
            if (!set || set->defined_in != s) continue;
            if (set->replicas.size() == 1) {
                ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, FPMRNO(00001)
                             "FpmReplica: only one replica ('%s') in %s: requests fail "
                             "while it restarts; declare two or more for zero downtime",
                             set->replicas[0].name.c_str(),
                             s->server_hostname ? s->server_hostname : "this server");
            }
        }
        return OK;
    } catch (...) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, main_server, FPMRNO(00002)
                     "internal error while checking the configuration");
        return !OK;
    }
}

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

// httpd's C++ view of a directive function is `const char* (*)()`; go
// through void(*)() so the compiler knows the cast is deliberate.
template <typename F>
cmd_func as_cmd_func(F* f) {
    return reinterpret_cast<cmd_func>(reinterpret_cast<void (*)()>(f));
}

const command_rec directives[] = {
    AP_INIT_TAKE_ARGV("FpmReplica", as_cmd_func(set_replica),
                      nullptr, RSRC_CONF,
                      "FpmReplica NAME SOCKET [status=SOCKET] [probe=SOCKET]: a php-fpm master "
                      "requests are steered to (SOCKET is unix:/path or tcp:HOST:PORT)"),
    AP_INIT_TAKE1("FpmReplicaRelease", as_cmd_func(set_release), nullptr, RSRC_CONF,
                  "FpmReplicaRelease PATH: the release symlink (/srv/app/current); every request "
                  "is pinned to the release it names when the request starts"),
    AP_INIT_TAKE1("FpmReplicaResolveInterval", as_cmd_func(set_resolve_interval), nullptr,
                  RSRC_CONF,
                  "FpmReplicaResolveInterval DURATION: how long a resolved release may be reused "
                  "(default 0: read the symlink on every request)"),
    AP_INIT_TAKE1("FpmReplicaStablePath", as_cmd_func(set_stable_path), nullptr, RSRC_CONF,
                  "FpmReplicaStablePath DIR: namespace mode; php-fpm receives script paths "
                  "under DIR, where each replica has its release bind-mounted"),
    AP_INIT_TAKE1("FpmReplicaSpawn", as_cmd_func(set_spawn), nullptr, RSRC_CONF,
                  "FpmReplicaSpawn \"COMMAND\": the module starts and supervises this vhost's "
                  "replicas with COMMAND (php-fpm in the foreground)"),
    AP_INIT_TAKE12("FpmReplicaHelper", as_cmd_func(set_helper), nullptr, RSRC_CONF,
                   "FpmReplicaHelper PATH [config=FILE]: the fpm-replica-helper binary and the "
                   "configuration file passed to it"),
    AP_INIT_TAKE1("FpmReplicaDrainTimeout", as_cmd_func(set_drain_timeout), nullptr, RSRC_CONF,
                  "FpmReplicaDrainTimeout DURATION: how long a stopping replica may finish its "
                  "requests before it is killed (default 60s)"),
    AP_INIT_TAKE_ARGV("FpmReplicaHealthCheck", as_cmd_func(set_health_check), nullptr, RSRC_CONF,
                      "FpmReplicaHealthCheck [interval=1s] [timeout=1s] [fails=2] [passes=1] "
                      "[path=/ping]: FastCGI checks of every replica (status socket first)"),
    AP_INIT_TAKE1("FpmReplicaProbe", as_cmd_func(set_probe), nullptr, RSRC_CONF,
                  "FpmReplicaProbe URL-PATH: requests for this path go to a ready replica's "
                  "probe= pool (or are answered from its status socket's ping)"),
    {nullptr, nullptr, nullptr, 0, RAW_ARGS, nullptr},
};

void register_config_hooks(apr_pool_t*) {
    // check_config runs for `apachectl configtest` too, where post_config does not.
    ap_hook_check_config(check_config, nullptr, nullptr, APR_HOOK_MIDDLE);
}

}  // namespace fpmr::glue
