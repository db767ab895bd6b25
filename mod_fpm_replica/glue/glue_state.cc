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
//
// Their size is decided once, at httpd's start, from the configuration
// (layout_for: room for twice its replicas); a graceful restart keeps them,
// because every child of every generation maps them at that size. A
// graceful restart whose configuration does not fit leaves out the
// replicas that do not (FPMR00166) rather than fail: a post_config error
// there would stop every site of the host.
#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "glue.h"
#include "proc_stat.h"

namespace fpmr::glue {

namespace {

// The retained data's name carries the layout version: a module upgraded
// in place finds no block of another layout under its own name, and sees
// by the older names that one exists (FPMR00004).
constexpr const char* kRetainedKey = "mod_fpm_replica-shared-blocks-v10";
constexpr const char* kOlderRetainedKeys[] = {"mod_fpm_replica-shared-block",
                                              "mod_fpm_replica-shared-blocks-v8",
                                              "mod_fpm_replica-shared-blocks-v9"};

struct Retained {
    apr_shm_t* shm;           // the open block: anonymous, allocated from the process pool
    int trusted_fd;           // read-only descriptor of the trusted block's memfd
    const void* trusted_ro;   // the parent's read-only mapping of it, inherited by children
    size_t trusted_length;    // its length (the open block's is apr_shm_size_get's)
};

// Set in the parent at post_config; children inherit them through fork.
void* g_open = nullptr;
size_t g_open_length = 0;
const void* g_trusted = nullptr;
size_t g_trusted_length = 0;
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
void* map_trusted_rw(int trusted_fd, size_t length) {
    char path[40];
    std::snprintf(path, sizeof path, "/proc/self/fd/%d", trusted_fd);
    int fd = ::open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) return nullptr;
    void* p = ::mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ::close(fd);
    return p == MAP_FAILED ? nullptr : p;
}

// Makes the trusted block: a 0600 memfd, formatted through a temporary
// read-write mapping, kept as a read-only descriptor and mapping.
bool create_trusted(server_rec* s, size_t length, Retained* retained, void** rw_out) {
    int fd = ::memfd_create("fpm-replica-trusted", MFD_CLOEXEC);
    if (fd < 0 || ::fchmod(fd, 0600) != 0 || ::ftruncate(fd, static_cast<off_t>(length)) != 0) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, errno, s, FPMRNO(00058)
                     "cannot create the supervisor's shared memory (memfd)");
        if (fd >= 0) ::close(fd);
        return false;
    }
    char path[40];
    std::snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    int ro = ::open(path, O_RDONLY | O_CLOEXEC);
    void* rw = ::mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ::close(fd);
    void* mapped_ro = ro < 0 ? MAP_FAILED : ::mmap(nullptr, length, PROT_READ, MAP_SHARED, ro, 0);
    if (ro < 0 || rw == MAP_FAILED || mapped_ro == MAP_FAILED) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, errno, s, FPMRNO(00059)
                     "cannot map the supervisor's shared memory (is /proc mounted?)");
        if (ro >= 0) ::close(ro);
        if (rw != MAP_FAILED) ::munmap(rw, length);
        return false;
    }
    retained->trusted_fd = ro;
    retained->trusted_ro = mapped_ro;
    retained->trusted_length = length;
    *rw_out = rw;
    return true;
}

void remember_blocks(const Retained& retained) {
    g_open = apr_shm_baseaddr_get(retained.shm);
    g_open_length = apr_shm_size_get(retained.shm);
    g_trusted = retained.trusted_ro;
    g_trusted_length = retained.trusted_length;
    g_trusted_fd = retained.trusted_fd;
}

