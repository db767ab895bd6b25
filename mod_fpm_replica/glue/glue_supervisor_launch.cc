// The httpd parent's side of the replica supervisor: at the first start it
// forks the supervisor process (glue_supervisor.cc) with the plan of what to
// run; at every later start it sends the new generation's plan down a pipe;
// it notices the supervisor's death and stops it when httpd exits.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>
#include <vector>

#include "glue.h"
#include "supervision.h"
#include "supervisor_plan.h"

namespace fpmr::glue {

namespace {

constexpr const char* kRetainedKey = "mod_fpm_replica-supervisor";

// Kept by the httpd parent across its restarts (retained data).
struct RetainedSupervisor {
    pid_t pid;                 // 0 when none runs
    int stop_cleanup_registered;
    int64_t drain_timeout_us;  // of the running supervisor
    int plan_fd;               // the parent's end of the plan channel; -1 when none
    int64_t started_us;        // when it was forked
    int quick_deaths;          // supervisors in a row that died within kQuickDeathUs
};

// Supervisors that die this soon after their start, kMaxQuickDeaths times
// in a row, are not started again before the next restart of httpd (no
// fork loop on a supervisor that cannot run).
constexpr int64_t kQuickDeathUs = 60 * 1000000LL;
constexpr int kMaxQuickDeaths = 3;

// This generation's configuration pool: other-child registrations live there.
apr_pool_t* g_generation_pool = nullptr;

// Closes every descriptor from 3 up but those in `keep`.
void close_all_but(std::vector<int> keep) {
    std::sort(keep.begin(), keep.end());
    unsigned from = 3;
    for (int fd : keep) {
        if (fd < static_cast<int>(from)) continue;
        if (static_cast<unsigned>(fd) > from) ::close_range(from, static_cast<unsigned>(fd) - 1, 0);
        from = static_cast<unsigned>(fd) + 1;
    }
    ::close_range(from, ~0U, 0);
}

// httpd parent: one plan, framed (4-byte length, then the bytes), down the
// pipe to the supervisor; never blocks httpd for more than a second. A
// frame cut short would garble the stream, so the pipe is closed then.
bool send_plan(int* fd, const SupervisorPlan& plan, server_rec* s) {
    std::string frame = frame_plan(plan);
    size_t sent = 0;
    int64_t deadline = now_us() + 1000000;
    while (*fd >= 0 && sent < frame.size()) {
        // MSG_DONTWAIT: whatever another holder of this socket did to its
        // flags, the parent never blocks here.
        ssize_t n = ::send(*fd, frame.data() + sent, frame.size() - sent, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            sent += static_cast<size_t>(n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN && now_us() < deadline) {
            pollfd p{*fd, POLLOUT, 0};
            ::poll(&p, 1, 100);
            continue;
        }
        ap_log_error(APLOG_MARK, APLOG_ERR, n < 0 ? errno : 0, s, FPMRNO(00055)
                     "cannot send the new configuration to the replica supervisor");
        ::close(*fd);
        *fd = -1;
        return false;
    }
    return *fd >= 0;
}

// Where the supervisor requests a vhost's warm-up URL paths: a socket httpd
// itself listens on for the vhost's first address and port (never an
// address nobody binds, which a local user could take and read the token
// from), loopback where that socket binds every address; the vhost's name
// as the Host header, as a client of the site would reach it.
void set_warmup_target(server_rec* s, ReplicaPlan* r) {
    auto is_wildcard = [](const std::string& ip) { return ip == "0.0.0.0" || ip == "::"; };
    const server_addr_rec* vhost = s->addrs;
    char* ip = nullptr;
    const std::string vhost_ip =
        vhost && apr_sockaddr_ip_get(&ip, vhost->host_addr) == APR_SUCCESS && ip ? ip : "";
    const bool vhost_wildcard = vhost_ip.empty() || is_wildcard(vhost_ip);
    for (ap_listen_rec* l = ap_listeners; l; l = l->next) {
        apr_sockaddr_t* bound = l->bind_addr;
        if (vhost && vhost->host_port && bound->port != vhost->host_port) continue;
        char* bound_ip = nullptr;
        if (apr_sockaddr_ip_get(&bound_ip, bound) != APR_SUCCESS || !bound_ip) continue;
        std::string host = bound_ip;
        const bool bound_wildcard = is_wildcard(host);
        if (!vhost_wildcard && !bound_wildcard && host != vhost_ip) continue;
        if (bound_wildcard) host = vhost_wildcard ? (host == "::" ? "::1" : "127.0.0.1") : vhost_ip;
        r->warmup_listener = SocketSpec{SocketSpec::Kind::Tcp, "", host, bound->port};
        std::string name = s->server_hostname ? s->server_hostname : host;
        r->warmup_host = bound->port == 80 ? name : name + ":" + std::to_string(bound->port);
        return;
    }
}

// What the supervisor should run for this configuration generation.
SupervisorPlan collect_plan(server_rec* main_server) {
    SupervisorPlan plan;
    plan.generation = static_cast<uint32_t>(ap_state_query(AP_SQ_CONFIG_GEN));
    plan.drain_timeout_us = 0;
    for (server_rec* s = main_server; s; s = s->next) {
        VhostReplicas* set = replicas_for(s);
        if (!set || set->defined_in != s) continue;
        ServerConfig* conf = server_config(s);
        if (!conf->spawn_command && !conf->health) continue;
        std::string error;
        std::optional<std::vector<std::string>> command;
        if (conf->spawn_command) {
            command = split_command(conf->spawn_command, &error);
            if (!command) continue;  // refused at configtest
        }
        // Each vhost's own FpmReplicaDrainTimeout, not the longest of all.
        int64_t drain_us = conf->drain_timeout_set ? conf->drain_timeout_us : kDefaultDrainTimeoutUs;
        plan.drain_timeout_us = std::max(plan.drain_timeout_us, drain_us);
        for (size_t i = 0; i < set->replicas.size(); ++i) {
            ReplicaPlan r;
            r.vhost = set->vhost_label;
            r.supervised = command.has_value();
            if (conf->health) r.health = *conf->health;
            r.warmup = warmup_of(conf);
            if (!r.warmup.urls.empty()) set_warmup_target(s, &r);
            if (command) r.request.command = *command;
            r.request.replica = set->replicas[i];
            if (conf->stable_path) {
                r.request.stable_path = conf->stable_path;
                r.request.helper_path = conf->helper_path ? conf->helper_path : kDefaultHelperPath;
                r.request.helper_config = conf->helper_config ? conf->helper_config : "";
            }
            if (ReleaseConfig* release = release_for(s)) r.release_symlink = release->symlink;
            r.drain_timeout_us = drain_us;
            for (bool alternate : {false, true}) {
                int mi = set->member_of(static_cast<int>(i), alternate);
                if (mi < 0) continue;
                r.members.push_back(set->members[mi]);  // its MemberPlan part
            }
            plan.replicas.push_back(std::move(r));
        }
    }
    return plan;
}

bool supervisor_alive(pid_t pid) {
    if (pid <= 0) return false;
    int status;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    return r == 0;  // our child and still running
}

// At httpd's exit (the process pool dies only then, not at restarts).
apr_status_t stop_supervisor_at_exit(void*) {
    auto* retained = static_cast<RetainedSupervisor*>(ap_retained_data_get(kRetainedKey));
    if (!retained || retained->pid <= 0) return APR_SUCCESS;
    pid_t pid = retained->pid;
    ::kill(pid, SIGTERM);
    int64_t deadline = now_us() + retained->drain_timeout_us + 5000000;
    while (now_us() < deadline) {
        pid_t r = ::waitpid(pid, nullptr, WNOHANG);
        if (r == pid || (r < 0 && errno == ECHILD)) break;
        ::usleep(50000);
    }
    retained->pid = 0;
    return APR_SUCCESS;
}

void supervisor_maintenance(int reason, void*, int);

// httpd tells us (other child) when the supervisor dies.
void watch_supervisor(pid_t pid) {
    auto* proc = static_cast<apr_proc_t*>(apr_pcalloc(g_generation_pool, sizeof(apr_proc_t)));
    proc->pid = pid;
    apr_proc_other_child_register(proc, supervisor_maintenance, proc, nullptr, g_generation_pool);
}

// Forks the supervisor for `plan`, with a fresh pipe for later plans; a
// supervisor forked again after a crash takes over the masters that run.
pid_t fork_supervisor(server_rec* main_server, const SupervisorPlan& plan,
                      RetainedSupervisor* retained) {
    pid_t parent = getpid();
    apr_file_t* log = main_server->error_log;
    int log_fd = -1;
    if (log) apr_os_file_get(&log_fd, log);
    if (retained->plan_fd >= 0) ::close(retained->plan_fd);
    retained->plan_fd = -1;
    // The channel the parent sends each later generation's plan down: a
    // unix socket pair, not a pipe, because every httpd child forked later
    // inherits the parent's end (children close it in child_init, but code
    // may run there before), and a plan names the commands root runs. The
    // supervisor's end receives the kernel-checked credentials of every
    // sender (SO_PASSCRED) and takes bytes from the httpd parent only.
    int plan_pipe[2] = {-1, -1};
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, plan_pipe) == 0) {
        int size = 1 << 20;  // a whole plan at once
        ::setsockopt(plan_pipe[1], SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size);
        ::fcntl(plan_pipe[1], F_SETFL, O_NONBLOCK);
        int on = 1;
        ::setsockopt(plan_pipe[0], SOL_SOCKET, SO_PASSCRED, &on, sizeof on);
        ::shutdown(plan_pipe[0], SHUT_WR);  // nothing flows back to the parent
    }
    pid_t pid = ::fork();
    if (pid < 0) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, errno, main_server, FPMRNO(00034)
                     "cannot fork the replica supervisor");
        if (plan_pipe[0] >= 0) ::close(plan_pipe[0]), ::close(plan_pipe[1]);
        return -1;
    }
    if (pid == 0) {
        // The supervisor: dies with the httpd parent, keeps only the
        // standard descriptors and the error log (not httpd's listeners).
        ::prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent) ::_exit(0);
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        close_all_but({log_fd, plan_pipe[0], trusted_block_descriptor()});
        run_supervisor(main_server, plan, plan_pipe[0], parent);
    }
    if (plan_pipe[0] >= 0) ::close(plan_pipe[0]);
    retained->plan_fd = plan_pipe[1];
    retained->pid = pid;
    retained->started_us = now_us();
    retained->drain_timeout_us = plan.drain_timeout_us;
    ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, main_server, FPMRNO(00035)
                 "started the replica supervisor (pid %d) for %lu replicas", pid,
                 static_cast<unsigned long>(plan.replicas.size()));
    return pid;
}

