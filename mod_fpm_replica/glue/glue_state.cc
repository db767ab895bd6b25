// The shared blocks' lifetime: created once per httpd instance by the parent,
// kept in httpd's retained data so they survive graceful restarts, and bound
// to the configured replicas at every post_config.
//
// The open block is anonymous shared memory (apr_shm), read-write in every
// child. The trusted block is a memfd owned by root with mode 0600: the
// parent maps it read-only from a read-only descriptor before any child
// exists, so every child inherits a mapping it cannot make writable
// (mprotect needs a writable descriptor; /proc/self/mem cannot write a
// shared read-only mapping; reopening the descriptor read-write needs root).
// The parent (in post_config) and the supervisor map it read-write through
// /proc/self/fd for as long as they write it.
#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <set>
#include <string>

#include "glue.h"
#include "proc_stat.h"

namespace fpmr::glue {

namespace {

// The retained data's name carries the layout version: a module upgraded
// in place finds no block of another layout under its own name, and sees
// by the older names that one exists (FPMR00004).
constexpr const char* kRetainedKey = "mod_fpm_replica-shared-blocks-v9";
constexpr const char* kOlderRetainedKeys[] = {"mod_fpm_replica-shared-block",
                                              "mod_fpm_replica-shared-blocks-v8"};

struct Retained {
    apr_shm_t* shm;           // the open block: anonymous, allocated from the process pool
    int trusted_fd;           // read-only descriptor of the trusted block's memfd
    const void* trusted_ro;   // the parent's read-only mapping of it, inherited by children
};

// Set in the parent at post_config; children inherit them through fork.
SharedBlock* g_block = nullptr;
const TrustedBlock* g_trusted = nullptr;
int g_trusted_fd = -1;

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

// The live processes whose parent is this one (httpd children of this and
// older generations; the replica supervisor does not count), or nullopt
// when /proc cannot be read.
std::optional<std::set<pid_t>> live_children(pid_t except) {
    pid_t me = getpid();
    DIR* proc = opendir("/proc");
    if (!proc) return std::nullopt;
    std::set<pid_t> found;
    while (dirent* e = readdir(proc)) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        pid_t pid = static_cast<pid_t>(std::atol(e->d_name));
        std::optional<ProcStat> st = read_proc_stat(pid);
        if (st && st->ppid == me && !st->exited() && pid != except) found.insert(pid);
    }
    closedir(proc);
    return found;
}

// A read-write mapping of the trusted block, through a new descriptor
// opened from the read-only one (root only: the memfd is 0600 root).
void* map_trusted_rw(int trusted_fd) {
    char path[40];
    std::snprintf(path, sizeof path, "/proc/self/fd/%d", trusted_fd);
    int fd = ::open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) return nullptr;
    void* p = ::mmap(nullptr, SharedState::trusted_bytes_needed(), PROT_READ | PROT_WRITE,
                     MAP_SHARED, fd, 0);
    ::close(fd);
    return p == MAP_FAILED ? nullptr : p;
}

// Makes the trusted block: a 0600 memfd, formatted through a temporary
// read-write mapping, kept as a read-only descriptor and mapping.
bool create_trusted(server_rec* s, Retained* retained, void** rw_out) {
    int fd = ::memfd_create("fpm-replica-trusted", MFD_CLOEXEC);
    if (fd < 0 || ::fchmod(fd, 0600) != 0 ||
        ::ftruncate(fd, static_cast<off_t>(SharedState::trusted_bytes_needed())) != 0) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, errno, s, FPMRNO(00058)
                     "cannot create the supervisor's shared memory (memfd)");
        if (fd >= 0) ::close(fd);
        return false;
    }
    char path[40];
    std::snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    int ro = ::open(path, O_RDONLY | O_CLOEXEC);
    void* rw = ::mmap(nullptr, SharedState::trusted_bytes_needed(), PROT_READ | PROT_WRITE,
                      MAP_SHARED, fd, 0);
    ::close(fd);
    void* mapped_ro = ro < 0 ? MAP_FAILED
                             : ::mmap(nullptr, SharedState::trusted_bytes_needed(), PROT_READ,
                                      MAP_SHARED, ro, 0);
    if (ro < 0 || rw == MAP_FAILED || mapped_ro == MAP_FAILED) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, errno, s, FPMRNO(00059)
                     "cannot map the supervisor's shared memory (is /proc mounted?)");
        if (ro >= 0) ::close(ro);
        if (rw != MAP_FAILED) ::munmap(rw, SharedState::trusted_bytes_needed());
        return false;
    }
    retained->trusted_fd = ro;
    retained->trusted_ro = mapped_ro;
    *rw_out = rw;
    return true;
}

