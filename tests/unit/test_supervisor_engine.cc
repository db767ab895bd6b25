// The supervisor engine driven through every transition with a fake process
// table, fake pings and a fake clock: what integration tests reach only
// slowly or not at all (a master that never answers, one that dies while
// draining, a prepare cancelled by a flip, adoption after a supervisor
// crash, a restart in the middle of a replacement, every stop path hitting
// its deadline, hundreds of vhosts rolling within the start bound).
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "supervisor_engine.h"
#include "warmup_urls.h"
#include "test_blocks.h"

using namespace fpmr;

namespace {

constexpr int64_t kSecond = 1000000;
constexpr int64_t kTurnUs = 100000;

struct FakeClock : SupervisorClock {
    int64_t now = 50 * kSecond;
    int64_t now_us() override { return now; }
};

// What a fake master does when pinged.
enum class Answer { Ok, ServerError, Refuse, Hang };

struct FakeMaster {
    SpawnPlan plan;
    std::string listen;         // FPM_REPLICA_LISTEN
    std::string status_listen;  // FPM_REPLICA_STATUS_LISTEN
    std::string release;        // FPM_REPLICA_RELEASE
    uint64_t start_time = 0;
    bool alive = true;
    bool asked_to_stop = false;
    bool killed = false;
    Answer answer = Answer::Ok;
    // The warm-up script as this master runs it: what its opcache holds,
    // how `list` answers, what `compile` was asked for.
    std::vector<std::string> cached;
    int list_status = 200;
    Answer warmup_answer = Answer::Ok;
    std::vector<std::string> compiled;
};

std::string env_of(const SpawnPlan& plan, const std::string& name) {
    for (const std::string& e : plan.env) {
        if (e.rfind(name + "=", 0) == 0) return e.substr(name.size() + 1);
    }
    return {};
}

struct FakeProcesses : MasterProcesses {
    int32_t next_pid = 1000;
    std::map<int32_t, FakeMaster> table;
    std::vector<MasterExit> exits;
    bool exits_when_asked = true;  // php-fpm with no request in flight stops at once
    bool fork_fails = false;
    Answer new_masters_answer = Answer::Ok;
    std::set<int32_t> held;        // masters this "supervisor" holds (spawned or adopted)

    std::optional<MasterIdentity> spawn(const SpawnPlan& plan, const std::vector<SocketSpec>&) override {
        if (fork_fails) return std::nullopt;
        int32_t pid = next_pid++;
        FakeMaster m;
        m.plan = plan;
        m.listen = env_of(plan, "FPM_REPLICA_LISTEN");
        m.status_listen = env_of(plan, "FPM_REPLICA_STATUS_LISTEN");
        m.release = env_of(plan, "FPM_REPLICA_RELEASE");
        m.start_time = static_cast<uint64_t>(pid) * 7;
        m.answer = new_masters_answer;
        table[pid] = m;
        held.insert(pid);
        return MasterIdentity{pid, m.start_time};
    }
    bool adopt(const MasterIdentity& who) override {
        auto it = table.find(who.pid);
        if (it == table.end() || !it->second.alive || it->second.start_time != who.start_time) return false;
        held.insert(who.pid);
        return true;
    }
    void ask_to_stop(int32_t pid) override {
        REQUIRE(held.count(pid));
        table[pid].asked_to_stop = true;
        if (exits_when_asked) exit(pid, 0);
    }
    void kill_with_workers(int32_t pid) override {
        REQUIRE(held.count(pid));
        table[pid].killed = true;
        exit(pid, SIGKILL);  // a wait status: killed by signal 9
    }
    std::vector<MasterExit> collect_exits() override {
        std::vector<MasterExit> out;
        for (const MasterExit& e : exits) {
            if (held.erase(e.pid)) out.push_back(e);
        }
        exits.clear();
        return out;
    }
    void kill_and_forget(int32_t pid) override {
        table[pid].killed = true;
        table[pid].alive = false;
        held.erase(pid);
    }

