// fpm-replica: the operator's tool for mod_fpm_replica, talking to the
// status handler (SetHandler fpm-replica-status).
//
//   fpm-replica [--url URL] [--host NAME] [--timeout SECONDS] status [--json]
//   fpm-replica [--url URL] [--host NAME] [--timeout SECONDS] drain NAME
//   fpm-replica [--url URL] [--host NAME] [--timeout SECONDS] undrain NAME
//   fpm-replica [--url URL] [--host NAME] [--timeout SECONDS] restart [NAME]
//   fpm-replica [--url URL] [--host NAME] [--timeout SECONDS] deploy RELEASE_DIR
//               [--watch DURATION [--max-error-rate R]]
//   fpm-replica [--url URL] [--host NAME] [--timeout SECONDS] rollback
//   fpm-replica [--url URL] [--host NAME] [--timeout SECONDS] releases
//   fpm-replica [--url URL] [--host NAME] [--timeout SECONDS] prune --keep N
//   fpm-replica [--url URL] [--host NAME] [--timeout SECONDS] remove RELEASE_DIR
//               [--wait DURATION]
//
// Exit codes: 0 done, 1 failed (what was left as it was is said), 2 usage, 3 prune/remove kept a release in use.
#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "config_parse.h"
#include "deploy_watch.h"
#include "release_inventory.h"
#include "release_layout.h"
#include "release_links.h"
#include "release_resolver.h"
#include "status_client.h"
#include "tree_removal.h"

