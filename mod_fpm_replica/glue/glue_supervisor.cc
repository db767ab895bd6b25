// The replica supervisor: one process per httpd instance, forked by the httpd
// parent (root) at the first start and kept across graceful restarts, which
// starts every replica of the vhosts with FpmReplicaSpawn, marks it ready
// once its socket answers, restarts it with backoff when it dies (failed
// after repeated quick crashes), and stops them all when httpd stops.
//
// Not built yet (see the supervision issue): rolling replacement on
// `apachectl graceful` (a running supervisor keeps the replica set and
// commands it started with), release-aware routing and deploys in namespace
// mode, the FastCGI ping as the readiness test.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include "glue.h"
#include "supervision.h"

namespace fpmr::glue {

namespace {

constexpr const char* kRetainedKey = "mod_fpm_replica-supervisor";
constexpr int64_t kTickUs = 100000;

struct RetainedSupervisor {
    pid_t pid;                 // 0 when none runs
    int stop_cleanup_registered;
    int64_t drain_timeout_us;  // of the running supervisor
};

// One supervised replica, as the supervisor process sees it.
struct Job {
    int slot = -1;
    std::string vhost;
    SpawnRequest request;          // release_dir filled at each start
    std::string release_symlink;   // "" without FpmReplicaRelease
    pid_t pid = 0;
    int64_t started_us = 0;
    int64_t next_start_us = 0;
    bool failed = false;
    bool ever_started = false;
    RestartBackoff backoff;
};

volatile sig_atomic_t g_stop_requested = 0;
void request_stop(int) { g_stop_requested = 1; }

bool socket_accepts(const SocketSpec& spec) {
    int fd = -1;
    if (spec.kind == SocketSpec::Kind::Unix) {
        fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, spec.path.c_str(), sizeof addr.sun_path - 1);
        bool ok = fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
        if (fd >= 0) ::close(fd);
        return ok;
    }
    addrinfo hints{}, *res = nullptr;
    hints.ai_socktype = SOCK_STREAM;
    if (::getaddrinfo(spec.host.c_str(), std::to_string(spec.port).c_str(), &hints, &res) != 0) {
        return false;
    }
    bool ok = false;
    fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd >= 0) {
        int rc = ::connect(fd, res->ai_addr, res->ai_addrlen);
        if (rc == 0) {
            ok = true;
        } else if (errno == EINPROGRESS) {
            pollfd p{fd, POLLOUT, 0};
            int err = 0;
            socklen_t len = sizeof err;
            ok = ::poll(&p, 1, 200) == 1 && ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 &&
                 err == 0;
        }
        ::close(fd);
    }
    ::freeaddrinfo(res);
    return ok;
}

std::string resolve_release(const std::string& symlink) {
    if (symlink.empty()) return {};
    char* real = ::realpath(symlink.c_str(), nullptr);
    if (!real) return {};
    std::string out = real;
    std::free(real);
    return out;
}

// Forks and execs one replica in a process group of its own (so it can be
// stopped whole), with only stdin/stdout/stderr and the planned environment.
pid_t start_replica(const SpawnPlan& plan) {
    pid_t pid = ::fork();
    if (pid != 0) return pid;
    ::setsid();
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int sig : {SIGTERM, SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGCHLD, SIGPIPE}) {
        ::signal(sig, SIG_DFL);
    }
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::close_range(3, ~0U, 0);
    std::vector<char*> argv, envp;
    std::vector<std::string> args = plan.argv, env = plan.env;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    ::execve(argv[0], argv.data(), envp.data());
    ::_exit(127);
}

void sleep_us(int64_t us) {
    timespec ts{static_cast<time_t>(us / 1000000), static_cast<long>((us % 1000000) * 1000)};
    ::nanosleep(&ts, nullptr);
}