    // The master exits on its own (a crash: status, or a signal).
    void exit(int32_t pid, int wait_status) {
        FakeMaster& m = table[pid];
        if (!m.alive) return;
        m.alive = false;
        exits.push_back({pid, wait_status});
    }
    int alive() const {
        int n = 0;
        for (auto& [pid, m] : table) n += m.alive;
        return n;
    }
    const FakeMaster* on(const std::string& path) const {
        for (auto& [pid, m] : table) {
            if (m.alive && (m.listen == path || m.status_listen == path)) return &m;
        }
        return nullptr;
    }
};

struct FakePing : MasterPing {
    FakeProcesses* processes;
    std::string path;
    int64_t deadline;
    std::optional<FcgiRequest> request;  // a warm-up request; none for a ping
    int status = 0;
    std::string answer_body;
    Result advance(int64_t now) override {
        FakeMaster* m = const_cast<FakeMaster*>(processes->on(path));
        if (!m || m->answer == Answer::Refuse) return Result::Failed;
        Answer how = request ? m->warmup_answer : m->answer;
        if (how == Answer::Hang) return now >= deadline ? Result::Failed : Result::Pending;
        status = how == Answer::Ok ? 200 : 500;
        if (request && request->query == "action=list") {
            status = m->list_status;
            for (const std::string& script : m->cached) answer_body += script + "\n";
        } else if (request) {
            size_t from = 0, to;
            while ((to = request->body.find('\n', from)) != std::string::npos) {
                m->compiled.push_back(request->body.substr(from, to - from));
                m->cached.push_back(m->compiled.back());
                from = to + 1;
            }
            answer_body = "compiled " + std::to_string(m->compiled.size()) + " skipped 0 errors 0 "
                          "uncached 0 warnings 0 elapsed_ms 3 timed_out 0\n";
        }
        return Result::Answered;
    }
    int http_status() const override { return status; }
    std::string body() const override { return answer_body; }
};

// httpd, as the warm-up's URL requests see it: it steers a request to the
// member its header names only while the trusted block holds that token
// (the children's check, core/warmup_urls), and notes what it saw.
struct HttpSeen {
    std::string path;
    int slot = -1;       // the member the header named
    bool admitted = false;
    ReplicaState state;  // that member's state when the request came
    WarmupToken token;
};
enum class HttpAnswer { Ok, Error, Hang };

struct FakeHttpPing : MasterPing {
    const SharedState* shared;
    std::vector<HttpSeen>* seen;
    HttpAnswer answer;
    std::string request;
    int64_t deadline;
    bool noted = false;
    Result advance(int64_t now) override {
        if (!noted) {
            noted = true;
            HttpSeen h;
            size_t sp = request.find(' ');
            h.path = request.substr(sp + 1, request.find(' ', sp + 1) - sp - 1);
            size_t at = request.find(std::string(kWarmupHeader) + ": ");
            REQUIRE(at != std::string::npos);
            std::string value = request.substr(at + std::strlen(kWarmupHeader) + 2);
            value = value.substr(0, value.find('\r'));
            std::optional<WarmupHeader> header = parse_warmup_header(value, 1024);
            REQUIRE(header);
            h.slot = header->slot;
            h.token = header->token;
            h.admitted = warmup_token_admits(shared->trusted(h.slot), header->token);
            h.state = static_cast<ReplicaState>(shared->trusted(h.slot).lifecycle.load());
            seen->push_back(h);
        }
        if (answer == HttpAnswer::Hang) return now >= deadline ? Result::Failed : Result::Pending;
        return Result::Answered;
    }
    int http_status() const override { return answer == HttpAnswer::Ok ? 200 : 500; }
    std::string body() const override { return ""; }
};

struct FakePings : MasterPings {
    FakeProcesses* processes;
    const SharedState* shared = nullptr;
    std::vector<HttpSeen> http;
    HttpAnswer http_answer = HttpAnswer::Ok;
    std::unique_ptr<MasterPing> start_http(const SocketSpec&, const std::string& request,
                                           int64_t deadline) override {
        auto p = std::make_unique<FakeHttpPing>();
        p->shared = shared;
        p->seen = &http;
        p->answer = http_answer;
        p->request = request;
        p->deadline = deadline;
        return p;
    }
    int started = 0;
    std::unique_ptr<MasterPing> start(const SocketSpec& socket, const std::string&, int64_t deadline) override {
        ++started;
        auto p = std::make_unique<FakePing>();
        p->processes = processes;
        p->path = socket.fpm_listen();
        p->deadline = deadline;
        return p;
    }
    bool script_installed = true;
    bool script_present(const std::string&) override { return script_installed; }
    std::unique_ptr<MasterPing> start_request(const SocketSpec& socket, const FcgiRequest& request,
                                              int64_t deadline, size_t) override {
        auto p = std::make_unique<FakePing>();
        p->processes = processes;
        p->path = socket.fpm_listen();
        p->deadline = deadline;
        p->request = request;
        return p;
    }
};

struct FakeRandom : RandomSource {
    uint64_t n = 0x1234;
    uint64_t next() override { return n += 0x9e3779b97f4a7c15ULL; }
};

struct FakeLog : LogSink {
    std::vector<std::string> lines;
    void write(LogLevel, const std::string& message) override { lines.push_back(message); }
    int count(const std::string& tag) const {
        int n = 0;
        for (const std::string& l : lines) n += l.rfind(tag, 0) == 0;
        return n;
    }
};

// The shared blocks, in heap memory, with slots claimed as the httpd parent
// claims them.
struct Blocks : testing::TestBlocks {
    SharedState state = format("nonce");
};

SocketSpec unix_socket(const std::string& path) {
    SocketSpec s;
    s.kind = SocketSpec::Kind::Unix;
    s.path = path;
    return s;
}

ReplicaPlan replica(Blocks& blocks, const std::string& vhost, const std::string& name, bool tcp = false) {
    ReplicaPlan p;
    p.vhost = vhost;
    p.request.command = {"/usr/sbin/php-fpm8.2", "-F"};
    p.request.replica.name = name;
    p.drain_timeout_us = 20 * kSecond;
    std::string base = "/run/fpmr-test/" + vhost + "-" + name + ".sock";
    std::vector<SocketSpec> sockets;
    if (tcp) {
        SocketSpec s;
        s.kind = SocketSpec::Kind::Tcp;
        s.host = "127.0.0.1";
        s.port = 9000 + static_cast<int>(name[0]);
        sockets.push_back(s);
    } else {
        sockets = {unix_socket(base), unix_socket(base + ".alt")};
    }
    p.request.replica.socket = sockets[0];
    for (const SocketSpec& s : sockets) {
        MemberPlan m;
        m.socket = s;
        m.slot = blocks.state.claim(vhost + "|" + name + "|" + s.text(), 1, ReplicaState::Starting);
        REQUIRE(m.slot >= 0);
        p.members.push_back(m);
    }
    return p;
}

HealthCheckSpec health_checks(int64_t interval_us, int64_t timeout_us, int fails, int passes) {
    HealthCheckSpec h;
    h.interval_us = interval_us;
    h.timeout_us = timeout_us;
    h.fails = fails;
    h.passes = passes;
    return h;
}

SupervisorPlan plan_of(std::vector<ReplicaPlan> replicas, uint32_t generation = 1) {
    SupervisorPlan plan;
    plan.generation = generation;
    for (const ReplicaPlan& r : replicas) plan.drain_timeout_us = std::max(plan.drain_timeout_us, r.drain_timeout_us);
    plan.replicas = std::move(replicas);
    return plan;
}

// One engine with its fake world.
struct Rig {
    Blocks& blocks;
    FakeClock clock;
    FakeProcesses processes;
    FakePings pings;
    FakeLog log;
    FakeRandom random;
    std::unique_ptr<SupervisorEngine> engine;

    Rig(Blocks& b, const SupervisorPlan& plan, int max_starting = 8) : blocks(b) {
        pings.processes = &processes;
        pings.shared = &blocks.state;
        make_engine(plan, max_starting);
    }
    void make_engine(const SupervisorPlan& plan, int max_starting = 8) {
        engine = std::make_unique<SupervisorEngine>(
            plan, blocks.state, SupervisorWorld{clock, processes, pings, log, random},
            SupervisorEngine::Limits{max_starting});
    }
    // Turns of the loop, a tick apart, for `us` of fake time.
    void run(int64_t us) {
        for (int64_t t = 0; t < us; t += kTurnUs) {
            engine->turn();
            clock.now += kTurnUs;
        }
    }
    // Turns until `done` holds (at most `limit` of fake time); how long it took.
    int64_t run_until(const std::function<bool()>& done, int64_t limit = 120 * kSecond) {
        int64_t began = clock.now;
        while (!done() && clock.now - began < limit) run(kTurnUs);
        return clock.now - began;
    }
    void restart_httpd(const std::optional<SupervisorPlan>& plan) { engine->on_httpd_restart(plan); }