// The supervisor died (httpd's parent reaped it): a new one takes over the
// masters that still run, unless the last one died right after its start.
void supervisor_maintenance(int reason, void* data, int) {
    auto* retained = static_cast<RetainedSupervisor*>(ap_retained_data_get(kRetainedKey));
    auto* proc = static_cast<apr_proc_t*>(data);
    if (!retained || !proc || proc->pid != retained->pid) return;
    if (reason != APR_OC_REASON_DEATH && reason != APR_OC_REASON_LOST) return;
    apr_proc_other_child_unregister(data);
    pid_t dead = retained->pid;
    retained->pid = 0;
    retained->quick_deaths =
        now_us() - retained->started_us < kQuickDeathUs ? retained->quick_deaths + 1 : 0;
    if (retained->quick_deaths > kMaxQuickDeaths) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, ap_server_conf, FPMRNO(00071)
                     "the replica supervisor (pid %d) exited, the %dth within %ds of its "
                     "start; it is started again at the next restart of httpd", dead,
                     retained->quick_deaths, static_cast<int>(kQuickDeathUs / 1000000));
        return;
    }
    ap_log_error(APLOG_MARK, APLOG_ERR, 0, ap_server_conf, FPMRNO(00032)
                 "the replica supervisor (pid %d) exited; starting a new one, which takes "
                 "over the running replicas", dead);
    try {
        pid_t pid = fork_supervisor(ap_server_conf, collect_plan(ap_server_conf), retained);
        if (pid > 0) watch_supervisor(pid);
    } catch (...) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, ap_server_conf, FPMRNO(00072)
                     "internal error while starting a new replica supervisor after the old one died");
    }
}

