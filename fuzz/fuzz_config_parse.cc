// Directive arguments as an operator (or a hostile .conf include) writes
// them: socket specs, replica lines, durations, health-check and warm-up options and the
// FpmReplicaSpawn command line. The whole input is one argument; its lines
// are the words of a multi-word directive.
#include <string>

#include "config_parse.h"
#include "fuzz_input.h"
#include "supervision.h"

using namespace fpmr;
using fpmr::fuzz::violated;

namespace {

void check_socket(const std::string& text) {
    std::string error;
    auto socket = parse_socket(text, &error);
    if (!socket) {
        if (error.empty()) violated("parse_socket refused without a reason");
        return;
    }
    // The supervisor plan carries sockets as text(): it must parse back to
    // the same socket, or a replica would move at every httpd restart.
    std::string again_error;
    auto again = parse_socket(socket->text(), &again_error);
    if (!again || !(*again == *socket)) violated("parse_socket(text()) differs");
    (void)socket->fpm_listen();
    (void)socket->proxy_url("fpmr-fuzz");
    if (socket->kind == SocketSpec::Kind::Unix &&
        socket->alternate().path.size() > kMaxUnixPathLength + 4) {
        violated("an alternate socket path is longer than mod_proxy carries");
    }
}

void check_duration(const std::string& text) {
    std::string error;
    auto us = parse_duration_us(text, &error);
    if (us && (*us < 0 || *us % 1000 != 0)) violated("a duration is negative or finer than 1ms");
    if (!us && error.empty()) violated("parse_duration_us refused without a reason");
}

void check_replica(const std::vector<std::string>& words) {
    std::string error;
    auto replica = parse_replica(words, &error);
    if (!replica) {
        if (error.empty()) violated("parse_replica refused without a reason");
        return;
    }
    if (!is_valid_replica_name(replica->name)) violated("parse_replica accepted a bad name");
    (void)check_replica_conflicts({}, *replica);
    (void)check_replica_conflicts({*replica}, *replica);
}

void check_health(const std::vector<std::string>& words) {
    std::string error;
    auto health = parse_health_check(words, &error);
    if (!health) {
        if (error.empty()) violated("parse_health_check refused without a reason");
        return;
    }
    if (health->timeout_us > health->interval_us || health->fails < 1 || health->fails > 100 ||
        health->passes < 1 || health->passes > 100 || health->path.empty() ||
        health->path[0] != '/') {
        violated("parse_health_check accepted values out of range");
    }
}

void check_warmup(const std::vector<std::string>& words) {
    std::string error;
    auto warmup = parse_warmup(words, &error);
    if (!warmup) {
        if (error.empty()) violated("parse_warmup refused without a reason");
        return;
    }
    if (warmup->timeout_us < 100000 || warmup->timeout_us > 600LL * 1000000 ||
        warmup->script.empty() || warmup->script[0] != '/' || warmup->urls.size() > kMaxWarmupUrls) {
        violated("parse_warmup accepted values out of range");
    }
    for (const std::string& url : warmup->urls) {
        if (url.empty() || url[0] != '/') violated("parse_warmup accepted a URL path not starting with '/'");
    }
}

void check_command(const std::string& text) {
    std::string error;
    auto words = split_command(text, &error);
    if (words && words->empty()) violated("split_command accepted a command of no word");
    if (!words && error.empty()) violated("split_command refused without a reason");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(fpmr::fuzz::as_text(data, size));
    const std::vector<std::string> words = fpmr::fuzz::split_lines(text);
    check_socket(text);
    check_duration(text);
    (void)is_valid_replica_name(text);
    check_replica(words);
    check_health(words);
    check_warmup(words);
    check_command(text);
    return 0;
}