    const TrustedSlot& trusted(const ReplicaPlan& r, size_t member) const {
        return blocks.state.trusted(r.members[member].slot);
    }
    ReplicaState lifecycle(const ReplicaPlan& r, size_t member) const {
        return static_cast<ReplicaState>(trusted(r, member).lifecycle.load());
    }
    int32_t pid(const ReplicaPlan& r, size_t member) const { return trusted(r, member).pid.load(); }
    // The member whose master is ready (serving), or -1.
    int serving(const ReplicaPlan& r) const {
        for (size_t i = 0; i < r.members.size(); ++i) {
            if (lifecycle(r, i) == ReplicaState::Ready && pid(r, i)) return static_cast<int>(i);
        }
        return -1;
    }
    void set_in_flight(const ReplicaPlan& r, size_t member, int64_t n) {
        blocks.state.slot(r.members[member].slot).in_flight.store(n);
    }
};

// One replica, `a` of vhost "app", started and ready.
struct OneReplicaRunning {
    Blocks blocks;
    ReplicaPlan a = replica(blocks, "app", "a");
    Rig rig{blocks, plan_of({a})};
    OneReplicaRunning() { rig.run(kSecond); }
};

// Replicas `a` and `b` of vhost "app", started and ready.
struct TwoReplicasRunning {
    Blocks blocks;
    ReplicaPlan a = replica(blocks, "app", "a");
    ReplicaPlan b = replica(blocks, "app", "b");
    Rig rig{blocks, plan_of({a, b})};
    TwoReplicasRunning() { rig.run(kSecond); }
};

}  // namespace

TEST_CASE("engine: replicas start, become ready once they answer, and are recorded", "[engine]") {
    Blocks blocks;
    ReplicaPlan a = replica(blocks, "app", "a"), b = replica(blocks, "app", "b");
    Rig rig(blocks, plan_of({a, b}));
    rig.processes.new_masters_answer = Answer::Refuse;  // php-fpm still loading
    rig.run(kSecond);
    CHECK(rig.processes.alive() == 2);
    CHECK(rig.lifecycle(a, 0) == ReplicaState::Starting);
    for (auto& [pid, m] : rig.processes.table) m.answer = Answer::Ok;
    rig.run(2 * kTurnUs);
    CHECK(rig.lifecycle(a, 0) == ReplicaState::Ready);
    CHECK(rig.lifecycle(b, 0) == ReplicaState::Ready);
    CHECK(rig.pid(a, 0) == 1000);
    CHECK(rig.trusted(a, 0).pid_start_time.load() == rig.processes.table[1000].start_time);
    CHECK(rig.pid(a, 1) == 0);  // the alternate member waits for a replacement
    CHECK(rig.log.count("FPMR00030") == 2);
    CHECK(rig.processes.table[1000].listen == "/run/fpmr-test/app-a.sock");
}

TEST_CASE_METHOD(OneReplicaRunning, "engine: a crashing master restarts with backoff and is marked failed after five quick crashes", "[engine]") {
    int32_t first = rig.pid(a, 0);
    rig.processes.exit(first, 11 << 8);  // exit status 11
    rig.run(kTurnUs);
    CHECK(rig.pid(a, 0) == 0);
    CHECK(rig.lifecycle(a, 0) == ReplicaState::Starting);
    CHECK(rig.log.count("FPMR00028") == 1);
    rig.run(kSecond);  // 0.5 s later it runs again
    CHECK(rig.pid(a, 0) != 0);
    CHECK(rig.pid(a, 0) != first);
    CHECK(rig.trusted(a, 0).restarts.load() == 1);
    // Four more quick crashes, each as soon as it runs again.
    for (int64_t t = 0; t < 30 * kSecond && rig.lifecycle(a, 0) != ReplicaState::Failed; t += kTurnUs) {
        if (rig.pid(a, 0)) rig.processes.exit(rig.pid(a, 0), SIGSEGV);
        rig.run(kTurnUs);
    }
    CHECK(rig.lifecycle(a, 0) == ReplicaState::Failed);
    CHECK(rig.log.count("FPMR00027") == 1);
    CHECK(rig.log.count("FPMR00028") == 4);
    CHECK(rig.trusted(a, 0).trouble.load() == static_cast<uint32_t>(MasterTrouble::CrashLoop));
    CHECK(rig.trusted(a, 0).trouble_detail.load() == SIGSEGV);
    rig.run(60 * kSecond);
    CHECK(rig.pid(a, 0) == 0);  // stays down
    // A restart of httpd (or the restart action) tries it again, from scratch.
    rig.restart_httpd(plan_of({a}, 2));
    rig.run(kSecond);
    CHECK(rig.lifecycle(a, 0) == ReplicaState::Ready);
}

TEST_CASE_METHOD(TwoReplicasRunning, "engine: a graceful restart replaces each replica on its alternate socket once the new master answers", "[engine]") {
    int32_t old_a = rig.pid(a, 0);
    rig.set_in_flight(a, 0, 3);  // three requests still running on a
    rig.restart_httpd(plan_of({a, b}, 2));
    rig.run(kSecond);
    // a's new master serves on .alt; the old one drains and waits for its requests.
    CHECK(rig.serving(a) == 1);
    CHECK(rig.lifecycle(a, 0) == ReplicaState::Draining);
    CHECK(rig.processes.table[old_a].alive);
    CHECK_FALSE(rig.processes.table[old_a].asked_to_stop);
    // One replica at a time per vhost: b waits for a.
    CHECK(rig.pid(b, 1) == 0);
    rig.set_in_flight(a, 0, 0);
    rig.run(kSecond);
    CHECK_FALSE(rig.processes.table[old_a].alive);
    CHECK(rig.lifecycle(a, 0) == ReplicaState::Stopped);
    CHECK(rig.log.count("FPMR00041") >= 1);
    rig.run(kSecond);
    CHECK(rig.serving(b) == 1);
    CHECK(rig.pid(b, 0) == 0);
    CHECK(rig.trusted(a, 0).restarts.load() == 1);
    CHECK(rig.processes.alive() == 2);
}

TEST_CASE_METHOD(OneReplicaRunning, "engine: the old master is stopped at the drain timeout with requests in flight, then killed", "[engine]") {
    int32_t old_a = rig.pid(a, 0);
    rig.set_in_flight(a, 0, 1);
    rig.processes.exits_when_asked = false;  // its request never ends
    rig.restart_httpd(plan_of({a}, 2));
    rig.run(19 * kSecond);
    CHECK_FALSE(rig.processes.table[old_a].asked_to_stop);
    rig.run(2 * kSecond);  // the drain timeout (20 s) passed: SIGQUIT
    CHECK(rig.processes.table[old_a].asked_to_stop);
    CHECK(rig.log.count("FPMR00040") == 1);
    CHECK_FALSE(rig.processes.table[old_a].killed);
    rig.run(10 * kSecond);  // and 10 s more to exit: SIGKILL with its workers
    CHECK(rig.processes.table[old_a].killed);
    CHECK(rig.log.count("FPMR00063") == 1);
    rig.run(kSecond);
    CHECK(rig.serving(a) == 1);
    CHECK(rig.log.count("FPMR00041") == 1);
}