int start_supervisor(apr_pool_t* pconf, apr_pool_t*, apr_pool_t*, server_rec* main_server) {
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) return OK;
    try {
        g_generation_pool = pconf;
        SupervisorPlan plan = collect_plan(main_server);
        auto* retained = static_cast<RetainedSupervisor*>(ap_retained_data_get(kRetainedKey));
        if (!retained) {
            retained = static_cast<RetainedSupervisor*>(
                ap_retained_data_create(kRetainedKey, sizeof(RetainedSupervisor)));
            retained->plan_fd = -1;
        }
        if (!retained->stop_cleanup_registered) {
            apr_pool_cleanup_register(main_server->process->pool, nullptr, stop_supervisor_at_exit,
                                      apr_pool_cleanup_null);
            retained->stop_cleanup_registered = 1;
        }
        if (supervisor_alive(retained->pid)) {
            ap_log_error(APLOG_MARK, APLOG_INFO, 0, main_server, FPMRNO(00033)
                         "the replica supervisor (pid %d) keeps running its replicas across "
                         "this restart", retained->pid);
            retained->drain_timeout_us = plan.drain_timeout_us;
            if (retained->plan_fd < 0 || !send_plan(&retained->plan_fd, plan, main_server)) {
                // The channel is gone (closed, shut down or filled by whoever
                // else held it): a supervisor that can no longer be told its
                // configuration is replaced by one forked with it, which takes
                // over the running masters.
                ap_log_error(APLOG_MARK, APLOG_ERR, 0, main_server, FPMRNO(00068)
                             "replacing the replica supervisor (pid %d), which can no longer "
                             "receive its configuration; the new one takes over the running "
                             "masters", retained->pid);
                ::kill(retained->pid, SIGKILL);
                ::waitpid(retained->pid, nullptr, 0);
                retained->pid = 0;
                if (fork_supervisor(main_server, plan, retained) < 0) return HTTP_INTERNAL_SERVER_ERROR;
            }
        } else if (!plan.replicas.empty()) {
            retained->quick_deaths = 0;
            if (fork_supervisor(main_server, plan, retained) < 0) return HTTP_INTERNAL_SERVER_ERROR;
        }
        // Registered per generation (the registration lives in pconf).
        if (retained->pid > 0) watch_supervisor(retained->pid);
        return OK;
    } catch (...) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, main_server, FPMRNO(00036)
                     "internal error while starting the replica supervisor");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
}

}  // namespace

namespace {
// A child sends no plan: it drops the parent's end of the channel first
// thing, before any request can run code in it.
void close_plan_channel(apr_pool_t*, server_rec*) {
    auto* retained = static_cast<RetainedSupervisor*>(ap_retained_data_get(kRetainedKey));
    if (retained && retained->plan_fd >= 0) ::close(retained->plan_fd);
}
}  // namespace

pid_t running_supervisor_pid() {
    auto* retained = static_cast<RetainedSupervisor*>(ap_retained_data_get(kRetainedKey));
    return retained ? retained->pid : 0;
}

void register_supervisor_hooks(apr_pool_t*) {
    // After the shared block is bound (glue_state.cc, MIDDLE) and the release
    // resolvers exist (glue_pinning.cc, LAST, registered earlier).
    ap_hook_post_config(start_supervisor, nullptr, nullptr, APR_HOOK_REALLY_LAST);
    ap_hook_child_init(close_plan_channel, nullptr, nullptr, APR_HOOK_REALLY_FIRST);
}

}  // namespace fpmr::glue