// Calls `each` once for every set of replicas the configuration declares (a
// vhost without FpmReplica lines shares the main server's set), in the
// order they are written: the main server, then the vhosts, which httpd
// keeps in the opposite order (each <VirtualHost> goes to the head of the
// list). So when a graceful restart cannot bind everything, the replicas
// written last are the ones left out.
template <typename Each>
void for_each_replica_set(server_rec* main_server, Each each) {
    std::vector<server_rec*> written{main_server};
    for (server_rec* s = main_server->next; s; s = s->next) written.push_back(s);
    std::reverse(written.begin() + 1, written.end());
    std::set<VhostReplicas*> seen;
    for (server_rec* s : written) {
        VhostReplicas* set = replicas_for(s);
        if (set && seen.insert(set).second) each(*set);
    }
}

int hard_server_limit() {
    int limit = 0;
    if (ap_mpm_query(AP_MPMQ_HARD_LIMIT_DAEMONS, &limit) != APR_SUCCESS || limit < 0) return 0;
    return limit;
}

// What this configuration asks of the blocks, counted as post_config binds it.
SharedDemand demand_of(server_rec* main_server) {
    SharedDemand demand;
    for_each_replica_set(main_server, [&demand](VhostReplicas& set) {
        demand.members += set.members.size();
    });
    std::set<std::string> symlinks;
    for (server_rec* s = main_server; s; s = s->next) {
        if (ReleaseConfig* release = release_for(s)) symlinks.insert(release->symlink);
    }
    demand.releases = symlinks.size();
    demand.server_limit = static_cast<size_t>(hard_server_limit());
    return demand;
}

// Whether blocks for `demand` can be made; if not, says which bound it
// passes in one line.
bool blocks_can_be_made(server_rec* s, const SharedDemand& demand) {
    static_assert(kMaxSlotCapacity == kMaxReleaseCapacity, "one bound in the message");
    if (demand.members > kMaxSlotCapacity || demand.releases > kMaxReleaseCapacity) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, FPMRNO(00164)
                     "the configuration declares %lu replica members (a replica has one, "
                     "two when it is supervised on a unix socket) and %lu release "
                     "symlinks; one httpd instance holds at most %u of each: split the "
                     "virtual hosts over several httpd instances",
                     static_cast<unsigned long>(demand.members),
                     static_cast<unsigned long>(demand.releases), kMaxSlotCapacity);
        return false;
    }
    if (layout_for(demand)) return true;
    uint64_t bytes = SharedLayout::bytes_of(
        static_cast<uint32_t>(std::max<size_t>(demand.members, 1)),
        child_rows_for(demand.server_limit),
        static_cast<uint32_t>(std::max<size_t>(demand.releases, 1)));
    ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, FPMRNO(00165)
                 "ServerLimit %lu with %lu replica members needs %lu MiB of shared memory "
                 "(each httpd child counts its requests per member), more than the %lu MiB "
                 "mod_fpm_replica allows: lower ServerLimit (and raise ThreadsPerChild), or "
                 "split the virtual hosts over several httpd instances",
                 static_cast<unsigned long>(demand.server_limit),
                 static_cast<unsigned long>(demand.members),
                 static_cast<unsigned long>(bytes >> 20),
                 static_cast<unsigned long>(kMaxSharedBytes >> 20));
    return false;
}

// check_config, last (after the MPM's, which settles ServerLimit): a
// configuration whose blocks could never be made is refused at configtest.
// Not in the running parent at a restart: its blocks exist already, and
// what does not fit them is left out in post_config instead of stopping
// httpd (apachectl graceful runs configtest first, so an operator still
// sees the refusal).
int refuse_blocks_that_cannot_be_made(apr_pool_t*, apr_pool_t*, apr_pool_t*, server_rec* s) {
    try {
        if (ap_retained_data_get(kRetainedKey)) return OK;
        SharedDemand demand = demand_of(s);
        if (demand.members == 0) return OK;  // loaded, unused: the minimum blocks always fit
        return blocks_can_be_made(s, demand) ? OK : HTTP_INTERNAL_SERVER_ERROR;
    } catch (...) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, FPMRNO(00169)
                     "internal error while sizing the shared memory");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
}