TEST_CASE_METHOD(OneReplicaRunning, "engine: a replacement that never answers is abandoned; the current master keeps serving", "[engine]") {
    int32_t old_a = rig.pid(a, 0);
    rig.processes.new_masters_answer = Answer::Hang;
    rig.restart_httpd(plan_of({a}, 2));
    rig.run(29 * kSecond);
    CHECK(rig.lifecycle(a, 1) == ReplicaState::Starting);
    CHECK(rig.serving(a) == 0);
    rig.run(2 * kSecond);
    CHECK(rig.log.count("FPMR00039") == 1);
    rig.run(kSecond);
    CHECK(rig.pid(a, 1) == 0);
    CHECK(rig.processes.table[old_a].alive);
    CHECK(rig.serving(a) == 0);
}

TEST_CASE_METHOD(OneReplicaRunning, "engine: a replacement that dies before answering leaves the current master serving", "[engine]") {
    rig.processes.new_masters_answer = Answer::Refuse;
    rig.restart_httpd(plan_of({a}, 2));
    rig.run(kSecond);
    int32_t fresh = rig.pid(a, 1);
    REQUIRE(fresh != 0);
    rig.processes.exit(fresh, 78 << 8);
    rig.run(kSecond);
    CHECK(rig.log.count("FPMR00037") == 1);
    CHECK(rig.trusted(a, 1).trouble.load() == static_cast<uint32_t>(MasterTrouble::ReplacementFailed));
    CHECK(rig.lifecycle(a, 1) == ReplicaState::Stopped);
    CHECK(rig.serving(a) == 0);
}

TEST_CASE_METHOD(OneReplicaRunning, "engine: an old master that dies while draining ends the replacement, it is no crash", "[engine]") {
    int32_t old_a = rig.pid(a, 0);
    rig.set_in_flight(a, 0, 2);
    rig.restart_httpd(plan_of({a}, 2));
    rig.run(kSecond);
    REQUIRE(rig.lifecycle(a, 0) == ReplicaState::Draining);
    rig.processes.exit(old_a, SIGKILL);  // the OOM killer
    rig.run(kSecond);
    CHECK(rig.log.count("FPMR00175") == 1);
    CHECK(rig.log.count("FPMR00028") == 0);  // not restarted as a crash
    CHECK(rig.serving(a) == 1);
    CHECK(rig.pid(a, 0) == 0);
    rig.run(5 * kSecond);
    CHECK(rig.processes.alive() == 1);
}

TEST_CASE_METHOD(OneReplicaRunning, "engine: a graceful restart in the middle of a replacement replaces it once more, with the new settings", "[engine]") {
    rig.processes.new_masters_answer = Answer::Refuse;
    rig.restart_httpd(plan_of({a}, 2));
    rig.run(kSecond);
    REQUIRE(rig.lifecycle(a, 1) == ReplicaState::Starting);
    ReplicaPlan changed = a;
    changed.request.command = {"/usr/sbin/php-fpm8.2", "-F", "-d", "memory_limit=64M"};
    rig.restart_httpd(plan_of({changed}, 3));
    for (auto& [pid, m] : rig.processes.table) m.answer = Answer::Ok;
    rig.processes.new_masters_answer = Answer::Ok;
    rig.run(3 * kSecond);
    CHECK(rig.log.count("FPMR00041") == 2);  // replaced twice
    int serving = rig.serving(a);
    REQUIRE(serving == 0);
    const FakeMaster& now = rig.processes.table[rig.pid(a, 0)];
    CHECK(now.plan.argv == changed.request.command);
    CHECK(rig.processes.alive() == 1);
}

TEST_CASE("engine: rolls run one replica at a time per vhost, many vhosts at once, within the start bound",
          "[engine]") {
    Blocks blocks;
    std::vector<ReplicaPlan> replicas;
    for (int v = 0; v < 30; ++v) {
        for (const char* name : {"a", "b"}) replicas.push_back(replica(blocks, "site" + std::to_string(v), name));
    }
    Rig rig(blocks, plan_of(replicas), 4);
    rig.processes.new_masters_answer = Answer::Refuse;
    auto starting = [&] {
        int n = 0;
        for (auto& r : replicas) {
            for (size_t i = 0; i < 2; ++i) n += rig.pid(r, i) && rig.lifecycle(r, i) == ReplicaState::Starting;
        }
        return n;
    };
    rig.run(kSecond);
    CHECK(starting() == 4);  // first starts are bounded too
    for (auto& [pid, m] : rig.processes.table) m.answer = Answer::Ok;
    rig.processes.new_masters_answer = Answer::Ok;
    rig.run(5 * kSecond);
    for (auto& r : replicas) REQUIRE(rig.serving(r) == 0);
    rig.restart_httpd(plan_of(replicas, 2));
    int most_starting = 0;
    int most_vhosts_rolling = 0;
    int64_t began = rig.clock.now;
    for (int turn = 0; turn < 600; ++turn) {
        rig.run(kTurnUs);
        most_starting = std::max(most_starting, starting());
        std::map<std::string, int> extra;  // masters above one per replica, per vhost
        int vhosts = 0;
        for (auto& r : replicas) extra[r.vhost] += (rig.pid(r, 0) != 0) + (rig.pid(r, 1) != 0) - 1;
        for (auto& [vhost, n] : extra) {
            CHECK(n <= 1);  // never more than one replica of a vhost rolling
            vhosts += n > 0;
        }
        most_vhosts_rolling = std::max(most_vhosts_rolling, vhosts);
        if (rig.log.count("FPMR00041") == static_cast<int>(replicas.size())) break;
    }
    CHECK(rig.log.count("FPMR00041") == static_cast<int>(replicas.size()));
    CHECK(most_starting <= 4);
    CHECK(most_vhosts_rolling > 1);
    // 60 replicas, 4 at a time, a few turns each: far less than one at a time would take.
    CHECK(rig.clock.now - began < 10 * kSecond);
    for (auto& r : replicas) CHECK(rig.serving(r) == 1);
}