namespace fpmr::cli {
namespace {

constexpr const char* kDefaultUrl = "http://127.0.0.1/fpm-replica-status";
constexpr const char* kUsage =
    "usage: fpm-replica [--url URL] [--host NAME] [--timeout SECONDS]\n"
    "                   {status [--json],drain NAME,undrain NAME,restart [NAME],\n"
    "                    deploy RELEASE_DIR [--watch DURATION [--max-error-rate R]],rollback,\n"
    "                    releases,prune --keep N,remove RELEASE_DIR [--wait DURATION]}\n";
constexpr const char* kHelp =
    "\nthe operator's tool for mod_fpm_replica, talking to the status handler\n\n"
    "commands:\n"
    "  status [--json]      the replicas as a table (--json: the status document)\n"
    "  drain NAME           drain a replica\n"
    "  undrain NAME         undrain a replica\n"
    "  restart [NAME]       replace replicas one by one; waits until done\n"
    "  deploy RELEASE_DIR   bring up replicas on a release, then flip the symlink\n"
    "    --watch DURATION   then watch its answers (\"30s\", \"2m\") and flip back, exit 1,\n"
    "                       when their 5xx rate passes --max-error-rate (default 0.05)\n"
    "  rollback             go back to the release served before the last flip\n"
    "  releases             the release directories beside the current one, newest first,\n"
    "                       and what uses each\n"
    "  prune --keep N       delete the oldest releases beyond the N newest, never one in use\n"
    "  remove RELEASE_DIR   delete one release (a rollback record may name it), never one in use\n"
    "    --wait DURATION    wait that long (\"2m\") for its requests and masters to finish\n\n"
    "options:\n"
    "  --url URL            status handler (default http://127.0.0.1/fpm-replica-status)\n"
    "  --host NAME          Host header to send: the vhost's ServerName, when the status\n"
    "                       URL's address is shared by several vhosts\n"
    "  --timeout SECONDS    seconds to wait for the server and for a restart (default 60)\n\n"
    "environment:\n"
    "  FPM_REPLICA_URL, FPM_REPLICA_HOST   defaults of --url and --host\n\n"
    "Exit codes: 0 done, 1 failed (what was left as it was is said), 2 usage, 3 prune/remove kept a release in use.\n";

struct Options {
    std::string url = kDefaultUrl;
    std::string host;
    double timeout = 60.0;
    std::string command;
    std::vector<std::string> operands;
    bool json = false;
    std::optional<size_t> keep;              // prune --keep N
    std::optional<double> watch_seconds;     // deploy --watch DURATION
    std::optional<double> max_error_rate;    // deploy --max-error-rate R
    double wait_seconds = 0;                 // remove --wait DURATION
};

struct UsageError {
    std::string what;
};

// prune and remove: a release was kept because something still uses it
// (exit 3), which a deploy tool treats as a warning, unlike a failure (1).
class KeptInUse : public Failure {
public:
    using Failure::Failure;
};
constexpr int kExitKeptInUse = 3;

// "60" for 60.0, "2.5" for 2.5: what Python's {:g} printed.
std::string seconds_text(double s) {
    char text[32];
    std::snprintf(text, sizeof text, "%g", s);
    return text;
}

Options parse_arguments(int argc, char** argv) {
    Options o;
    // The site named once per shell (export FPM_REPLICA_HOST=app.example.org)
    // instead of on every command; the options still win.
    if (const char* url = std::getenv("FPM_REPLICA_URL"); url && *url) o.url = url;
    if (const char* host = std::getenv("FPM_REPLICA_HOST"); host && *host) o.host = host;
    int i = 1;
    auto value_of = [&](const std::string& arg, const std::string& name) -> std::optional<std::string> {
        if (arg == name) {
            if (i + 1 >= argc) throw UsageError{"argument " + name + ": expected one argument"};
            return std::string(argv[++i]);
        }
        if (arg.rfind(name + "=", 0) == 0) return arg.substr(name.size() + 1);
        return std::nullopt;
    };
    for (; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg == "-h" || arg == "--help") {
            std::cout << kUsage << kHelp;
            std::exit(0);
        }
        if (auto v = value_of(arg, "--url")) {
            o.url = *v;
        } else if (auto v = value_of(arg, "--host")) {
            o.host = *v;
        } else if (auto v = value_of(arg, "--timeout")) {
            char* end = nullptr;
            o.timeout = std::strtod(v->c_str(), &end);
            if (v->empty() || *end != '\0' || !(o.timeout > 0)) {
                throw UsageError{"argument --timeout: invalid value: '" + *v + "'"};
            }
        } else if (!arg.empty() && arg[0] == '-') {
            throw UsageError{"unrecognized arguments: " + arg};
        } else {
            break;
        }
    }
    if (i >= argc) throw UsageError{"the following arguments are required: command"};
    o.command = argv[i++];
    for (; i < argc; ++i) {
        std::string arg = argv[i];
        if (o.command == "status" && arg == "--json") {
            o.json = true;
        } else if (o.command == "prune" && (arg == "--keep" || arg.rfind("--keep=", 0) == 0)) {
            std::string v = *value_of(arg, "--keep");
            char* end = nullptr;
            long n = std::strtol(v.c_str(), &end, 10);
            if (v.empty() || *end != '\0' || n < 1) {
                throw UsageError{"argument --keep: invalid value: '" + v + "' (a number of releases, 1 or more)"};
            }
            o.keep = static_cast<size_t>(n);
        } else if (o.command == "deploy" && (arg == "--watch" || arg.rfind("--watch=", 0) == 0)) {
            std::string v = *value_of(arg, "--watch");
            std::string why;
            std::optional<int64_t> us = parse_duration_us(v, &why);
            if (!us || *us <= 0) throw UsageError{"argument --watch: invalid duration: '" + v + "'"};
            o.watch_seconds = static_cast<double>(*us) / 1e6;
        } else if (o.command == "deploy" && (arg == "--max-error-rate" || arg.rfind("--max-error-rate=", 0) == 0)) {
            std::string v = *value_of(arg, "--max-error-rate");
            char* end = nullptr;
            double rate = std::strtod(v.c_str(), &end);
            if (v.empty() || *end != '\0' || !(rate >= 0 && rate < 1)) {
                throw UsageError{"argument --max-error-rate: invalid value: '" + v + "' (a fraction: 0.05 is 5%)"};
            }
            o.max_error_rate = rate;
        } else if (o.command == "remove" && (arg == "--wait" || arg.rfind("--wait=", 0) == 0)) {
            std::string v = *value_of(arg, "--wait");
            std::string why;
            std::optional<int64_t> us = parse_duration_us(v, &why);
            if (!us || *us < 0) throw UsageError{"argument --wait: invalid duration: '" + v + "'"};
            o.wait_seconds = static_cast<double>(*us) / 1e6;
        } else if (arg == "-h" || arg == "--help") {
            std::cout << kUsage << kHelp;
            std::exit(0);
        } else if (!arg.empty() && arg[0] == '-' && arg != "-") {
            throw UsageError{"unrecognized arguments: " + arg};
        } else {
            o.operands.push_back(arg);
        }
    }
    size_t least = 0, most = 0;
    if (o.command == "drain" || o.command == "undrain" || o.command == "deploy" || o.command == "remove") {
        least = most = 1;
    } else if (o.command == "restart") {
        most = 1;
    } else if (o.command != "status" && o.command != "rollback" && o.command != "releases" &&
               o.command != "prune") {
        throw UsageError{"argument command: invalid choice: '" + o.command +
                         "' (choose from 'status', 'drain', 'undrain', 'restart', 'deploy', 'rollback', "
                         "'releases', 'prune', 'remove')"};
    }
    if (o.command == "prune" && !o.keep) throw UsageError{"the following arguments are required: --keep"};
    if (o.max_error_rate && !o.watch_seconds) throw UsageError{"argument --max-error-rate: needs --watch"};
    if (o.operands.size() < least) throw UsageError{"the following arguments are required: " +
                                                    std::string(o.command == "deploy" || o.command == "remove" ? "release_dir" : "name")};
    if (o.operands.size() > most) throw UsageError{"unrecognized arguments: " + o.operands[most]};
    return o;
}

std::string text_of(const Document& value) {
    if (value.is_null()) return "-";
    if (value.is_string()) return value.get<std::string>();
    return value.dump();
}

const Document& replica(const Document& doc, const std::string& name) {
    std::string names;
    for (const Document& r : doc["replicas"]) {
        if (r["name"] == name) return r;
        names += (names.empty() ? "" : ", ") + r["name"].get<std::string>();
    }
    throw Failure("unknown replica '" + name + "' (replicas: " + names + ")");
}

// Polls `check` every 0.2 s until it holds; Failure(`what`) after `timeout` s.
void wait_for(const std::string& what, double timeout, const std::function<bool()>& check) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout);
    while (!check()) {
        if (std::chrono::steady_clock::now() > deadline) throw Failure(what);
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
}

