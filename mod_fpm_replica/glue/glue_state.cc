// The shared block's lifetime: created once per httpd instance by the parent,
// kept in httpd's retained data so it survives graceful restarts, and bound
// to the configured replicas at every post_config.
#include <dirent.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <string>

#include "glue.h"

namespace fpmr::glue {

namespace {

constexpr const char* kRetainedKey = "mod_fpm_replica-shared-block";

struct Retained {
    apr_shm_t* shm;  // anonymous, allocated from the process pool
};

// Set in the parent at post_config; children inherit it through fork.
SharedBlock* g_block = nullptr;

std::string random_nonce(server_rec* s) {
    unsigned char bytes[kNonceLength / 2];
    if (apr_generate_random_bytes(bytes, sizeof bytes) != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, 0, s, FPMRNO(00003)
                     "cannot read random bytes for the status nonce");
        return {};
    }
    std::string hex;
    char buf[3];
    for (unsigned char b : bytes) {
        std::snprintf(buf, sizeof buf, "%02x", b);
        hex += buf;
    }
    return hex;
}

// Whether any process whose parent is this one (an httpd child of an older
// generation; the replica supervisor does not count) is still alive: if none
// is, nothing can be in flight.
bool any_child_alive(pid_t except) {
    pid_t me = getpid();
    DIR* proc = opendir("/proc");
    if (!proc) return true;  // cannot tell: keep the counts
    bool found = false;
    while (dirent* e = readdir(proc)) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        char path[300];
        std::snprintf(path, sizeof path, "/proc/%s/stat", e->d_name);
        FILE* f = std::fopen(path, "r");
        if (!f) continue;
        char buf[512];
        size_t n = std::fread(buf, 1, sizeof buf - 1, f);
        std::fclose(f);
        buf[n] = '\0';
        // Fields after the parenthesised command name: state, ppid, ...
        const char* close = std::strrchr(buf, ')');
        if (!close) continue;
        char state;
        long ppid;
        if (std::sscanf(close + 1, " %c %ld", &state, &ppid) == 2 && ppid == me && state != 'Z' &&
            std::atol(e->d_name) != except) {
            found = true;
            break;
        }
    }
    closedir(proc);
    return found;
}

SharedBlock* obtain_block(server_rec* s) {
    void* data = ap_retained_data_get(kRetainedKey);
    if (data) {
        auto* retained = static_cast<Retained*>(data);
        SharedState st = SharedState::adopt(apr_shm_baseaddr_get(retained->shm),
                                            apr_shm_size_get(retained->shm));
        if (st.valid()) return st.block();
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, FPMRNO(00004)
                     "the shared block kept from the previous generation has another "
                     "layout (module upgraded in place?): stop and start httpd");
        return nullptr;
    }
    auto* retained = static_cast<Retained*>(ap_retained_data_create(kRetainedKey, sizeof(Retained)));
    // Anonymous shared memory from the process pool: inherited by every child
    // of every generation, destroyed only when httpd stops.
    apr_status_t rv = apr_shm_create(&retained->shm, SharedState::bytes_needed(), nullptr,
                                     ap_pglobal);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, FPMRNO(00005)
                     "cannot create %lu bytes of shared memory",
                     static_cast<unsigned long>(SharedState::bytes_needed()));
        return nullptr;
    }
    std::string nonce = random_nonce(s);
    if (nonce.empty()) return nullptr;
    return SharedState::format(apr_shm_baseaddr_get(retained->shm),
                               apr_shm_size_get(retained->shm), nonce)
        .block();
}

// The slot key: stable across graceful restarts for an unchanged vhost and
// replica name, distinct for distinct vhosts.
std::string slot_key_prefix(const server_rec* s) {
    std::string addr;
    if (s->is_virtual && s->addrs) {
        addr = std::string(s->addrs->virthost ? s->addrs->virthost : "*") + ":" +
               std::to_string(s->addrs->host_port);
    } else {
        addr = "main";
    }
    return addr + " " + vhost_label(s);
}

int post_config(apr_pool_t*, apr_pool_t*, apr_pool_t*, server_rec* main_server) {
    // The first of httpd's two configuration passes only checks: no shared memory yet.
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) return OK;
    try {
        g_block = obtain_block(main_server);
        if (!g_block) return HTTP_INTERNAL_SERVER_ERROR;
        SharedState state = shared_state();
        if (!any_child_alive(running_supervisor_pid())) state.reset_in_flight();

        auto generation = static_cast<uint32_t>(ap_state_query(AP_SQ_CONFIG_GEN));
        std::set<std::string> keys_seen;
        std::set<VhostReplicas*> bound;
        for (server_rec* s = main_server; s; s = s->next) {
            VhostReplicas* set = replicas_for(s);
            if (!set || !bound.insert(set).second) continue;
            set->vhost_label = vhost_label(set->defined_in);
            std::string prefix = slot_key_prefix(set->defined_in);
            for (int dup = 2; keys_seen.count(prefix); ++dup) {
                prefix = slot_key_prefix(set->defined_in) + " #" + std::to_string(dup);
            }
            keys_seen.insert(prefix);
            for (Member& m : set->members) {
                // The socket is part of the key (hashed, to bound its length):
                // a replica that moves to another socket is another member,
                // whose old master the supervisor drains while the new one starts.
                char socket_hash[17];
                std::snprintf(socket_hash, sizeof socket_hash, "%016llx",
                              static_cast<unsigned long long>(text_hash(m.socket.text())));
                std::string key = prefix + "|" + m.route + "|" + socket_hash;
                // A supervised replica takes no request until the supervisor
                // has seen it answer; one started by someone else is assumed
                // up. An alternate member serves only during a replacement.
                ReplicaState initial = !server_config(set->defined_in)->spawn_command
                                           ? ReplicaState::Ready
                                           : m.alternate ? ReplicaState::Stopped
                                                         : ReplicaState::Starting;
                int slot = state.claim(key, generation, initial);
                if (slot < 0) {
                    ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, FPMRNO(00006)
                                 "no free shared slot for replica '%s' (at most %lu balancer "
                                 "members per httpd instance)",
                                 m.route.c_str(), static_cast<unsigned long>(kMaxSlots));
                    return HTTP_INTERNAL_SERVER_ERROR;
                }
                m.slot = slot;
                ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, s, FPMRNO(00007)
                             "replica member '%s' (%s) of %s uses shared slot %d",
                             m.route.c_str(), m.socket.text().c_str(), set->vhost_label.c_str(),
                             slot);
            }
        }
        state.retire_unclaimed(generation);
        // Tells a running supervisor that httpd restarted (graceful or not):
        // it replaces its replicas one by one.
        state.block()->header.config_generation.store(generation);
        return OK;
    } catch (...) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, main_server, FPMRNO(00008)
                     "internal error while binding replicas to shared memory");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
}

}  // namespace

std::string vhost_label(const server_rec* s) {
    apr_port_t port = s->port;
    if (!port && s->addrs) port = s->addrs->host_port;
    return std::string(s->server_hostname ? s->server_hostname : "localhost") + ":" +
           std::to_string(port);
}

SharedState shared_state() {
    return SharedState::adopt(g_block, g_block ? SharedState::bytes_needed() : 0);
}

int64_t now_us() {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

void register_state_hooks(apr_pool_t*) {
    ap_hook_post_config(post_config, nullptr, nullptr, APR_HOOK_MIDDLE);
}

}  // namespace fpmr::glue