TEST_CASE("engine: a successor supervisor takes over the serving masters and stops the others", "[engine]") {
    Blocks blocks;
    ReplicaPlan a = replica(blocks, "app", "a"), b = replica(blocks, "app", "b");
    SupervisorPlan plan = plan_of({a, b});
    Rig rig(blocks, plan);
    rig.run(kSecond);
    int32_t serving_a = rig.pid(a, 0), serving_b = rig.pid(b, 0);
    rig.processes.new_masters_answer = Answer::Refuse;
    rig.restart_httpd(plan_of({a, b}, 2));
    rig.run(kSecond);
    int32_t half_started = rig.pid(a, 1);
    REQUIRE(half_started != 0);
    // The supervisor dies (SIGKILL): nothing of it survives but the trusted block.
    // b's recorded pid was reused by another process meanwhile.
    rig.processes.held.clear();
    rig.processes.table[serving_b].start_time += 1;
    rig.make_engine(plan);
    CHECK(rig.engine->adopt_running_masters() == 2);
    CHECK(rig.log.count("FPMR00057") == 1);
    CHECK(rig.log.count("FPMR00062") == 1);
    CHECK(rig.processes.table[half_started].asked_to_stop);  // a replacement in flight: stopped
    CHECK_FALSE(rig.processes.table[serving_a].asked_to_stop);
    CHECK_FALSE(rig.processes.table[serving_b].asked_to_stop);  // not ours to signal any more
    CHECK(rig.pid(b, 0) == 0);
    rig.processes.new_masters_answer = Answer::Ok;
    rig.run(kSecond);
    CHECK(rig.serving(a) == 0);
    CHECK(rig.pid(a, 0) == serving_a);
    CHECK(rig.serving(b) == 0);  // b started anew
    CHECK(rig.pid(b, 0) != serving_b);
    // An adopted master's exit is seen too, and restarts it.
    rig.processes.exit(serving_a, 0);
    rig.run(2 * kSecond);
    CHECK(rig.serving(a) == 0);
    CHECK(rig.pid(a, 0) != serving_a);
}

TEST_CASE_METHOD(TwoReplicasRunning, "engine: a removed replica drains after the grace period and is dropped; an added one starts", "[engine]") {
    int32_t old_b = rig.pid(b, 0);
    rig.set_in_flight(b, 0, 1);
    ReplicaPlan c = replica(blocks, "app", "c");
    rig.restart_httpd(plan_of({a, c}, 2));
    rig.run(kSecond);
    CHECK(rig.lifecycle(b, 0) == ReplicaState::Draining);
    CHECK_FALSE(rig.processes.table[old_b].asked_to_stop);
    CHECK(rig.serving(c) == 0);
    rig.set_in_flight(b, 0, 0);
    rig.run(2 * kSecond);
    CHECK_FALSE(rig.processes.table[old_b].alive);
    CHECK(rig.log.count("FPMR00053") == 1);
    CHECK(rig.log.count("FPMR00051") == 1);
}

TEST_CASE("engine: every stop escalates to SIGKILL at its deadline", "[engine]") {
    Blocks blocks;
    ReplicaPlan a = replica(blocks, "app", "a"), t = replica(blocks, "app", "t", true);
    Rig rig(blocks, plan_of({a, t}));
    rig.run(kSecond);
    rig.processes.exits_when_asked = false;  // requests that never end
    // Seconds of fake time, a turn's worth of slack either way.
    auto about = [](int64_t us, int64_t seconds) { return std::llabs(us - seconds * kSecond) <= 2 * kTurnUs; };
    SECTION("a tcp replica restarted in place gets the drain timeout") {
        FakeMaster& old = rig.processes.table[rig.pid(t, 0)];
        rig.blocks.state.slot(t.members[0].slot).restart_requested.fetch_add(1);
        CHECK(rig.run_until([&] { return old.asked_to_stop; }) <= 2 * kTurnUs);
        CHECK(about(rig.run_until([&] { return old.killed; }), 20));
        rig.run(kSecond);
        CHECK(rig.serving(t) == 0);  // restarted once gone
    }
    SECTION("a removed replica: retire deadline, then the stop grace") {
        FakeMaster& old = rig.processes.table[rig.pid(a, 0)];
        rig.set_in_flight(a, 0, 5);
        rig.restart_httpd(plan_of({t}, 2));
        CHECK(about(rig.run_until([&] { return old.asked_to_stop; }), 20));
        CHECK(about(rig.run_until([&] { return old.killed; }), 10));
        rig.run(kSecond);
        CHECK(rig.log.count("FPMR00053") == 1);
    }
    SECTION("httpd stopping: graceful stop, then each vhost's drain timeout, then kill_remaining") {
        rig.engine->begin_stop();
        for (auto& [pid, m] : rig.processes.table) CHECK(m.asked_to_stop == m.alive);
        int64_t began = rig.clock.now;
        while (rig.engine->any_running() && rig.clock.now - began < rig.engine->stop_timeout_us() + kSecond) {
            rig.engine->turn_stopping();
            rig.clock.now += kTurnUs;
        }
        CHECK(rig.log.count("FPMR00063") == 2);  // killed at its drain timeout (20 s)
        CHECK(rig.clock.now - began <= 21 * kSecond);
        CHECK_FALSE(rig.engine->any_running());
        rig.engine->kill_remaining();
        CHECK(rig.lifecycle(a, 0) == ReplicaState::Stopped);
        CHECK(rig.pid(a, 0) == 0);
    }
}

TEST_CASE("engine: health checks fail on a 500, restart the master, and pass again on 2xx", "[engine]") {
    Blocks blocks;
    ReplicaPlan a = replica(blocks, "app", "a");
    a.health = health_checks(500000, 500000, 2, 1);
    Rig rig(blocks, plan_of({a}));
    rig.run(2 * kSecond);
    CHECK(rig.trusted(a, 0).health.load() == static_cast<uint32_t>(HealthState::Passing));
    int32_t sick = rig.pid(a, 0);
    rig.processes.table[sick].answer = Answer::ServerError;  // /ping answers 500
    rig.run(kSecond + kTurnUs);
    CHECK(rig.log.count("FPMR00044") == 1);
    CHECK(rig.processes.table[sick].killed);
    CHECK(rig.trusted(a, 0).trouble.load() == static_cast<uint32_t>(MasterTrouble::HealthChecks));
    CHECK(rig.trusted(a, 0).trouble_detail.load() == 500);
    rig.run(2 * kSecond);
    CHECK(rig.pid(a, 0) != sick);
    CHECK(rig.serving(a) == 0);
    CHECK(rig.trusted(a, 0).health.load() == static_cast<uint32_t>(HealthState::Passing));
}