// The supervisor's life. Never returns.
[[noreturn]] void supervise(server_rec* s, std::vector<Job> jobs, int64_t drain_timeout_us) {
    SharedState shared = shared_state();
    auto slot_of = [&](Job& j) -> ReplicaSlot& { return shared.slot(j.slot); };
    auto set_state = [&](Job& j, ReplicaState st) {
        slot_of(j).state.store(static_cast<uint32_t>(st));
    };

    while (!g_stop_requested) {
        int64_t now = now_us();
        int status;
        for (pid_t pid; (pid = ::waitpid(-1, &status, WNOHANG)) > 0;) {
            for (Job& j : jobs) {
                if (j.pid != pid) continue;
                ::kill(-pid, SIGKILL);  // workers of a master that died
                j.pid = 0;
                slot_of(j).pid.store(0);
                int64_t again = j.backoff.on_exit(now, now - j.started_us);
                std::string how = WIFEXITED(status) ? "exited with status " + std::to_string(WEXITSTATUS(status))
                                                    : "was killed by signal " + std::to_string(WTERMSIG(status));
                if (again < 0) {
                    j.failed = true;
                    set_state(j, ReplicaState::Failed);
                    ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, FPMRNO(00027)
                                 "replica '%s' of %s (pid %d) %s; it crashed %d times within a "
                                 "minute: marked failed, not restarted",
                                 j.request.replica.name.c_str(), j.vhost.c_str(), pid, how.c_str(),
                                 j.backoff.crashes());
                } else {
                    j.next_start_us = again;
                    set_state(j, ReplicaState::Starting);
                    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, FPMRNO(00028)
                                 "replica '%s' of %s (pid %d) %s; restarting it in %" APR_INT64_T_FMT "ms",
                                 j.request.replica.name.c_str(), j.vhost.c_str(), pid, how.c_str(),
                                 static_cast<apr_int64_t>((again - now) / 1000));
                }
            }
        }
        for (Job& j : jobs) {
            if (j.pid || j.failed || now < j.next_start_us) continue;
            j.request.release_dir = resolve_release(j.release_symlink);
            SpawnPlan plan = plan_spawn(j.request);
            j.pid = start_replica(plan);
            if (j.pid < 0) {
                j.pid = 0;
                j.next_start_us = now + RestartBackoff::kFirstDelayUs;
                continue;
            }
            j.started_us = now;
            if (j.ever_started) slot_of(j).restarts.fetch_add(1);
            j.ever_started = true;
            slot_of(j).pid.store(j.pid);
            set_state(j, ReplicaState::Starting);
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, FPMRNO(00029)
                         "started replica '%s' of %s: pid %d%s%s", j.request.replica.name.c_str(),
                         j.vhost.c_str(), j.pid, j.request.release_dir.empty() ? "" : ", release ",
                         j.request.release_dir.c_str());
        }
        for (Job& j : jobs) {
            if (!j.pid || slot_of(j).state.load() != static_cast<uint32_t>(ReplicaState::Starting)) continue;
            if (socket_accepts(j.request.replica.socket)) {
                slot_of(j).retry_at_us.store(0);
                set_state(j, ReplicaState::Ready);
                ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, FPMRNO(00030)
                             "replica '%s' of %s (pid %d) is ready", j.request.replica.name.c_str(),
                             j.vhost.c_str(), j.pid);
            }
        }
        sleep_us(kTickUs);
    }

    // httpd is stopping: php-fpm's graceful stop (SIGQUIT) for every master,
    // then SIGKILL for whatever is left after the drain timeout.
    for (Job& j : jobs) {
        set_state(j, ReplicaState::Draining);
        if (j.pid) ::kill(j.pid, SIGQUIT);
    }
    int64_t deadline = now_us() + drain_timeout_us;
    auto running = [&] {
        int n = 0;
        for (Job& j : jobs) n += j.pid != 0;
        return n;
    };
    while (running() && now_us() < deadline) {
        int status;
        for (pid_t pid; (pid = ::waitpid(-1, &status, WNOHANG)) > 0;) {
            for (Job& j : jobs) {
                if (j.pid == pid) ::kill(-pid, SIGKILL), j.pid = 0;
            }
        }
        sleep_us(50000);
    }
    for (Job& j : jobs) {
        if (j.pid) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, FPMRNO(00031)
                         "replica '%s' (pid %d) did not stop within the drain timeout: killed",
                         j.request.replica.name.c_str(), j.pid);
            ::kill(-j.pid, SIGKILL);
            ::kill(j.pid, SIGKILL);
            ::waitpid(j.pid, nullptr, 0);
        }
        slot_of(j).pid.store(0);
        set_state(j, ReplicaState::Stopped);
    }
    ::_exit(0);
}

