// Ends the MPM parent's one-second nap after a graceful restart, so the new
// generation's children start at once instead of up to a second later.
//
// After a graceful restart httpd's parent starts the new children one for
// one as it reaps old ones (server_main_loop, every MPM); each turn it checks
// for an exited child once and, when none has exited at that instant, sleeps
// a whole second (ap_wait_or_timeout). The old children stopped accepting
// connections at the restart, so in that second nobody accepts: measured
// here, stock httpd included, about one graceful restart in three stalled
// every request for 1,015-1,034 ms. A SIGCHLD handler, which does nothing,
// makes that sleep end as soon as an old child exits, and a timer ends it
// 100 ms after the restart at the latest; the MPM then starts the rest of the
// new generation, as it would after its second. The handler is installed
// only for kWindowMs after a restart and only where SIGCHLD had its default
// disposition; it removes itself, and its pool cleanup removes it before
// httpd unloads this module at the next restart.
#include <signal.h>
#include <time.h>

#include <cstdint>

#include "glue.h"

namespace fpmr::glue {

namespace {

constexpr int64_t kFirstWakeMs = 100;
constexpr int64_t kWakeIntervalMs = 700;
constexpr int64_t kWindowMs = 1500;

timer_t g_timer;
bool g_timer_made = false;
volatile sig_atomic_t g_installed = 0;
int64_t g_window_end_ns = 0;  // written before the handler is installed

int64_t monotonic_ns() {
    timespec now;
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    return static_cast<int64_t>(now.tv_sec) * 1000000000 + now.tv_nsec;
}

void restore_default() {
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    ::sigaction(SIGCHLD, &dfl, nullptr);
    g_installed = 0;
    if (g_timer_made) {
        itimerspec off{};
        ::timer_settime(g_timer, 0, &off, nullptr);
    }
}

// Async-signal-safe: clock_gettime, sigaction and timer_settime only.
void on_sigchld(int) {
    if (monotonic_ns() >= g_window_end_ns) restore_default();
}

apr_status_t remove_wakeup(void*) {
    if (g_installed) restore_default();
    if (g_timer_made) ::timer_delete(g_timer);
    g_timer_made = false;
    return APR_SUCCESS;
}

int arm_wakeup(apr_pool_t* pconf, apr_pool_t*, apr_pool_t*, server_rec* s) {
    try {
        // Generation 0 is the configuration check, 1 the first start (whose
        // children start at once); a restart brings 2 and more.
        if (ap_state_query(AP_SQ_RUN_MODE) != AP_SQ_RM_NORMAL || ap_state_query(AP_SQ_CONFIG_GEN) < 2) {
            return OK;
        }
        struct sigaction current {};
        if (::sigaction(SIGCHLD, nullptr, &current) != 0 || current.sa_handler != SIG_DFL ||
            (current.sa_flags & SA_SIGINFO)) {
            return OK;  // someone else's handler: not ours to replace
        }
        sigevent event{};
        event.sigev_notify = SIGEV_SIGNAL;
        event.sigev_signo = SIGCHLD;
        if (::timer_create(CLOCK_MONOTONIC, &event, &g_timer) != 0) return OK;
        g_timer_made = true;
        apr_pool_cleanup_register(pconf, nullptr, remove_wakeup, apr_pool_cleanup_null);
        g_window_end_ns = monotonic_ns() + kWindowMs * 1000000;
        struct sigaction ours {};
        ours.sa_handler = on_sigchld;
        ours.sa_flags = SA_RESTART | SA_NOCLDSTOP;  // read/write restart; sleeps end
        sigemptyset(&ours.sa_mask);
        if (::sigaction(SIGCHLD, &ours, nullptr) != 0) return OK;
        g_installed = 1;
        itimerspec wake{};
        wake.it_value.tv_nsec = kFirstWakeMs * 1000000;
        wake.it_interval.tv_nsec = kWakeIntervalMs * 1000000;
        ::timer_settime(g_timer, 0, &wake, nullptr);
    } catch (...) {
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, s, FPMRNO(00176)
                     "internal error arming the wake-up after a graceful restart");
    }
    return OK;
}

// Children need none of it (and must not keep a handler of a module their
// parent may unload).
void drop_in_child(apr_pool_t*, server_rec*) {
    if (g_installed) restore_default();
}

}  // namespace

void register_graceful_wakeup_hooks() {
    ap_hook_post_config(arm_wakeup, nullptr, nullptr, APR_HOOK_REALLY_LAST);
    ap_hook_child_init(drop_in_child, nullptr, nullptr, APR_HOOK_REALLY_FIRST);
}

}  // namespace fpmr::glue