TEST_CASE("engine: a replica only health-checked is taken out and back, never signalled", "[engine]") {
    Blocks blocks;
    ReplicaPlan a = replica(blocks, "app", "a", true);
    a.supervised = false;
    a.health = health_checks(500000, 200000, 2, 2);
    blocks.state.trusted_rw(a.members[0].slot).lifecycle.store(static_cast<uint32_t>(ReplicaState::Ready));
    Rig rig(blocks, plan_of({a}));
    // Someone else's php-fpm on the replica's socket, hung.
    FakeMaster theirs;
    theirs.listen = a.members[0].socket.fpm_listen();
    theirs.answer = Answer::Hang;
    rig.processes.table[1] = theirs;
    rig.run(3 * kSecond);
    CHECK(rig.trusted(a, 0).health.load() == static_cast<uint32_t>(HealthState::Failing));
    CHECK_FALSE(rig.processes.table[1].killed);
    rig.processes.table[1].answer = Answer::Ok;
    rig.run(2 * kSecond);
    CHECK(rig.trusted(a, 0).health.load() == static_cast<uint32_t>(HealthState::Passing));
    CHECK(rig.log.count("FPMR00045") == 1);
}

namespace {

// A deploy directory: releases/r1..r3 and a `current` symlink.
struct Deploy {
    std::filesystem::path root;
    Deploy() {
        char pattern[] = "/tmp/fpmr-engine-XXXXXX";
        root = ::mkdtemp(pattern);
        for (const char* r : {"r1", "r2", "r3"}) std::filesystem::create_directories(root / "releases" / r);
        flip("r1");
    }
    ~Deploy() { std::filesystem::remove_all(root); }
    std::string current() const { return (root / "current").string(); }
    std::string release(const std::string& r) const { return (root / "releases" / r).string(); }
    void flip(const std::string& r) {
        std::filesystem::path next = root / "current.next";
        std::filesystem::remove(next);
        std::filesystem::create_directory_symlink("releases/" + r, next);
        std::filesystem::rename(next, root / "current");
    }
};

ReplicaPlan namespace_replica(Blocks& blocks, const Deploy& deploy, const std::string& name) {
    ReplicaPlan p = replica(blocks, "app", name);
    p.release_symlink = deploy.current();
    p.request.stable_path = "/srv/live/app";
    p.request.helper_path = "/usr/libexec/fpm-replica-helper";
    REQUIRE(blocks.state.claim_release(deploy.current()) >= 0);
    return p;
}

void request_prepare(Blocks& blocks, const std::string& symlink, const std::string& release) {
    ReleaseSlot& open = blocks.state.release_slot(blocks.state.find_release(symlink));
    REQUIRE(write_locked_string(open.requested_seq, open.requested, kReleaseLength, release));
    open.prepare_requests.fetch_add(1);
}

PrepareState prepare_state(Blocks& blocks, const std::string& symlink) {
    return static_cast<PrepareState>(
        blocks.state.trusted_release(blocks.state.find_release(symlink)).prepare_state.load());
}

// Replica `a` in namespace mode on the deploy's release r1, ready.
struct NamespaceReplicaRunning {
    Blocks blocks;
    Deploy deploy;
    ReplicaPlan a = namespace_replica(blocks, deploy, "a");
    Rig rig{blocks, plan_of({a})};
    NamespaceReplicaRunning() { rig.run(kSecond); }
};

}  // namespace

TEST_CASE_METHOD(NamespaceReplicaRunning, "engine: every flip of the symlink, however made, records the release before it",
                 "[engine]") {
    auto previous = [&] {
        const TrustedRelease& rs = blocks.state.trusted_release(blocks.state.find_release(deploy.current()));
        return read_locked_string(rs.previous_seq, rs.previous, kReleaseLength).value_or("?");
    };
    CHECK(previous().empty());  // what it named at start is no flip seen
    deploy.flip("r2");
    rig.run(kSecond);
    CHECK(previous() == std::filesystem::canonical(deploy.release("r1")).string());
    deploy.flip("r3");
    deploy.flip("r1");  // two flips within one turn: the turn sees r2 -> r1
    rig.run(kSecond);
    CHECK(previous() == std::filesystem::canonical(deploy.release("r2")).string());
    // A restarted supervisor keeps what the block recorded.
    rig.make_engine(plan_of({a}, 2));
    rig.run(kSecond);
    CHECK(previous() == std::filesystem::canonical(deploy.release("r2")).string());
}

TEST_CASE("engine: namespace mode follows the symlink; a prepared release takes over at the flip", "[engine]") {
    Blocks blocks;
    Deploy deploy;
    ReplicaPlan a = namespace_replica(blocks, deploy, "a"), b = namespace_replica(blocks, deploy, "b");
    Rig rig(blocks, plan_of({a, b}));
    rig.run(kSecond);
    CHECK(rig.processes.table[rig.pid(a, 0)].release == deploy.release("r1"));
    request_prepare(blocks, deploy.current(), deploy.release("r2"));
    rig.run(kSecond);
    CHECK(prepare_state(blocks, deploy.current()) == PrepareState::Ready);
    int32_t prepared = rig.pid(a, 1);
    REQUIRE(prepared != 0);
    CHECK(rig.processes.table[prepared].release == deploy.release("r2"));
    CHECK(rig.log.count("FPMR00048") == 1);
    deploy.flip("r2");
    rig.run(3 * kSecond);
    CHECK(rig.pid(a, 1) == prepared);  // the prepared master took over, no new start for a
    CHECK(rig.serving(a) == 1);
    CHECK(rig.processes.table[rig.pid(b, 1)].release == deploy.release("r2"));
    CHECK(rig.processes.alive() == 2);
}

TEST_CASE_METHOD(NamespaceReplicaRunning, "engine: a prepare cancelled by a flip to another release stops the prepared master", "[engine]") {
    request_prepare(blocks, deploy.current(), deploy.release("r2"));
    rig.run(kSecond);
    int32_t prepared = rig.pid(a, 1);
    REQUIRE(prepared != 0);
    rig.processes.exits_when_asked = false;  // it has a warm-up request running, say
    deploy.flip("r3");
    rig.run(kSecond);
    CHECK(rig.processes.table[prepared].asked_to_stop);
    CHECK(prepare_state(blocks, deploy.current()) == PrepareState::None);
    // Its stop escalates at the drain timeout, and only then the replacement
    // onto r3 takes the spare socket.
    rig.run(20 * kSecond);
    CHECK(rig.processes.table[prepared].killed);
    rig.processes.exits_when_asked = true;
    rig.run(3 * kSecond);
    CHECK(rig.serving(a) == 1);
    CHECK(rig.processes.table[rig.pid(a, 1)].release == deploy.release("r3"));
}

TEST_CASE_METHOD(NamespaceReplicaRunning, "engine: a prepare request for anything but a sibling release is refused", "[engine]") {
    request_prepare(blocks, deploy.current(), "/etc");
    rig.run(kSecond);
    CHECK(prepare_state(blocks, deploy.current()) == PrepareState::Failed);
    CHECK(rig.log.count("FPMR00065") == 1);
    CHECK(rig.pid(a, 1) == 0);
}