// Columns padded to their widest cell, two spaces apart.
void print_table(const std::vector<std::vector<std::string>>& rows) {
    std::vector<size_t> widths(rows[0].size(), 0);
    for (const auto& row : rows) {
        for (size_t c = 0; c < row.size(); ++c) widths[c] = std::max(widths[c], row[c].size());
    }
    for (const auto& row : rows) {
        std::string line;
        for (size_t c = 0; c < row.size(); ++c) {
            line += row[c] + std::string(widths[c] - row[c].size(), ' ');
            if (c + 1 < row.size()) line += "  ";
        }
        while (!line.empty() && line.back() == ' ') line.pop_back();
        std::cout << line << "\n";
    }
}

int status(const StatusClient& client, const Options& o) {
    Document doc = client.get();
    if (o.json) {
        std::cout << doc.dump(2) << "\n";
        return 0;
    }
    std::cout << "vhost " << text_of(doc["vhost"]) << "   release " << text_of(doc["release"]) << "\n";
    std::vector<std::vector<std::string>> rows = {
        {"NAME", "STATE", "PID", "IN_FLIGHT", "REQUESTS", "FAILURES", "RESTARTS", "RELEASE", "SOCKET"}};
    for (const Document& r : doc["replicas"]) {
        rows.push_back({text_of(r["name"]), text_of(r["state"]), text_of(r["pid"]), text_of(r["in_flight"]),
                        text_of(r["requests"]), text_of(r["failures"]), text_of(r["restarts"]),
                        text_of(r["release"]), text_of(r["socket"])});
    }
    print_table(rows);
    return 0;
}