std::vector<Job> collect_jobs(server_rec* main_server, int64_t* drain_timeout_us) {
    std::vector<Job> jobs;
    std::vector<VhostReplicas*> seen;
    *drain_timeout_us = kDefaultDrainTimeoutUs;
    for (server_rec* s = main_server; s; s = s->next) {
        VhostReplicas* set = replicas_for(s);
        if (!set || set->defined_in != s) continue;
        ServerConfig* conf = server_config(s);
        if (!conf->spawn_command) continue;
        std::string error;
        auto command = split_command(conf->spawn_command, &error);
        if (!command) continue;  // refused at configtest
        if (conf->drain_timeout_set && conf->drain_timeout_us > *drain_timeout_us) {
            *drain_timeout_us = conf->drain_timeout_us;
        }
        for (size_t i = 0; i < set->replicas.size(); ++i) {
            Job j;
            j.slot = set->slots[i];
            j.vhost = set->vhost_label;
            j.request.command = *command;
            j.request.replica = set->replicas[i];
            if (conf->stable_path) {
                j.request.stable_path = conf->stable_path;
                j.request.helper_path = conf->helper_path ? conf->helper_path : kDefaultHelperPath;
                j.request.helper_config = conf->helper_config ? conf->helper_config : "";
            }
            if (ReleaseConfig* release = release_for(s)) j.release_symlink = release->symlink;
            jobs.push_back(std::move(j));
        }
    }
    return jobs;
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
        sleep_us(50000);
    }
    retained->pid = 0;
    return APR_SUCCESS;
}

void supervisor_maintenance(int reason, void*, int) {
    auto* retained = static_cast<RetainedSupervisor*>(ap_retained_data_get(kRetainedKey));
    if (!retained) return;
    if (reason == APR_OC_REASON_DEATH || reason == APR_OC_REASON_LOST) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, ap_server_conf, FPMRNO(00032)
                     "the replica supervisor (pid %d) exited; it is started again at the next "
                     "restart of httpd", retained->pid);
        retained->pid = 0;
    }
}

int start_supervisor(apr_pool_t* pconf, apr_pool_t*, apr_pool_t*, server_rec* main_server) {
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) return OK;
    try {
        int64_t drain_timeout_us;
        std::vector<Job> jobs = collect_jobs(main_server, &drain_timeout_us);
        auto* retained = static_cast<RetainedSupervisor*>(ap_retained_data_get(kRetainedKey));
        if (!retained) {
            retained = static_cast<RetainedSupervisor*>(
                ap_retained_data_create(kRetainedKey, sizeof(RetainedSupervisor)));
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
        } else if (!jobs.empty()) {
            pid_t parent = getpid();
            apr_file_t* log = main_server->error_log;
            int log_fd = -1;
            if (log) apr_os_file_get(&log_fd, log);
            pid_t pid = ::fork();
            if (pid < 0) {
                ap_log_error(APLOG_MARK, APLOG_EMERG, errno, main_server, FPMRNO(00034)
                             "cannot fork the replica supervisor");
                return HTTP_INTERNAL_SERVER_ERROR;
            }
            if (pid == 0) {
                // The supervisor: dies with the httpd parent, keeps only the
                // standard descriptors and the error log (not httpd's listeners).
                ::prctl(PR_SET_PDEATHSIG, SIGTERM);
                if (getppid() != parent) ::_exit(0);
                sigset_t none;
                sigemptyset(&none);
                ::sigprocmask(SIG_SETMASK, &none, nullptr);
                for (int sig : {SIGHUP, SIGUSR1, SIGWINCH, SIGPIPE}) ::signal(sig, SIG_IGN);
                ::signal(SIGCHLD, SIG_DFL);
                ::signal(SIGTERM, request_stop);
                ::signal(SIGINT, request_stop);
                if (log_fd > 3) ::close_range(3, static_cast<unsigned>(log_fd) - 1, 0);
                ::close_range(static_cast<unsigned>(log_fd > 2 ? log_fd + 1 : 3), ~0U, 0);
                supervise(main_server, std::move(jobs), drain_timeout_us);
            }
            retained->pid = pid;
            retained->drain_timeout_us = drain_timeout_us;
            ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, main_server, FPMRNO(00035)
                         "started the replica supervisor (pid %d) for %lu replicas", pid,
                         static_cast<unsigned long>(jobs.size()));
        }
        if (retained->pid > 0) {
            // Registered per generation (the registration lives in pconf), so
            // httpd tells us when the supervisor dies.
            auto* proc = static_cast<apr_proc_t*>(apr_pcalloc(pconf, sizeof(apr_proc_t)));
            proc->pid = retained->pid;
            apr_proc_other_child_register(proc, supervisor_maintenance, nullptr, nullptr, pconf);
        }
        return OK;
    } catch (...) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, main_server, FPMRNO(00036)
                     "internal error while starting the replica supervisor");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
}

}  // namespace

void register_supervisor_hooks(apr_pool_t*) {
    // After the shared block is bound (glue_state.cc, MIDDLE) and the release
    // resolvers exist (glue_pinning.cc, LAST, registered earlier).
    ap_hook_post_config(start_supervisor, nullptr, nullptr, APR_HOOK_REALLY_LAST);
}

}  // namespace fpmr::glue