TEST_CASE_METHOD(NamespaceReplicaRunning, "engine: a release whose master cannot start is not retried for 30 s", "[engine]") {
    int32_t serving = rig.pid(a, 0);
    deploy.flip("r2");
    rig.processes.new_masters_answer = Answer::Refuse;
    rig.run(kSecond);
    rig.processes.exit(rig.pid(a, 1), 1 << 8);
    rig.run(kSecond);
    CHECK(rig.log.count("FPMR00043") == 1);
    int spawned = static_cast<int>(rig.processes.table.size());
    rig.run(20 * kSecond);
    CHECK(static_cast<int>(rig.processes.table.size()) == spawned);  // no hot loop
    CHECK(rig.pid(a, 0) == serving);
    rig.processes.new_masters_answer = Answer::Ok;
    rig.run(12 * kSecond);
    CHECK(rig.serving(a) == 1);
}

TEST_CASE_METHOD(TwoReplicasRunning, "engine: a replacement compiles the working set of the master it replaces before it is ready",
                 "[engine]") {
    FakeMaster& old_a = rig.processes.table[rig.pid(a, 0)];
    old_a.cached = {"/srv/app/index.php", "/srv/app/lib/db.php", "/usr/share/fpm-replica/warmup.php"};
    rig.processes.new_masters_answer = Answer::Ok;
    rig.processes.table[rig.pid(b, 0)].cached = {"/srv/app/other.php"};
    rig.restart_httpd(plan_of({a, b}, 2));
    rig.run(kSecond);
    int32_t fresh = rig.pid(a, 1);
    REQUIRE(fresh != 0);
    // No release on either side: the same paths, but the warm-up script itself.
    CHECK(rig.processes.table[fresh].compiled == std::vector<std::string>{"/srv/app/index.php", "/srv/app/lib/db.php"});
    CHECK(rig.trusted(a, 1).warmup_scripts.load() == 2);
    CHECK(rig.trusted(a, 1).warmup_us.load() >= 0);
    rig.run(3 * kSecond);
    CHECK(rig.serving(b) == 1);  // b's successor took b's set
    CHECK(rig.processes.table[rig.pid(b, 1)].compiled == std::vector<std::string>{"/srv/app/other.php"});
    CHECK(rig.log.count("FPMR00177") == 0);
}

TEST_CASE_METHOD(OneReplicaRunning, "engine: a warm-up that hangs is bounded by its timeout; the master becomes ready anyway",
                 "[engine]") {
    rig.processes.table[rig.pid(a, 0)].cached = {"/srv/app/index.php"};
    rig.processes.table[rig.pid(a, 0)].warmup_answer = Answer::Hang;  // every worker busy
    ReplicaPlan warmed = a;
    warmed.warmup.timeout_us = 3 * kSecond;
    rig.restart_httpd(plan_of({warmed}, 2));
    rig.run(2 * kSecond);
    CHECK(rig.lifecycle(a, 1) == ReplicaState::Starting);  // still warming: no traffic yet
    CHECK(rig.serving(a) == 0);
    rig.run(2 * kSecond);
    CHECK(rig.log.count("FPMR00177") == 1);
    CHECK(rig.serving(a) == 1);
}

TEST_CASE_METHOD(OneReplicaRunning, "engine: no warm-up where opcache is off, where it is turned off, or for a first start",
                 "[engine]") {
    CHECK(rig.trusted(a, 0).warmup_scripts.load() == -1);  // first start: nobody to take a set from
    SECTION("opcache off: the list answers 409") {
        rig.processes.table[rig.pid(a, 0)].list_status = 409;
        rig.restart_httpd(plan_of({a}, 2));
        rig.run(kSecond);
        CHECK(rig.serving(a) == 1);
        CHECK(rig.trusted(a, 1).warmup_scripts.load() == 0);
        CHECK(rig.log.count("FPMR00177") == 0);
    }
    SECTION("the warm-up script is not installed") {
        rig.processes.table[rig.pid(a, 0)].cached = {"/srv/app/index.php"};
        rig.pings.script_installed = false;
        rig.restart_httpd(plan_of({a}, 2));
        rig.run(kSecond);
        CHECK(rig.serving(a) == 1);
        CHECK(rig.processes.table[rig.pid(a, 1)].compiled.empty());
        CHECK(rig.log.count("FPMR00177") == 0);
    }
    SECTION("FpmReplicaWarmup off") {
        rig.processes.table[rig.pid(a, 0)].cached = {"/srv/app/index.php"};
        ReplicaPlan off = a;
        off.warmup.enabled = false;
        rig.restart_httpd(plan_of({off}, 2));
        rig.run(kSecond);
        CHECK(rig.serving(a) == 1);
        CHECK(rig.processes.table[rig.pid(a, 1)].compiled.empty());
    }
}

namespace {
ReplicaPlan with_urls(ReplicaPlan r, std::vector<std::string> urls) {
    r.warmup.urls = std::move(urls);
    r.warmup_listener = SocketSpec{SocketSpec::Kind::Tcp, "", "127.0.0.1", 8080};
    r.warmup_host = "app.test:8080";
    return r;
}
}  // namespace

TEST_CASE_METHOD(TwoReplicasRunning, "engine: a replacement requests the URL paths through httpd, steered by a one-time token, before it is ready",
                 "[engine]") {
    rig.processes.table[rig.pid(a, 0)].cached = {"/srv/app/index.php"};
    rig.processes.new_masters_answer = Answer::Ok;
    ReplicaPlan warmed = with_urls(a, {"/", "/build-cache?x=1"});
    rig.restart_httpd(plan_of({warmed, b}, 2));
    rig.run(kSecond);
    REQUIRE(rig.serving(a) == 1);
    const int32_t fresh = rig.pid(a, 1);
    // After the working set, in the order given, each once.
    CHECK(rig.processes.table[fresh].compiled == std::vector<std::string>{"/srv/app/index.php"});
    REQUIRE(rig.pings.http.size() == 2);
    CHECK(rig.pings.http[0].path == "/");
    CHECK(rig.pings.http[1].path == "/build-cache?x=1");
    for (const HttpSeen& h : rig.pings.http) {
        CHECK(h.slot == a.members[1].slot);            // the new master's member
        CHECK(h.admitted);                             // httpd lets it through to it
        CHECK(h.state == ReplicaState::Starting);      // before it takes traffic
        CHECK(h.token.high == rig.pings.http[0].token.high);  // one token per warm-up
    }
    // Once ready, the token steers nothing: a replayed request is an ordinary one.
    CHECK_FALSE(warmup_token_admits(rig.trusted(a, 1), rig.pings.http[0].token));
    CHECK(rig.trusted(a, 1).warmup_scripts.load() == 1);
    CHECK(rig.log.count("FPMR00177") == 0);
    // b has no URL paths: none requested for it; another warm-up, another token.
    rig.run(3 * kSecond);
    CHECK(rig.serving(b) == 1);
    CHECK(rig.pings.http.size() == 2);
    rig.restart_httpd(plan_of({warmed, b}, 3));
    rig.run(kSecond);
    REQUIRE(rig.pings.http.size() == 4);
    CHECK(rig.pings.http[2].slot == a.members[0].slot);
    CHECK(rig.pings.http[2].token.high != rig.pings.http[0].token.high);
}