// The blocks of this httpd instance: adopted from the previous generation,
// or made now for `demand` (`*created` then).
bool obtain_blocks(server_rec* s, const SharedDemand& demand, bool* created) {
    *created = false;
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
                                            retained->trusted_length);
        if (st.valid()) {
            remember_blocks(*retained);
            return true;
        }
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, FPMRNO(00004)
                     "the shared block kept from the previous generation has another "
                     "layout (module upgraded in place?): stop and start httpd");
        return false;
    }
    // check_config has refused every configuration with replicas that has no
    // layout, and one without replicas always has one: this only says why
    // should that ever change.
    std::optional<SharedLayout> layout = layout_for(demand);
    if (!layout) return blocks_can_be_made(s, demand);
    auto* retained = static_cast<Retained*>(ap_retained_data_create(kRetainedKey, sizeof(Retained)));
    retained->trusted_fd = -1;
    // Anonymous shared memory from the process pool: inherited by every child
    // of every generation, destroyed only when httpd stops.
    apr_status_t rv = apr_shm_create(&retained->shm, layout->open_bytes, nullptr, ap_pglobal);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s, FPMRNO(00005)
                     "cannot create %lu bytes of shared memory",
                     static_cast<unsigned long>(layout->open_bytes));
        return false;
    }
    void* rw = nullptr;
    if (!create_trusted(s, layout->trusted_bytes, retained, &rw)) return false;
    std::string nonce = random_nonce(s);
    bool ok = !nonce.empty() &&
              SharedState::format(apr_shm_baseaddr_get(retained->shm),
                                  apr_shm_size_get(retained->shm), rw, layout->trusted_bytes,
                                  *layout, nonce)
                  .valid();
    ::munmap(rw, layout->trusted_bytes);
    if (!ok) return false;
    remember_blocks(*retained);
    *created = true;
    ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, FPMRNO(00168)
                 "shared memory for %u replica members (%lu configured), %u release symlinks "
                 "(%lu configured) and %u httpd children: %lu KiB; graceful restarts can add "
                 "replicas up to that, more takes a stop and start of httpd",
                 layout->slot_count, static_cast<unsigned long>(demand.members),
                 layout->release_count, static_cast<unsigned long>(demand.releases),
                 layout->child_row_count, static_cast<unsigned long>(layout->total_bytes() >> 10));
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

// Drops the replicas at `left_out` (indices into set.replicas) from this
// generation's view of the vhost, so steering, the probe lane, the status
// document and the supervisor's plan see only the others. mod_proxy keeps
// their balancer members; steering skips those (no member of ours has
// their route).
void leave_out(VhostReplicas& set, const std::vector<int>& left_out) {
    std::vector<int> renumbered(set.replicas.size(), -1);
    std::vector<ReplicaSpec> kept_replicas;
    for (size_t i = 0; i < set.replicas.size(); ++i) {
        if (std::find(left_out.begin(), left_out.end(), static_cast<int>(i)) != left_out.end()) {
            continue;
        }
        renumbered[i] = static_cast<int>(kept_replicas.size());
        kept_replicas.push_back(set.replicas[i]);
    }
    std::vector<ReplicaMember> kept_members;
    for (ReplicaMember& m : set.members) {
        if (renumbered[m.replica] < 0) continue;
        m.replica = renumbered[m.replica];
        kept_members.push_back(m);
    }
    set.replicas = std::move(kept_replicas);
    set.members = std::move(kept_members);
}