int drain(const StatusClient& client, const std::string& action, const std::string& name) {
    Document doc = client.get();
    replica(doc, name);
    Document after = client.post({{"action", action}, {"replica", name}}, doc["nonce"].get<std::string>());
    const Document& r = replica(after, name);
    std::cout << name << ": " << text_of(r["state"]) << ", " << text_of(r["in_flight"]) << " in flight\n";
    return 0;
}

int restart(const StatusClient& client, const Options& o) {
    Document doc = client.get();
    std::vector<std::string> names;
    if (!o.operands.empty()) {
        names.push_back(o.operands[0]);
    } else {
        for (const Document& r : doc["replicas"]) names.push_back(r["name"].get<std::string>());
    }
    for (const std::string& name : names) {
        Document before = replica(doc, name);
        doc = client.post({{"action", "restart"}, {"replica", name}}, doc["nonce"].get<std::string>());
        Document now;
        auto replaced = [&] {
            now = replica(client.get(), name);
            return now["restarts"].get<long>() > before["restarts"].get<long>() && now["state"] == "ready";
        };
        auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(o.timeout);
        while (!replaced()) {
            if (std::chrono::steady_clock::now() > deadline) {
                throw Failure(name + " was not replaced within " + seconds_text(o.timeout) + "s (state " +
                              text_of(now["state"]) + "); the replicas after it were left as they were");
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
        }
        std::cout << name << ": replaced, pid " << text_of(before["pid"]) << " -> " << text_of(now["pid"]) << "\n";
        doc = client.get();
    }
    return 0;
}

int watch_release(const StatusClient& client, const Options& o, const std::string& link,
                  const std::string& target, const std::string& previous, const AnswerCounts& before);

// `prepare`: bring up and warm replicas on the release before the flip (a
// deploy); a watched deploy's rollback flips back at once instead, because
// every moment before the flip serves the failing release.
int deploy(const StatusClient& client, const Options& o, const std::string& release_dir, bool prepare = true) {
    Document doc = client.get();
    if (!doc.contains("release_link") || !doc["release_link"].is_string()) {
        throw Failure("this vhost has no FpmReplicaRelease: there is no release symlink to flip");
    }
    const std::string link = doc["release_link"].get<std::string>();
    // Before anything is asked of the server: the link is one this CLI may flip.
    ReleaseLayout layout = check_release_layout(link);
    std::optional<std::string> resolved = release_directory(release_dir);
    if (!resolved) {
        throw Failure("release '" + release_dir + "' is not a directory; " + link + " was left as it was");
    }
    const std::string target = *resolved;
    if (parent_directory(target) != layout.releases_dir) {
        throw Failure("release '" + release_dir + "' is not a directory in " + layout.releases_dir + "; " + link +
                      " was left as it was");
    }
    const std::string current = release_directory(link).value_or(link);
    if (current == target) {
        std::cout << link << " already names " << target << "\n";
        return 0;
    }
    // 1. In namespace mode, a master on the new release first, checked; in
    // realpath mode with supervision the serving masters compile it.
    bool prepared = prepare;
    try {
        if (prepare) client.post({{"action", "prepare"}, {"release", target}}, doc["nonce"].get<std::string>());
    } catch (const Failure& e) {
        // 409: realpath mode without supervision, where every replica
        // serves every release as it is and there is nothing to prepare.
        if (doc.value("mode", "") == "namespace" || e.http_status() != 409) throw;
        prepared = false;
    }
    if (prepared) {
        std::string state;
        wait_for("no replica came up on " + target + " within " + seconds_text(o.timeout) + "s; " + link +
                     " still names " + current,
                 o.timeout, [&] {
                     Document d = client.get();
                     state = d["prepared"].is_object() ? text_of(d["prepared"]["state"]) : "";
                     return state == "ready" || state == "failed";
                 });
        if (state != "ready") {
            throw Failure("replicas could not start on " + target + " (see the error log); " + link +
                          " still names " + current);
        }
    }
    // 2. The flip: remember where we came from, then one rename. A watch
    // counts the release's answers from here.
    AnswerCounts before = answers_of(client.get(), target);
    change_as_layout_owner(layout, [&] { flip_release_symlink(layout.link_path, target); });
    // 3. Every replica on the new release (namespace mode) / the vhost on it.
    wait_for(link + " now names " + target + ", but not every replica serves it yet after " +
                 seconds_text(o.timeout) + "s",
             o.timeout, [&] {
                 Document d = client.get();
                 if (text_of(d["release"]) != target) return false;
                 for (const Document& r : d["replicas"]) {
                     if (r["state"] != "ready" || !(r["release"].is_null() || r["release"] == target)) return false;
                 }
                 return true;
             });
    std::cout << "deployed " << target << " (previous: " << current << ")" << std::endl;
    if (o.watch_seconds) return watch_release(client, o, link, target, current, before);
    return 0;
}

// deploy --watch: polls the new release's answers until the window ends;
// flips back (a deploy of the previous release, prepared like any) and
// fails when they are bad, or when its replicas fail their health checks
// two polls in a row.
int watch_release(const StatusClient& client, const Options& o, const std::string& link,
                  const std::string& target, const std::string& previous, const AnswerCounts& before) {
    WatchRule rule;
    if (o.max_error_rate) rule.max_error_rate = *o.max_error_rate;
    auto start = std::chrono::steady_clock::now();
    auto deadline = start + std::chrono::duration<double>(*o.watch_seconds);
    int unhealthy_polls = 0;
    AnswerCounts since;
    for (;;) {
        Document d = client.get();
        if (text_of(d["release"]) != target) {
            throw Failure(link + " was flipped to " + text_of(d["release"]) +
                          " during the watch; stopped watching " + target + " and left it as it is");
        }
        AnswerCounts now = answers_of(d, target);
        since.requests = now.requests >= before.requests ? now.requests - before.requests : now.requests;
        since.server_errors =
            now.server_errors >= before.server_errors ? now.server_errors - before.server_errors : now.server_errors;
        unhealthy_polls = serving_replicas_unhealthy(d, target) ? unhealthy_polls + 1 : 0;
        if (std::optional<std::string> why = judge_watch(since, rule, unhealthy_polls >= 2)) {
            double after = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
            std::cerr << "fpm-replica: " << target << ": " << *why << ", " << seconds_text(after)
                      << "s after the flip; flipping back to " << previous << std::endl;
            Options plain = o;
            plain.watch_seconds.reset();
            deploy(client, plain, previous, false);
            throw Failure("rolled back to " + previous + " because " + target + ": " + *why);
        }
        if (std::chrono::steady_clock::now() >= deadline) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
    char rate[32];
    std::snprintf(rate, sizeof rate, "%.2f%%",
                  since.requests ? 100.0 * static_cast<double>(since.server_errors) / static_cast<double>(since.requests) : 0.0);
    std::cout << "watched " << target << " for " << seconds_text(*o.watch_seconds) << "s: " << since.requests
              << " PHP answers, " << since.server_errors << " 5xx (" << rate << ")\n";
    return 0;
}

std::string release_link_of(const Document& doc) {
    if (!doc.contains("release_link") || !doc["release_link"].is_string()) {
        throw Failure("this vhost has no FpmReplicaRelease: there are no releases to list");
    }
    return doc["release_link"].get<std::string>();
}

int releases(const StatusClient& client) {
    Document doc = client.get();
    const std::string link = release_link_of(doc);
    ReleaseLayout layout = check_release_layout(link);
    ReleaseUses uses = uses_of(doc, layout.link_path);
    std::cout << "releases in " << layout.releases_dir << ", newest first\n";
    std::vector<std::vector<std::string>> rows = {{"NAME", "IN_FLIGHT", "MASTERS", "USED_AS"}};
    for (const ReleaseDirectory& r : releases_beside(layout.current)) {
        std::vector<std::string> used;
        if (uses.current == r.path) used.push_back("current");
        if (uses.previous == r.path) used.push_back("previous");
        if (uses.previous_link == r.path) used.push_back(link.substr(link.find_last_of('/') + 1) + ".previous");
        if (uses.prepared == r.path) used.push_back("preparing");
        auto m = uses.masters.find(r.path);
        std::string masters = m == uses.masters.end() ? "" : joined(m->second, ",");
        std::string used_as = joined(used, ",");
        auto f = uses.in_flight.find(r.path);
        rows.push_back({r.name, std::to_string(f == uses.in_flight.end() ? 0 : f->second),
                        masters.empty() ? "-" : masters, used_as.empty() ? "-" : used_as});
    }
    print_table(rows);
    return 0;
}

int prune(const StatusClient& client, const Options& o) {
    Document doc = client.get();
    const std::string link = release_link_of(doc);
    // The layout on disk decides what may be deleted, not the document
    // (uses_of, too, reads the link's release from the disk).
    ReleaseLayout layout = check_release_layout(link);
    ReleaseUses uses = uses_of(doc, layout.link_path);
    PrunePlan plan = plan_prune(releases_beside(layout.current), *o.keep, uses);
    auto refused = plan.refused;
    for (const ReleaseDirectory& r : plan.removable) {
        // What is in use is read again just before each deletion: a request
        // may have been pinned, or a flip made, since the plan.
        ReleaseUses now = uses_of(client.get(), layout.link_path);
        if (now.current != layout.current) {
            throw Failure(link + " was flipped during the prune; the releases not yet deleted were left");
        }
        std::vector<std::string> why = reasons_in_use(now, r.path);
        if (!why.empty()) {
            refused.emplace_back(r, why.front());
            continue;
        }
        try {
            change_as_layout_owner(layout, [&] {
                std::string error;
                if (!remove_tree(layout.releases_dir, r.name, &error)) throw Failure(error);
            });
        } catch (const Failure& e) {
            refused.emplace_back(r, std::string("could not be deleted completely: ") + e.what());
            continue;
        }
        std::cout << "deleted " << r.path << "\n";
    }
    for (const auto& [r, why] : refused) std::cout << "kept " << r.path << ": " << why << "\n";
    if (!refused.empty()) {
        throw KeptInUse(std::to_string(refused.size()) + " release" + (refused.size() == 1 ? "" : "s") +
                        " beyond the " + std::to_string(*o.keep) + " newest kept (in use or not deletable)");
    }
    return 0;
}

// remove RELEASE_DIR: the one release a deploy tool's rollback cleanup
// deletes (Capistrano's deploy:cleanup_rollback), which prune keeps as the
// rollback target. It waits up to --wait for the release's requests and
// masters to finish instead of deleting files from under them, and never
// deletes the release the symlink names.
int remove_release(const StatusClient& client, const Options& o) {
    Document doc = client.get();
    const std::string link = release_link_of(doc);
    ReleaseLayout layout = check_release_layout(link);
    std::string given = o.operands[0];
    while (given.size() > 1 && given.back() == '/') given.pop_back();
    std::optional<std::string> resolved = release_directory(given);
    // A link to a release is not that release: name the directory itself.
    if (!resolved || parent_directory(*resolved) != layout.releases_dir || is_symlink(given)) {
        throw Failure("'" + given + "' is not a directory in " + layout.releases_dir + "; nothing was deleted");
    }
    const std::string target = *resolved;
    const std::string name = target.substr(layout.releases_dir.size() + 1);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(o.wait_seconds);
    ReleaseUses uses = uses_of(doc, layout.link_path);
    for (;;) {
        std::vector<std::string> why = reasons_not_removable(uses, target);
        if (why.empty()) break;
        if (uses.current == target) throw Failure(link + " names " + target + ": it was not deleted");
        if (std::chrono::steady_clock::now() >= deadline) {
            throw KeptInUse("kept " + target + ": " + joined(why, "; ") +
                            (o.wait_seconds > 0 ? " after " + seconds_text(o.wait_seconds) + "s" : ""));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(250));
        uses = uses_of(client.get(), layout.link_path);
    }
    const std::string previous_link = layout.link_path + ".previous";
    // Out of the way first, in one rename: a deletion that stops half way
    // leaves no gutted tree under the release's name for a rollback to
    // flip to, only a leftover a later prune or remove deletes.
    const std::string doomed = "." + name + ".removing-" + std::to_string(::getpid());
    change_as_layout_owner(layout, [&] {
        if (release_directory(layout.link_path) == target) {
            throw Failure(link + " was flipped to " + target + " meanwhile: it was not deleted");
        }
        if (::renameat(AT_FDCWD, target.c_str(), AT_FDCWD, (layout.releases_dir + "/" + doomed).c_str()) != 0) {
            throw Failure("cannot move " + target + " out of the way: " + std::strerror(errno) +
                          "; nothing was deleted");
        }
        std::string error;
        if (!remove_tree(layout.releases_dir, doomed, &error)) {
            throw Failure(target + " was partly deleted (what is left is " + layout.releases_dir + "/" + doomed +
                          "): " + error);
        }
        // The CLI's own rollback record, naming nothing now, goes with it.
        if (uses.previous_link == target && is_symlink(previous_link) && !release_directory(previous_link)) {
            ::unlink(previous_link.c_str());
        }
    });
    std::cout << "deleted " << target << "\n";
    return 0;
}

int rollback(const StatusClient& client, const Options& o) {
    Document doc = client.get();
    if (!doc.contains("release_link") || !doc["release_link"].is_string()) {
        throw Failure("this vhost has no FpmReplicaRelease: there is no release symlink");
    }
    const std::string link = doc["release_link"].get<std::string>();
    // The module's record of the last flip, however it was made (with
    // supervision); else what the last fpm-replica deploy wrote beside the link.
    std::optional<std::string> target;
    std::string source;
    if (doc.contains("previous_release") && doc["previous_release"].is_string()) {
        target = release_directory(doc["previous_release"].get<std::string>());
        source = "the release before the last flip (" + doc["previous_release"].get<std::string>() + ")";
        if (!target) throw Failure(source + " is gone; " + link + " was left as it was");
    } else {
        const std::string previous = link + ".previous";
        if (!is_symlink(previous)) {
            throw Failure("no previous release recorded: no flip seen since httpd started, and " + previous +
                          " is missing");
        }
        // A relative .previous is relative to its own directory, as the kernel reads it.
        target = release_directory(previous);
        source = previous;
        if (!target) throw Failure(previous + " names no existing release");
    }
    if (target == release_directory(link)) {
        throw Failure(source + " is the release " + link + " names now: nothing to roll back to");
    }
    return deploy(client, o, *target);
}

int run(const Options& o) {
    StatusClient client(o.url, o.host, o.timeout);
    if (o.command == "status") return status(client, o);
    if (o.command == "drain" || o.command == "undrain") return drain(client, o.command, o.operands[0]);
    if (o.command == "restart") return restart(client, o);
    if (o.command == "deploy") return deploy(client, o, o.operands[0]);
    if (o.command == "releases") return releases(client);
    if (o.command == "prune") return prune(client, o);
    if (o.command == "remove") return remove_release(client, o);
    return rollback(client, o);
}

}  // namespace
}  // namespace fpmr::cli

int main(int argc, char** argv) {
    using namespace fpmr::cli;
    Options options;
    try {
        options = parse_arguments(argc, argv);
    } catch (const UsageError& e) {
        std::cerr << kUsage << "fpm-replica: error: " << e.what << "\n";
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = 1;
    try {
        rc = run(options);
    } catch (const KeptInUse& e) {
        std::cerr << "fpm-replica: " << e.what() << "\n";
        rc = kExitKeptInUse;
    } catch (const Failure& e) {
        std::cerr << "fpm-replica: " << e.what() << "\n";
    } catch (const std::exception& e) {
        // A status document without the fields this tool reads.
        std::cerr << "fpm-replica: " << options.url << " answered a document this tool cannot read: " << e.what()
                  << "\n";
    }
    curl_global_cleanup();
    return rc;
}