TEST_CASE_METHOD(TwoReplicasRunning, "engine: URL paths that fail or hang end the warm-up with one line, and the master serves",
                 "[engine]") {
    rig.processes.new_masters_answer = Answer::Ok;
    SECTION("an error page: noted, the next path still requested") {
        rig.pings.http_answer = HttpAnswer::Error;
        rig.restart_httpd(plan_of({with_urls(a, {"/a", "/b"}), b}, 2));
        rig.run(kSecond);
        CHECK(rig.pings.http.size() == 2);
        CHECK(rig.serving(a) == 1);
        CHECK(rig.log.count("FPMR00177") == 1);
        bool said = false;
        for (const std::string& line : rig.log.lines) {
            said |= line.rfind("FPMR00177", 0) == 0 && line.find("GET /a answered 500") != std::string::npos;
        }
        CHECK(said);
    }
    SECTION("a hung path: bounded by the warm-up's timeout") {
        rig.pings.http_answer = HttpAnswer::Hang;
        ReplicaPlan warmed = with_urls(a, {"/slow", "/never"});
        warmed.warmup.timeout_us = 2 * kSecond;
        rig.restart_httpd(plan_of({warmed, b}, 2));
        rig.run(kSecond);
        CHECK(rig.lifecycle(a, 1) == ReplicaState::Starting);
        CHECK(rig.serving(a) == 0);
        rig.run(2 * kSecond);
        CHECK(rig.serving(a) == 1);
        CHECK(rig.pings.http.size() == 1);
        CHECK(rig.log.count("FPMR00177") == 1);
        CHECK_FALSE(warmup_token_admits(rig.trusted(a, 1), rig.pings.http[0].token));
    }
    SECTION("a restart that drops the paths meanwhile: the warm-up keeps its own copy") {
        rig.pings.http_answer = HttpAnswer::Hang;
        ReplicaPlan warmed = with_urls(a, {"/slow", "/next"});
        warmed.warmup.timeout_us = 3 * kSecond;
        rig.restart_httpd(plan_of({warmed, b}, 2));
        rig.run(kSecond);
        REQUIRE(rig.pings.http.size() == 1);
        rig.restart_httpd(plan_of({a, b}, 3));  // no URL paths, no listener any more
        rig.run(3 * kSecond);
        CHECK(rig.serving(a) >= 0);
        CHECK(rig.log.count("FPMR00177") >= 1);
    }
    SECTION("httpd listens on no address of the vhost: one line, no request") {
        rig.pings.script_installed = false;
        ReplicaPlan warmed = with_urls(a, {"/"});
        warmed.warmup_listener.reset();
        rig.restart_httpd(plan_of({warmed, b}, 2));
        rig.run(kSecond);
        CHECK(rig.pings.http.empty());
        CHECK(rig.serving(a) == 1);
        CHECK(rig.log.count("FPMR00177") == 1);
    }
    SECTION("without the warm-up script the paths are still requested") {
        rig.pings.script_installed = false;
        rig.restart_httpd(plan_of({with_urls(a, {"/"}), b}, 2));
        rig.run(kSecond);
        CHECK(rig.pings.http.size() == 1);
        CHECK(rig.serving(a) == 1);
    }
}

TEST_CASE("engine: a vhost's first master requests no URL path (nobody else would serve meanwhile)", "[engine]") {
    Blocks blocks;
    ReplicaPlan a = with_urls(replica(blocks, "app", "a"), {"/"});
    Rig rig(blocks, plan_of({a}));
    rig.run(kSecond);
    CHECK(rig.serving(a) == 0);
    CHECK(rig.pings.http.empty());
}

TEST_CASE_METHOD(NamespaceReplicaRunning, "engine: a prepared release is warmed with the working set before the flip",
                 "[engine]") {
    rig.processes.table[rig.pid(a, 0)].cached = {"/srv/live/app/index.php", "/srv/live/app/src/App.php",
                                                 "/tmp/elsewhere.php"};
    request_prepare(blocks, deploy.current(), deploy.release("r2"));
    rig.run(kSecond);
    int32_t prepared = rig.pid(a, 1);
    REQUIRE(prepared != 0);
    CHECK(prepare_state(blocks, deploy.current()) == PrepareState::Ready);
    // Every master sees its release under the stable path: the same paths,
    // and a script outside it (a library, a template cache) as it is.
    CHECK(rig.processes.table[prepared].compiled ==
          std::vector<std::string>{"/srv/live/app/index.php", "/srv/live/app/src/App.php",
                                   "/tmp/elsewhere.php"});
}

TEST_CASE("engine: realpath mode, a prepare has the serving masters compile the new release before the flip",
          "[engine]") {
    Blocks blocks;
    Deploy deploy;
    ReplicaPlan a = replica(blocks, "app", "a"), b = replica(blocks, "app", "b");
    for (ReplicaPlan* r : {&a, &b}) r->release_symlink = deploy.current();
    REQUIRE(blocks.state.claim_release(deploy.current()) >= 0);
    Rig rig(blocks, plan_of({a, b}));
    rig.run(kSecond);
    FakeMaster& serving_a = rig.processes.table[rig.pid(a, 0)];
    serving_a.cached = {deploy.release("r1") + "/index.php", deploy.release("r1") + "/lib/x.php", "/usr/share/php/y.php"};
    rig.processes.table[rig.pid(b, 0)].warmup_answer = Answer::Hang;  // busy: bounded by the timeout
    request_prepare(blocks, deploy.current(), deploy.release("r2"));
    rig.run(kSecond);
    CHECK(serving_a.compiled == std::vector<std::string>{deploy.release("r2") + "/index.php",
                                                         deploy.release("r2") + "/lib/x.php"});
    CHECK(prepare_state(blocks, deploy.current()) == PrepareState::Starting);  // b still at it
    CHECK(rig.pid(a, 1) == 0);  // no new master in realpath mode
    rig.run(10 * kSecond);
    CHECK(prepare_state(blocks, deploy.current()) == PrepareState::Ready);
    CHECK(rig.log.count("FPMR00178") == 1);
}