bool obtain_blocks(server_rec* s) {
    for (const char* older : kOlderRetainedKeys) {
        if (ap_retained_data_get(older)) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, FPMRNO(00070)
                         "this httpd runs an older mod_fpm_replica's shared memory (module "
                         "upgraded in place?): stop and start httpd (apache2 restart)");
            return false;
        }
    }
    void* data = ap_retained_data_get(kRetainedKey);
    if (data) {
        auto* retained = static_cast<Retained*>(data);
        SharedState st = SharedState::adopt(apr_shm_baseaddr_get(retained->shm),
                                            apr_shm_size_get(retained->shm), retained->trusted_ro,
                                            SharedState::trusted_bytes_needed());
        if (st.valid()) {
            g_block = st.block();
            g_trusted = st.trusted_block();
            g_trusted_fd = retained->trusted_fd;
            return true;
        }
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, FPMRNO(00004)
                     "the shared block kept from the previous generation has another "
                     "layout (module upgraded in place?): stop and start httpd");
        return false;
    }
    auto* retained = static_cast<Retained*>(ap_retained_data_create(kRetainedKey, sizeof(Retained)));
    retained->trusted_fd = -1;
    // Anonymous shared memory from the process pool: inherited by every child
    // of every generation, destroyed only when httpd stops.
    apr_status_t rv = apr_shm_create(&retained->shm, SharedState::bytes_needed(), nullptr,
                                     ap_pglobal);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, FPMRNO(00005)
                     "cannot create %lu bytes of shared memory",
                     static_cast<unsigned long>(SharedState::bytes_needed()));
        return false;
    }
    void* rw = nullptr;
    if (!create_trusted(s, retained, &rw)) return false;
    std::string nonce = random_nonce(s);
    bool ok = !nonce.empty() &&
              SharedState::format(apr_shm_baseaddr_get(retained->shm), apr_shm_size_get(retained->shm),
                                  rw, SharedState::trusted_bytes_needed(), nonce)
                  .valid();
    ::munmap(rw, SharedState::trusted_bytes_needed());
    if (!ok) return false;
    g_block = static_cast<SharedBlock*>(apr_shm_baseaddr_get(retained->shm));
    g_trusted = static_cast<const TrustedBlock*>(retained->trusted_ro);
    g_trusted_fd = retained->trusted_fd;
    return true;
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
        if (!obtain_blocks(main_server)) return HTTP_INTERNAL_SERVER_ERROR;
        TrustedWriter writer;
        const SharedState& state = writer.state();
        if (!state.writable()) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, errno, main_server, FPMRNO(00060)
                         "cannot map the supervisor's shared memory for writing");
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        state.stamp_open_header();
        // With no child left, nothing can be in flight. Otherwise a child's
        // share is given back when it exits (glue_child_counts.cc); here
        // only the shares of children gone unannounced are.
        std::optional<std::set<pid_t>> children = live_children(running_supervisor_pid());
        if (children && children->empty()) {
            state.reset_in_flight();
        } else if (children) {
            release_rows_of_gone_children(state, *children, main_server);
        }

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
        state.set_config_generation(generation);
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
    return SharedState::adopt(g_block, g_block ? SharedState::bytes_needed() : 0, g_trusted,
                              g_trusted ? SharedState::trusted_bytes_needed() : 0);
}

int trusted_block_descriptor() { return g_trusted_fd; }

TrustedWriter::TrustedWriter() {
    rw_ = g_trusted_fd >= 0 ? map_trusted_rw(g_trusted_fd) : nullptr;
    state_ = shared_state().writer(rw_, rw_ ? SharedState::trusted_bytes_needed() : 0);
}

TrustedWriter::~TrustedWriter() {
    if (rw_) ::munmap(rw_, SharedState::trusted_bytes_needed());
}

namespace {
// A child never needs the trusted block's descriptor: it reads through the
// inherited read-only mapping. Closed first thing, before any request.
void close_trusted_descriptor(apr_pool_t*, server_rec*) {
    if (g_trusted_fd >= 0) ::close(g_trusted_fd);
    g_trusted_fd = -1;
}
}  // namespace

int64_t now_us() {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

void register_state_hooks(apr_pool_t*) {
    ap_hook_post_config(post_config, nullptr, nullptr, APR_HOOK_MIDDLE);
    ap_hook_child_init(close_trusted_descriptor, nullptr, nullptr, APR_HOOK_REALLY_FIRST);
}

}  // namespace fpmr::glue