// Binds every replica of `set` to slots, its members together. Returns false
// (httpd does not start) only when blocks made for this very configuration
// cannot hold it; at a graceful restart a replica that finds no free slot
// is left out of the vhost with one line for the vhost.
bool bind_replica_set(const SharedState& state, VhostReplicas& set, const std::string& prefix,
                      uint32_t generation, bool blocks_made_now) {
    bool supervised = server_config(set.defined_in)->spawn_command != nullptr;
    std::vector<int> left_out;
    for (size_t r = 0; r < set.replicas.size(); ++r) {
        std::vector<size_t> members;
        std::vector<SharedState::Claim> claims;
        for (size_t i = 0; i < set.members.size(); ++i) {
            const ReplicaMember& m = set.members[i];
            if (m.replica != static_cast<int>(r)) continue;
            members.push_back(i);
            claims.push_back({member_slot_key(prefix, m), initial_member_state(m, supervised)});
        }
        std::optional<std::vector<int>> slots = state.claim_together(claims, generation);
        if (!slots && blocks_made_now) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, set.defined_in, FPMRNO(00006)
                         "no free shared slot for replica '%s' of %s in shared memory made "
                         "for %u replica members", set.replicas[r].name.c_str(),
                         set.vhost_label.c_str(), state.layout().slot_count);
            return false;
        }
        if (!slots) {
            left_out.push_back(static_cast<int>(r));
            continue;
        }
        for (size_t k = 0; k < members.size(); ++k) {
            ReplicaMember& m = set.members[members[k]];
            m.slot = (*slots)[k];
            ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, set.defined_in, FPMRNO(00007)
                         "replica member '%s' (%s) of %s uses shared slot %d",
                         m.route.c_str(), m.socket.text().c_str(), set.vhost_label.c_str(),
                         m.slot);
        }
    }
    if (left_out.empty()) return true;
    std::string names;
    for (int r : left_out) names += (names.empty() ? "'" : ", '") + set.replicas[r].name + "'";
    ap_log_error(APLOG_MARK, APLOG_ERR, 0, set.defined_in, FPMRNO(00166)
                 "%s: replica%s %s left out: the shared memory this httpd made when it "
                 "started holds %u replica members, too few of them free, and a graceful "
                 "restart cannot grow it; the vhost's other replicas and the other vhosts "
                 "keep working. Stop and start httpd (systemctl restart apache2) to make "
                 "room for this configuration",
                 set.vhost_label.c_str(), left_out.size() > 1 ? "s" : "", names.c_str(),
                 state.layout().slot_count);
    leave_out(set, left_out);
    return true;
}

int post_config(apr_pool_t*, apr_pool_t*, apr_pool_t*, server_rec* main_server) {
    // The first of httpd's two configuration passes only checks: no shared memory yet.
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) return OK;
    try {
        bool blocks_made_now = false;
        if (!obtain_blocks(main_server, demand_of(main_server), &blocks_made_now)) {
            return HTTP_INTERNAL_SERVER_ERROR;
        }
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
        bool bound = true;
        for_each_replica_set(main_server, [&](VhostReplicas& set) {
            if (!bound) return;
            set.vhost_label = vhost_label(set.defined_in);
            std::string prefix = slot_key_prefix(set.defined_in);
            for (int dup = 2; keys_seen.count(prefix); ++dup) {
                prefix = slot_key_prefix(set.defined_in) + " #" + std::to_string(dup);
            }
            keys_seen.insert(prefix);
            bound = bind_replica_set(state, set, prefix, generation, blocks_made_now);
        });
        if (!bound) return HTTP_INTERNAL_SERVER_ERROR;
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
    return SharedState::adopt(g_open, g_open_length, g_trusted, g_trusted_length);
}

int trusted_block_descriptor() { return g_trusted_fd; }

TrustedWriter::TrustedWriter() {
    length_ = g_trusted_length;
    rw_ = g_trusted_fd >= 0 && length_ ? map_trusted_rw(g_trusted_fd, length_) : nullptr;
    state_ = shared_state().writer(rw_, rw_ ? length_ : 0);
}

TrustedWriter::~TrustedWriter() {
    if (rw_) ::munmap(rw_, length_);
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
    // Last: after the MPM's check_config, which settles ServerLimit.
    ap_hook_check_config(refuse_blocks_that_cannot_be_made, nullptr, nullptr, APR_HOOK_LAST);
    ap_hook_post_config(post_config, nullptr, nullptr, APR_HOOK_MIDDLE);
    ap_hook_child_init(close_trusted_descriptor, nullptr, nullptr, APR_HOOK_REALLY_FIRST);
}

}  // namespace fpmr::glue
