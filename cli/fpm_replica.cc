// fpm-replica: the operator's tool for mod_fpm_replica, talking to the
// status handler (SetHandler fpm-replica-status).
//
//   fpm-replica [--url URL] [--host NAME] [--timeout SECONDS] status [--json]
//   fpm-replica [--url URL] [--host NAME] [--timeout SECONDS] drain NAME
//   fpm-replica [--url URL] [--host NAME] [--timeout SECONDS] undrain NAME
//   fpm-replica [--url URL] [--host NAME] [--timeout SECONDS] restart [NAME]
//   fpm-replica [--url URL] [--host NAME] [--timeout SECONDS] deploy RELEASE_DIR
//   fpm-replica [--url URL] [--host NAME] [--timeout SECONDS] rollback
//
// Exit codes: 0 done, 1 failed (what was left as it was is said), 2 usage.
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

#include "release_links.h"
#include "status_client.h"

namespace fpmr::cli {
namespace {

constexpr const char* kDefaultUrl = "http://127.0.0.1/fpm-replica-status";
constexpr const char* kUsage =
    "usage: fpm-replica [--url URL] [--host NAME] [--timeout SECONDS]\n"
    "                   {status [--json],drain NAME,undrain NAME,restart [NAME],deploy RELEASE_DIR,rollback}\n";
constexpr const char* kHelp =
    "\nthe operator's tool for mod_fpm_replica, talking to the status handler\n\n"
    "commands:\n"
    "  status [--json]      the replicas as a table (--json: the status document)\n"
    "  drain NAME           drain a replica\n"
    "  undrain NAME         undrain a replica\n"
    "  restart [NAME]       replace replicas one by one; waits until done\n"
    "  deploy RELEASE_DIR   bring up replicas on a release, then flip the symlink\n"
    "  rollback             deploy the release the last deploy replaced\n\n"
    "options:\n"
    "  --url URL            status handler (default http://127.0.0.1/fpm-replica-status)\n"
    "  --host NAME          Host header to send: the vhost's ServerName, when the status\n"
    "                       URL's address is shared by several vhosts\n"
    "  --timeout SECONDS    seconds to wait for the server and for a restart (default 60)\n\n"
    "Exit codes: 0 done, 1 failed (what was left as it was is said), 2 usage.\n";

struct Options {
    std::string url = kDefaultUrl;
    std::string host;
    double timeout = 60.0;
    std::string command;
    std::vector<std::string> operands;
    bool json = false;
};

struct UsageError {
    std::string what;
};

// "60" for 60.0, "2.5" for 2.5: what Python's {:g} printed.
std::string seconds_text(double s) {
    char text[32];
    std::snprintf(text, sizeof text, "%g", s);
    return text;
}

Options parse_arguments(int argc, char** argv) {
    Options o;
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
    if (o.command == "drain" || o.command == "undrain" || o.command == "deploy") {
        least = most = 1;
    } else if (o.command == "restart") {
        most = 1;
    } else if (o.command != "status" && o.command != "rollback") {
        throw UsageError{"argument command: invalid choice: '" + o.command +
                         "' (choose from 'status', 'drain', 'undrain', 'restart', 'deploy', 'rollback')"};
    }
    if (o.operands.size() < least) throw UsageError{"the following arguments are required: " +
                                                    std::string(o.command == "deploy" ? "release_dir" : "name")};
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

int deploy(const StatusClient& client, const Options& o, const std::string& release_dir) {
    Document doc = client.get();
    if (!doc.contains("release_link") || !doc["release_link"].is_string()) {
        throw Failure("this vhost has no FpmReplicaRelease: there is no release symlink to flip");
    }
    const std::string link = doc["release_link"].get<std::string>();
    std::optional<std::string> resolved = release_directory(release_dir);
    if (!resolved) {
        throw Failure("release '" + release_dir + "' is not a directory; " + link + " was left as it was");
    }
    const std::string target = *resolved;
    const std::string current = release_directory(link).value_or(link);
    if (current == target) {
        std::cout << link << " already names " << target << "\n";
        return 0;
    }
    // 1. In namespace mode, a master on the new release first, checked; in
    // realpath mode with supervision the serving masters compile it.
    bool prepared = true;
    try {
        client.post({{"action", "prepare"}, {"release", target}}, doc["nonce"].get<std::string>());
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
    // 2. The flip: remember where we came from, then one rename.
    flip_release_symlink(link, target);
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
    std::cout << "deployed " << target << " (previous: " << current << ")\n";
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
